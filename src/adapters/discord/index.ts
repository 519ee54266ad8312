import type { AdapterFactory } from '../adapter.js';
import { DiscordAdapter } from './discord-adapter.js';
import { discordSettings } from './settings.js';

export const discordAdapterFactory: AdapterFactory = {
  name: 'discord',
  isConfigured: (env) => Boolean(env.DISCORD_TOKEN),
  create: (env, log) => new DiscordAdapter(discordSettings(env)!, log),
};
