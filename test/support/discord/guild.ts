/**
 * The Discord world the stand-in plays: one application and bot user, one guild ("GPU Lab") with one
 * text channel, its users and roles, DM channels, registered commands, and the records tests read.
 * Also how these look on the wire (users, members, channels, the guild, the application).
 * Interactions may come from other guilds (`foreignChannelFor`): the bot is not in them.
 */
import { randomBytes } from 'node:crypto';
import { MEMBER_PERMISSIONS, snowflakes } from './protocol.js';
import type { CallbackResult, DiscordStandinOptions, Json, RestRequest, SentMessage, StandinUser, StoredAttachment } from './types.js';

export class DiscordGuild {
  readonly snowflake = snowflakes();
  readonly appId = this.snowflake();
  readonly botUserId = this.snowflake();
  readonly guildId = this.snowflake();
  readonly channelId = this.snowflake();
  readonly botUsername = 'gpubot-standin';
  readonly guildName = 'GPU Lab';
  readonly token = `${Buffer.from(this.botUserId).toString('base64url')}.${randomBytes(4).toString('base64url')}.${randomBytes(27).toString('base64url')}`;
  readonly startedIso = new Date().toISOString();

  readonly users: Map<string, StandinUser>;
  readonly roles: Map<string, string>;
  readonly messages = new Map<string, Json>();
  readonly dmChannels = new Map<string, string>(); // userId → channel id
  readonly dmOwner = new Map<string, string>(); // channel id → userId
  private readonly foreignChannels = new Map<string, string>(); // other guild id → its channel id
  readonly globalCommands: Json[] = [];
  readonly guildCommands: Json[] = [];

  readonly requests: RestRequest[] = [];
  readonly callbacks: ({ interactionId: string; token: string } & CallbackResult)[] = [];
  readonly violations: string[] = [];
  readonly sent: SentMessage[] = [];
  readonly attachments: StoredAttachment[] = [];

  /** Work that must wait until the current REST request is recorded (so a test woken by it sees the record). */
  private readonly afterRecord: (() => void)[] = [];

  constructor(
    /** "http://127.0.0.1:PORT" */
    readonly baseUrl: string,
    opts: DiscordStandinOptions,
  ) {
    this.users = new Map(Object.entries(opts.users ?? {}));
    this.roles = new Map(Object.entries(opts.roles ?? {}));
  }

  violation(v: string): void {
    this.violations.push(v);
  }

  whenRecorded(fn: () => void): void {
    this.afterRecord.push(fn);
  }

  flushAfterRecord(): void {
    for (const fn of this.afterRecord.splice(0)) fn();
  }

  // ── users ──

  ensureUser(id: string, username?: string): StandinUser {
    let u = this.users.get(id);
    if (!u) {
      u = { username: username ?? `user${id.slice(-4)}` };
      this.users.set(id, u);
    } else if (username && u.username !== username) {
      u.username = username;
    }
    return u;
  }

  userJson(id: string): Json {
    if (id === this.botUserId) return this.botUserJson();
    const u = this.ensureUser(id);
    return {
      id,
      username: u.username,
      global_name: u.global_name ?? null,
      discriminator: '0',
      avatar: null,
      avatar_decoration_data: null,
      banner: null,
      accent_color: null,
      public_flags: 0,
      flags: 0,
      bot: false,
      system: false,
      collectibles: null,
      primary_guild: null,
    };
  }

  botUserJson(): Json {
    return { id: this.botUserId, username: this.botUsername, global_name: null, discriminator: '0', avatar: null, bot: true, public_flags: 0, flags: 0, avatar_decoration_data: null, banner: null, accent_color: null };
  }

  memberJson(id: string, o?: { roles?: string[] }): Json {
    return {
      user: this.userJson(id),
      nick: null,
      avatar: null,
      banner: null,
      roles: o?.roles ?? (id === this.botUserId ? [] : (this.users.get(id)?.roles ?? [])),
      joined_at: this.startedIso,
      premium_since: null,
      deaf: false,
      mute: false,
      flags: 0,
      pending: false,
      communication_disabled_until: null,
      unusual_dm_activity_until: null,
    };
  }

