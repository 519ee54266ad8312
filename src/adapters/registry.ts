import type { AdapterFactory } from './adapter.js';
import { consoleAdapterFactory } from './console/index.js';
import { discordAdapterFactory } from './discord/index.js';
import { slackAdapterFactory } from './slack/index.js';

/** Chat adapters by name; each decides from the environment whether it is configured. */
export const adapterFactories: AdapterFactory[] = [slackAdapterFactory, discordAdapterFactory];

/** What `gpubot start` runs when no chat adapter is configured. */
export const fallbackAdapterFactory: AdapterFactory = consoleAdapterFactory;
