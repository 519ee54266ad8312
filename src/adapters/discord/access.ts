/** Who may use /gpu from Discord: pure, so the rules read in one place. */
export interface DiscordAccess {
  /** Servers (guild ids) the bot answers in; empty means any (discord.allowAnyServer). */
  guildIds: string[];
  allowDMs: boolean;
  /** Role ids; when set, a member needs one of them. */
  roles: string[];
}

export interface InteractionOrigin {
  guildId: string | null;
  /** The member's role ids (null in a DM). */
  memberRoles: string[] | null;
  /** A button on a message the bot itself sent to this person in a DM (a reminder, a link question). */
  dmButtonOfKnownUser: boolean;
}

/** Null when allowed; otherwise what the refusal says (and the audit records). */
export function discordRefusal(access: DiscordAccess, o: InteractionOrigin): { title: string; detail: string; reason: string } | null {
  if (o.guildId === null) {
    if (access.allowDMs || o.dmButtonOfKnownUser) return null;
    return { title: 'gpubot does not take commands in DMs', detail: 'Use /gpu in your team’s server. Nothing was done.', reason: 'direct message (discord.allowDMs is off)' };
  }
  if (access.guildIds.length && !access.guildIds.includes(o.guildId)) {
    return { title: 'gpubot does not serve this server', detail: 'This bot belongs to another team; nothing was done.', reason: `server ${o.guildId} is not in DISCORD_GUILD_ID` };
  }
  if (access.roles.length && !(o.memberRoles ?? []).some((r) => access.roles.includes(r))) {
    return {
      title: 'You may not use gpubot here',
      detail: 'Using /gpu needs one of the roles an admin chose (discord.roles). Nothing was done.',
      reason: 'member without a role from discord.roles',
    };
  }
  return null;
}

/** DISCORD_GUILD_ID as a list: "123" or "123,456". */
export const guildIdList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
