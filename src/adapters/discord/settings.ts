/** Discord settings from the environment; null when Discord is not configured. */
export interface DiscordSettings {
  token: string;
  appId: string;
  /**
   * The server(s) the bot serves (DISCORD_GUILD_ID, comma-separated): /gpu is registered there and
   * interactions from anywhere else are refused. Without it the bot refuses to start unless
   * discord.allowAnyServer is set (then /gpu is registered globally).
   */
  guildId?: string;
  /** REST base override, e.g. a rate-limit proxy such as nirn-proxy. */
  apiUrl?: string;
}

export function discordSettings(env: NodeJS.ProcessEnv): DiscordSettings | null {
  const token = env.DISCORD_TOKEN;
  if (!token) return null;
  const appId = env.DISCORD_APP_ID;
  if (!appId) throw new Error('DISCORD_TOKEN is set but DISCORD_APP_ID is not (the application id from the Discord developer portal)');
  return { token, appId, guildId: env.DISCORD_GUILD_ID || undefined, apiUrl: env.DISCORD_API_URL || undefined };
}
