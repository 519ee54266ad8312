import type { AdapterFactory } from './adapter.js';
import { discordAdapterFactory } from './discord/index.js';
import { slackAdapterFactory } from './slack/index.js';

/** Chat adapters by name; each decides from the environment whether it is configured. */
export const adapterFactories: AdapterFactory[] = [slackAdapterFactory, discordAdapterFactory];
