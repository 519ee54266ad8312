import type { AdapterFactory } from '../adapter.js';
import { slackSettings } from './settings.js';

export const slackAdapterFactory: AdapterFactory = {
  name: 'slack',
  isConfigured: (env) => Boolean(env.SLACK_BOT_TOKEN),
  // Bolt (~17 MB resident) is loaded only when Slack is configured.
  create: async (env, log) => {
    const settings = slackSettings(env)!;
    const { SlackAdapter } = await import('./slack-adapter.js');
    return new SlackAdapter(settings, log);
  },
};
