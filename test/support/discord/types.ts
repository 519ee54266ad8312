/** The Discord stand-in's public types (re-exported by test/support/discord-standin.ts). */
export type Json = Record<string, any>;

export interface RestRequest {
  method: string;
  /** URL-decoded path without the `/api/v10` prefix, e.g. `/webhooks/123/tok/messages/@original`. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON body, or the parsed `payload_json` part of a multipart body; undefined when there is none. */
  body: any;
  /** Files of a multipart body (their bytes are in `attachments` once stored on a message). */
  files: { field: string; name: string; contentType: string; size: number }[];
  /** The Authorization header, if any. */
  authorization?: string;
  /** What the stand-in answered. */
  status: number;
  response: unknown;
  at: number;
}

export interface CallbackResult {
  /** Interaction callback type (4 reply, 5 deferReply, 6 deferUpdate, 7 update, 8 autocomplete, 9 modal, …). */
  type: number;
  data?: any;
  /** Milliseconds from dispatch to the callback's arrival. */
  ms: number;
  /** HTTP status the stand-in answered (204/200 accepted, 404 late, 400 rejected). */
  status: number;
  /** Error body when status ≥ 400. */
  error?: Json;
}

export interface DispatchedInteraction {
  id: string;
  token: string;
  /** Resolves with the first callback POSTed for this interaction (also a late or rejected one);
   *  rejects if none arrives within `waitMs` (default 5000). */
  callback: Promise<CallbackResult>;
}

export interface StandinUser {
  username: string;
  global_name?: string;
  /** Role ids the member has in the guild. */
  roles?: string[];
  /** DMs to this user fail with 403 50007 "Cannot send messages to this user". */
  dmsClosed?: boolean;
}

export interface OptionInput {
  name: string;
  /** ApplicationCommandOptionType; looked up in the registered command when omitted. */
  type?: number;
  value: string | number | boolean;
}

export interface InteractionBase {
  userId: string;
  username?: string;
  /** From the bot's DM channel with the user instead of the guild channel (no guild_id, no member). */
  dm?: boolean;
  /** From another server: the payload carries this guild_id and a channel of that guild (the bot
   *  is not in it: REST calls about it answer Unknown Guild/Channel). Default: the stand-in's guild. */
  guildId?: string;
  /** Member role ids (guild only); default: the user's configured roles (none in another server). */
  roles?: string[];
  /** Member permissions bitfield (guild only); default: a plain member's. */
  permissions?: string;
  locale?: string;
}

/** How a message reached Discord. */
export type SentKind = 'reply' | 'defer' | 'update' | 'follow-up' | 'edit' | 'message' | 'message-edit';

/** One message body the bot sent (accepted or not): interaction callbacks 4/5/7, webhook follow-ups
 *  and edits, channel/DM messages and their edits. Fields are as sent, before any defaulting. */
export interface SentMessage {
  kind: SentKind;
  method: string;
  path: string;
  /** HTTP status the stand-in answered. */
  status: number;
  interactionId?: string;
  channelId?: string;
  /** The stored message created or edited (accepted requests only). */
  messageId?: string;
  content?: string;
  /** `flags` as sent; undefined when absent. */
  flags?: number;
  /** `allowed_mentions` as sent; undefined when absent (Discord then parses every mention). */
  allowedMentions?: any;
  embeds?: any[];
  components?: any[];
  files: { field: string; name: string; contentType: string; size: number }[];
  /** The whole message body (callback `data`, or the request body). */
  body: any;
  at: number;
}

/** A file stored on a message (multipart `files[n]`), with its bytes; served at `url`. */
export interface StoredAttachment {
  id: string;
  messageId: string;
  channelId: string;
  /** The multipart field, e.g. `files[0]`. */
  field: string;
  filename: string;
  contentType: string;
  size: number;
  data: Buffer;
  /** From the matching `attachments[]` entry of payload_json, when given. */
  description?: string;
  url: string;
  at: number;
}

export interface DiscordStandin {
  /** "http://127.0.0.1:PORT/api": pass as `rest: { api }` (discord.js adds /v10). */
  apiUrl: string;
  baseUrl: string;
  /** "ws://127.0.0.1:PORT", returned by GET /gateway/bot. */
  gatewayUrl: string;
  /** "ws://127.0.0.1:PORT/resume", the resume_gateway_url in READY. */
  resumeUrl: string;
  token: string;
  appId: string;
  guildId: string;
  guildName: string;
  channelId: string;
  botUserId: string;
  botUsername: string;

