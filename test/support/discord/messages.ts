/**
 * Stored messages: creating, editing, files attached to them (bytes kept in `attachments` and
 * served at their URL), and waking tests that wait for an interaction's original message.
 */
import { Waiters, type MultipartFile } from '../standin-http.js';
import type { DiscordGuild } from './guild.js';
import { resolveMentions } from './mentions.js';
import { EPHEMERAL, IS_COMPONENTS_V2, LOADING, SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, clone, isObj } from './protocol.js';
import type { Json, StoredAttachment } from './types.js';

export const ATTACHMENTS_PATH = '/attachments/';

export class MessageStore {
  /** Woken after every message change (once the request that made it is recorded). */
  readonly changes = new Waiters<null>();

  constructor(private readonly g: DiscordGuild) {}

  create(channel: string, body: Json, extra: Json = {}): Json {
    const m: Json = {
      id: this.g.snowflake(),
      type: 0,
      channel_id: channel,
      author: this.g.botUserJson(),
      content: typeof body.content === 'string' ? body.content : '',
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: Boolean(body.tts),
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: Array.isArray(body.embeds) ? body.embeds.map((e: Json) => ({ type: 'rich', ...e })) : [],
      components: Array.isArray(body.components) ? clone(body.components) : [],
      pinned: false,
      flags: Number(body.flags ?? 0) & (EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2),
      ...extra,
    };
    this.applyMentions(m, body);
    this.g.messages.set(m.id, m);
    return m;
  }

  /** Sets who the message pings (recomputed when an edit changes the content, as Discord does). */
  private applyMentions(m: Json, body: Json): void {
    const r = resolveMentions(String(m.content ?? ''), body.allowed_mentions, !this.g.dmOwner.has(String(m.channel_id)));
    m.mention_everyone = r.mention_everyone;
    m.mentions = r.users.filter((id) => id === this.g.botUserId || this.g.users.has(id)).map((id) => this.g.userJson(id));
    m.mention_roles = r.mention_roles;
  }

  edit(m: Json, body: Json, files: MultipartFile[]): void {
    if ('content' in body) {
      m.content = typeof body.content === 'string' ? body.content : '';
      this.applyMentions(m, body);
    }
    if ('embeds' in body) m.embeds = Array.isArray(body.embeds) ? body.embeds.map((e: Json) => ({ type: 'rich', ...e })) : [];
    if ('components' in body) m.components = Array.isArray(body.components) ? clone(body.components) : [];
    if ('flags' in body && body.flags !== null && body.flags !== undefined) m.flags = (m.flags & EPHEMERAL) | (Number(body.flags) & (SUPPRESS_EMBEDS | IS_COMPONENTS_V2));
    if ('attachments' in body && Array.isArray(body.attachments)) {
      const keep = new Set(body.attachments.map((a: Json) => String(a.id)));
      m.attachments = (m.attachments as Json[]).filter((a) => keep.has(String(a.id)));
    }
    m.flags &= ~LOADING;
    m.edited_timestamp = new Date().toISOString();
    this.addFiles(m, files, body);
  }

  /** Stores multipart files on `m`; `body.attachments[]` entries with the part's index (`files[n]` → id n) give descriptions. */
  addFiles(m: Json, files: MultipartFile[], body: Json = {}): void {
    for (const f of files) {
      const id = this.g.snowflake();
      const url = `${this.g.baseUrl}${ATTACHMENTS_PATH}${m.channel_id}/${id}/${f.name}`;
      const index = /^files\[(\d+)\]$/.exec(f.field)?.[1];
      const meta = Array.isArray(body.attachments) ? (body.attachments as unknown[]).find((a): a is Json => isObj(a) && index !== undefined && String(a.id) === index) : undefined;
      const description = typeof meta?.description === 'string' ? meta.description : undefined;
      m.attachments.push({ id, filename: f.name, size: f.size, content_type: f.contentType, url, proxy_url: url, ...(description !== undefined ? { description } : {}) });
      const stored: StoredAttachment = { id, messageId: m.id, channelId: m.channel_id, field: f.field, filename: f.name, contentType: f.contentType, size: f.size, data: f.data, url, at: Date.now() };
      if (description !== undefined) stored.description = description;
      this.g.attachments.push(stored);
    }
  }

  /** The bytes of a stored attachment, by the path of its URL (after /attachments/). */
  attachmentAt(rest: string): StoredAttachment | undefined {
    const [channel, id] = rest.split('/');
    return this.g.attachments.find((a) => a.channelId === channel && a.id === id);
  }

  /** A message changed: wake waiters once the current request is recorded. */
  changed(): void {
    this.g.whenRecorded(() => this.changes.notify(null));
  }
}