  textChannelJson(withGuild: boolean): Json {
    return {
      id: this.channelId,
      type: 0,
      ...(withGuild ? { guild_id: this.guildId } : {}),
      name: 'gpu',
      position: 0,
      permission_overwrites: [],
      parent_id: null,
      topic: 'GPU bookings',
      nsfw: false,
      last_message_id: null,
      rate_limit_per_user: 0,
      flags: 0,
    };
  }

  dmChannelFor(userId: string): string {
    let id = this.dmChannels.get(userId);
    if (!id) {
      id = this.snowflake();
      this.dmChannels.set(userId, id);
      this.dmOwner.set(id, userId);
    }
    return id;
  }

  dmChannelJson(userId: string): Json {
    return { id: this.dmChannelFor(userId), type: 1, last_message_id: null, flags: 0, recipients: [this.userJson(userId)] };
  }

  roleJson(id: string, name: string, position: number, permissions: string): Json {
    return { id, name, color: 0, colors: { primary_color: 0, secondary_color: null, tertiary_color: null }, hoist: false, icon: null, unicode_emoji: null, position, permissions, managed: false, mentionable: false, flags: 0 };
  }

  guildCreateJson(): Json {
    const members = [this.botUserId, ...this.users.keys()].map((id) => this.memberJson(id));
    return {
      id: this.guildId,
      name: this.guildName,
      icon: null,
      splash: null,
      discovery_splash: null,
      banner: null,
      description: null,
      owner_id: [...this.users.keys()][0] ?? this.botUserId,
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 1,
      explicit_content_filter: 0,
      roles: [this.roleJson(this.guildId, '@everyone', 0, MEMBER_PERMISSIONS), ...[...this.roles].map(([id, name], i) => this.roleJson(id, name, i + 1, MEMBER_PERMISSIONS))],
      emojis: [],
      stickers: [],
      features: [],
      mfa_level: 0,
      application_id: null,
      system_channel_id: this.channelId,
      system_channel_flags: 0,
      rules_channel_id: null,
      public_updates_channel_id: null,
      safety_alerts_channel_id: null,
      max_members: 500000,
      max_video_channel_users: 25,
      max_stage_video_channel_users: 50,
      vanity_url_code: null,
      premium_tier: 0,
      premium_subscription_count: 0,
      premium_progress_bar_enabled: false,
      preferred_locale: 'en-US',
      nsfw_level: 0,
      nsfw: false,
      joined_at: this.startedIso,
      large: false,
      unavailable: false,
      member_count: members.length,
      voice_states: [],
      members,
      channels: [this.textChannelJson(false)],
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
      incidents_data: null,
      lazy: true,
    };
  }

  channelJson(id: string): Json | undefined {
    if (id === this.channelId) return this.textChannelJson(true);
    const owner = this.dmOwner.get(id);
    return owner ? this.dmChannelJson(owner) : undefined;
  }


  /** The channel an interaction from another guild comes from (one per guild, made on first use). */
  foreignChannelFor(guildId: string): string {
    let id = this.foreignChannels.get(guildId);
    if (!id) {
      id = this.snowflake();
      this.foreignChannels.set(guildId, id);
    }
    return id;
  }

  /** The other guild a channel made by `foreignChannelFor` belongs to. */
  foreignGuildOf(channelId: string): string | undefined {
    for (const [guildId, id] of this.foreignChannels) if (id === channelId) return guildId;
    return undefined;
  }

  foreignChannelJson(guildId: string): Json {
    return { ...this.textChannelJson(true), id: this.foreignChannelFor(guildId), guild_id: guildId, name: 'general', topic: null };
  }

  applicationJson(): Json {
    return {
      id: this.appId,
      name: this.botUsername,
      icon: null,
      description: 'gpubot stand-in application',
      summary: '',
      type: null,
      hook: true,
      bot_public: false,
      bot_require_code_grant: false,
      verify_key: randomBytes(32).toString('hex'),
      flags: 0,
      owner: this.userJson([...this.users.keys()][0] ?? this.botUserId),
      team: null,
      bot: this.botUserJson(),
      guild_id: this.guildId,
      approximate_guild_count: 1,
      redirect_uris: [],
      interactions_endpoint_url: null,
      integration_types_config: { '0': {} },
      tags: [],
    };
  }
}
