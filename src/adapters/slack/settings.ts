import { teamIdList } from './access.js';

/** Slack settings from the environment; null when Slack is not configured. */
export interface SlackSettings {
  botToken: string;
  /** Socket Mode (the default): outbound only, works behind NAT. */
  appToken?: string;
  /** HTTP mode: used when there is no app token. */
  signingSecret?: string;
  port: number;
  /** Web API base, e.g. for GovSlack or an egress proxy. */
  apiUrl?: string;
  /** Web API retries; tests set 0. */
  retries?: number;
  /** Workspaces served (SLACK_TEAM_ID, comma-separated); default: the bot token's own team (auth.test). */
  teamIds?: string[];
}

export function slackSettings(env: NodeJS.ProcessEnv): SlackSettings | null {
  const botToken = env.SLACK_BOT_TOKEN;
  if (!botToken) return null;
  const appToken = env.SLACK_APP_TOKEN || undefined;
  const signingSecret = env.SLACK_SIGNING_SECRET || undefined;
  if (!appToken && !signingSecret) throw new Error('SLACK_BOT_TOKEN is set, but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET (HTTP mode) is');
  return { botToken, appToken, signingSecret, port: Number(env.PORT ?? 3000), apiUrl: env.SLACK_API_URL || undefined, teamIds: teamIdList(env.SLACK_TEAM_ID) };
}
