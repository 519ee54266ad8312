import type { AdapterFactory } from '../adapter.js';
import { SlackAdapter } from './slack-adapter.js';
import { slackSettings } from './settings.js';

export const slackAdapterFactory: AdapterFactory = {
  name: 'slack',
  isConfigured: (env) => Boolean(env.SLACK_BOT_TOKEN),
  create: (env, log) => new SlackAdapter(slackSettings(env)!, log),
};
