import { userInfo } from 'node:os';
import type { AdapterFactory } from '../adapter.js';
import { ConsoleAdapter } from './console-adapter.js';

/** The terminal: always possible; `gpubot start` uses it when no chat is configured. */
export const consoleAdapterFactory: AdapterFactory = {
  name: 'console',
  isConfigured: () => true,
  create: (env) => new ConsoleAdapter(env.GPUBOT_CONSOLE_USER ?? userInfo().username),
};
