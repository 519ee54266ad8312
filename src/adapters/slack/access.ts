/** Who may use /gpu from Slack: pure, so the rules read in one place. */
export interface SlackAccess {
  /** Workspaces (team ids) the bot answers; SLACK_TEAM_ID, or the bot token's own team. */
  teamIds: string[];
  allowGuests: boolean;
}

export interface SlackUserFacts {
  /** is_restricted (multi-channel guest) or is_ultra_restricted (single-channel guest). */
  guest: boolean;
}

/** Null when allowed; otherwise what the refusal says (and the audit records). */
export function slackTeamRefusal(access: SlackAccess, teamId: string | undefined): { title: string; detail: string; reason: string } | null {
  if (teamId !== undefined && access.teamIds.includes(teamId)) return null;
  return {
    title: 'gpubot does not serve this workspace',
    detail: 'This bot belongs to another team; nothing was done.',
    reason: `workspace ${teamId ?? '(none)'} is not in SLACK_TEAM_ID`,
  };
}

export function slackGuestRefusal(access: SlackAccess, user: SlackUserFacts): { title: string; detail: string; reason: string } | null {
  if (!user.guest || access.allowGuests) return null;
  return {
    title: 'Guest accounts may not use gpubot',
    detail: 'Ask a workspace admin for a full account, or ask an admin of the bot to set slack.allowGuests. Nothing was done.',
    reason: 'guest account (slack.allowGuests is off)',
  };
}

/** SLACK_TEAM_ID as a list: "T0123" or "T0123,T0456". */
export const teamIdList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
