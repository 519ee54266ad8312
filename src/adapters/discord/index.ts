import type { AdapterFactory } from '../adapter.js';
import { discordSettings } from './settings.js';

export const discordAdapterFactory: AdapterFactory = {
  name: 'discord',
  isConfigured: (env) => Boolean(env.DISCORD_TOKEN),
  // discord.js (~21 MB resident) is loaded only when Discord is configured.
  create: async (env, log) => {
    const settings = discordSettings(env)!;
    const { DiscordAdapter } = await import('./discord-adapter.js');
    return new DiscordAdapter(settings, log);
  },
};
