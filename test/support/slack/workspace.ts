/**
 * The Slack workspace the stand-in plays: its identity and tokens, users, messages, views and
 * uploads, the records tests read (calls, responses, violations, ack latencies), and how they
 * look on the wire (users.info users, message objects).
 */
import { randomBytes } from 'node:crypto';
import type { ApiCall, Json, ResponseRecord, SlackUpload, StandinOptions, StandinUser, StandinView, StoredMessage } from './types.js';

export class SlackWorkspace {
  readonly teamId = 'T0STANDIN';
  readonly teamDomain = 'gpubot-standin';
  readonly appId = 'A1';
  readonly botUserId = 'U0BOT';
  readonly botId = 'B0BOT';
  readonly botToken = `xoxb-1-${randomBytes(12).toString('hex')}`;
  readonly appToken = `xapp-1-${this.appId}-1-${randomBytes(16).toString('hex')}`;
  readonly signingSecret = randomBytes(16).toString('hex');
  readonly verificationToken = randomBytes(12).toString('hex');

  readonly calls: ApiCall[] = [];
  readonly responses: ResponseRecord[] = [];
  readonly violations: string[] = [];
  readonly latencies: number[] = [];
  late = 0;
  readonly users: Map<string, StandinUser>;
  readonly messages: StoredMessage[] = [];
  readonly views = new Map<string, StandinView>();
  readonly uploads: SlackUpload[] = [];

  /** Seconds part of every ts this stand-in hands out (messages are ordered by the counter after it). */
  readonly tsBase = Math.floor(Date.now() / 1000);
  private tsCounter = 0;
  private idCounter = 0;

  constructor(
    /** "http://127.0.0.1:PORT" */
    readonly baseUrl: string,
    opts: StandinOptions,
  ) {
    this.users = new Map(Object.entries(opts.users ?? {}));
  }

  violation(msg: string): void {
    this.violations.push(msg);
  }

  nextTs(): string {
    return `${this.tsBase}.${String(++this.tsCounter).padStart(6, '0')}`;
  }

  nextId(prefix: string): string {
    return `${prefix}${(++this.idCounter).toString(36).toUpperCase().padStart(8, '0')}`;
  }

  ensureUser(id: string, name?: string): void {
    if (!this.users.has(id)) this.users.set(id, { name: name ?? id.toLowerCase() });
  }

  /** The team a user's payloads come from unless the test names one. */
  teamOf(userId: string): string {
    return this.users.get(userId)?.team_id ?? this.teamId;
  }

  /** A user id as channel means the DM with that user. */
  dmFor(channel: string): string {
    return /^[UW]/.test(channel) ? `D${channel}` : channel;
  }

  findMessage(channel: string, ts: string): StoredMessage | undefined {
    const ch = this.dmFor(channel);
    return this.messages.find((m) => m.channel === ch && m.ts === ts && !m.deleted);
  }

  messageOut(m: StoredMessage): Json {
    return {
      type: 'message',
      user: this.botUserId,
      bot_id: this.botId,
      app_id: this.appId,
      team: this.teamId,
      ts: m.ts,
      text: m.text ?? '',
      ...(m.blocks !== undefined ? { blocks: m.blocks } : {}),
      ...(m.thread_ts !== undefined ? { thread_ts: m.thread_ts } : {}),
      ...(m.files !== undefined ? { files: m.files.map((f) => ({ id: f.id, name: f.name, title: f.title })), upload: true } : {}),
    };
  }

  /** A user as users.info returns it; undefined for an unknown id. */
  userOut(id: string): Json | undefined {
    const { teamId, botId } = this;
    if (id === this.botUserId) {
      return { id, team_id: teamId, name: 'gpubot', deleted: false, real_name: 'gpubot', is_bot: true, is_app_user: false, profile: { real_name: 'gpubot', display_name: '', bot_id: botId, team: teamId } };
    }
    const u = this.users.get(id);
    if (!u) return undefined;
    const real = u.real_name ?? u.display_name ?? u.name;
    const display = u.display_name ?? '';
    const team = u.team_id ?? teamId;
    return {
      id,
      team_id: team,
      name: u.name,
      deleted: false,
      real_name: real,
      tz: 'Etc/UTC',
      tz_label: 'Coordinated Universal Time',
      tz_offset: 0,
      is_admin: u.is_admin ?? false,
      is_owner: u.is_owner ?? false,
      is_restricted: (u.is_restricted ?? false) || (u.is_ultra_restricted ?? false),
      is_ultra_restricted: u.is_ultra_restricted ?? false,
      is_bot: false,
      is_app_user: false,
      updated: this.tsBase,
      profile: { real_name: real, real_name_normalized: real, display_name: display, display_name_normalized: display, team },
    };
  }

  /** The `user` object of an interactive payload. */
  payloadUser(userId: string, userName: string | undefined, teamId: string): Json {
    this.ensureUser(userId, userName);
    const name = this.users.get(userId)!.name;
    return { id: userId, username: name, name, team_id: teamId };
  }
}