  /** Every REST request (also rejected and unknown ones), in order. */
  requests: RestRequest[];
  requestsTo(method: string, pathPattern: RegExp): RestRequest[];
  /** Resolves with the first request (made or future) matching; rejects after timeoutMs (default 5000). */
  waitForRequest(method: string, pathPattern: RegExp, predicate?: (body: any) => boolean, timeoutMs?: number): Promise<RestRequest>;
  /** Make the next `times` requests matching answer `status` with `body` (429: a rate limit of `retryAfter` s). */
  failNext(method: string, pathPattern: RegExp, status: number, body?: Json, opts?: { times?: number; retryAfter?: number }): void;

  /** Every message body the bot sent, in order (with `allowed_mentions` and `flags` as sent). */
  sent: SentMessage[];
  /** Resolves with the first sent message (made or future) matching; rejects after timeoutMs (default 5000). */
  waitForSent(predicate: (m: SentMessage) => boolean, timeoutMs?: number): Promise<SentMessage>;
  /** Every file stored on a message, with its bytes, in order. */
  attachments: StoredAttachment[];

  /** Sends INTERACTION_CREATE on the current gateway session. */
  dispatchInteraction(payload: object, opts?: { waitMs?: number }): DispatchedInteraction;
  /** Every callback POSTed, in order (accepted or not). */
  callbacks: ({ interactionId: string; token: string } & CallbackResult)[];
  /** The current @original message of an interaction token (after callbacks/edits); undefined if none. */
  original(token: string): any;
  waitForOriginal(token: string, predicate: (msg: any) => boolean, timeoutMs?: number): Promise<any>;
  /** Follow-up messages sent through the interaction webhook (not the original). */
  followUps(token: string): any[];
  /** Ends the 15-minute life of an interaction token: its webhook answers 401 50027 from now on. */
  expireToken(token: string): void;

  slashCommand(o: InteractionBase & { name?: string; subcommandGroup?: string; subcommand?: string; options?: OptionInput[] }): Json;
  autocomplete(o: InteractionBase & { name?: string; subcommandGroup?: string; subcommand?: string; focused: string; value: string; options?: OptionInput[] }): Json;
  /** A click on a button. With `messageId` the button must be on that stored message (an interaction's
   *  original, a follow-up or a channel message); without it a bot message carrying the button is made up. */
  button(o: InteractionBase & { customId: string; messageId?: string; ephemeral?: boolean }): Json;
  /** A modal submission; mirrors the layout (action rows or labels) of the modal the bot opened with this custom_id. */
  modalSubmit(o: InteractionBase & { customId: string; fields: Record<string, string>; messageId?: string }): Json;

  /** Registered commands: global ones, or a guild's. */
  commands(guildId?: string): any[];
  /** All stored messages (channel, DM, interaction originals and follow-ups) by id. */
  messages: Map<string, any>;
  messagesIn(channelId: string): any[];
  /** Messages the bot sent to the user's DM channel. */
  dmsTo(userId: string): any[];
  dmChannelId(userId: string): string | undefined;

  /** Resolves once a session is READY (default timeout 15 s). */
  waitForSession(timeoutMs?: number): Promise<void>;
  /** op 7 RECONNECT; resolves once the client has RESUMEd (rejects if it re-identifies or after timeoutMs, default 10 s). */
  sendReconnect(timeoutMs?: number): Promise<void>;
  /** Closes the client's gateway socket with `code` (default 4000); resolves with how the client came back. */
  dropConnection(code?: number, timeoutMs?: number): Promise<'resumed' | 'identified'>;
  identifies(): number;
  resumes(): number;
  heartbeats(): number;
  /** Gateway connections accepted so far (reconnects included) and currently open. */
  connections(): number;
  openSockets(): number;

  violations: string[];
  users: Map<string, StandinUser>;
  /** Empties requests, callbacks, sent messages, attachments and violations. */
  clearRecords(): void;
  close(): Promise<void>;
}

export interface DiscordStandinOptions {
  users?: Record<string, StandinUser>;
  /** Extra guild roles (id → name) besides @everyone. */
  roles?: Record<string, string>;
  /** heartbeat_interval in HELLO (Discord: 41250 ms). */
  heartbeatIntervalMs?: number;
}
