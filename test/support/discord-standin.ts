/**
 * A local stand-in for Discord's REST API and gateway, speaking the real protocols, so the real
 * discord.js `Client` (discord.js 14.28, @discordjs/rest 2.6, @discordjs/ws 1.2) can be driven offline.
 *
 * One HTTP server on 127.0.0.1 serves:
 *   - REST          /api/v10/…   (pass `rest: { api: standin.apiUrl }`; @discordjs/rest appends /v10)
 *   - the gateway   ws://127.0.0.1:PORT        (handed out by GET /gateway/bot; JSON encoding, no compression)
 *                   ws://127.0.0.1:PORT/resume (the resume_gateway_url in READY)
 *
 * Gateway: HELLO → IDENTIFY (token checked) → READY (guild unavailable) + GUILD_CREATE; heartbeats are
 * acked; op 7 RECONNECT via `sendReconnect()` → the client closes (4200) and RESUMEs on the resume URL;
 * events sent while it was away are replayed, then RESUMED. Sequence numbers are tracked per session.
 *
 * Discord rules that are enforced (each breach is listed in `violations`):
 *   - an interaction must get its callback within 3 s (a later one answers 404 10062 "Unknown interaction");
 *     a second callback answers 400 40060 "Interaction has already been acknowledged";
 *   - the callback type must fit the interaction (8 only for autocomplete, 6/7 only for components/modals, …);
 *   - the interaction webhook (editReply/followUp/fetchReply/deleteReply) works only after the callback,
 *     with the right application id, and for 15 minutes (`expireToken` simulates the end);
 *   - message limits: content ≤ 2000, ≤ 10 embeds (title 256, description 4096, ≤ 25 fields of 256/1024,
 *     footer 2048, author 256, 6000 characters in all), ≤ 5 action rows of ≤ 5 buttons or one select,
 *     custom_id ≤ 100 and unique, button label ≤ 80, no empty message (50006);
 *   - autocomplete: ≤ 25 choices, name 1–100, string value ≤ 100; modal: title ≤ 45, 1–5 components;
 *   - command registration: names (lower case, 1–32), descriptions (1–100), ≤ 25 options, required before
 *     optional, unique names, choices ≤ 25 and not with autocomplete, 4000 characters per command;
 *   - REST calls other than interaction callbacks and webhooks need `Authorization: Bot <token>`.
 *
 * Order at the end of a test: `await client.destroy()` first, then `await standin.close()`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export type Json = Record<string, any>;

export interface RestRequest {
  method: string;
  /** URL-decoded path without the `/api/v10` prefix, e.g. `/webhooks/123/tok/messages/@original`. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON body, or the parsed `payload_json` part of a multipart body; undefined when there is none. */
  body: any;
  /** Files of a multipart body. */
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
  /** From the bot's DM channel with the user instead of the guild channel. */
  dm?: boolean;
  /** Member role ids (guild only); default: the user's configured roles. */
  roles?: string[];
  /** Member permissions bitfield (guild only); default: a plain member's. */
  permissions?: string;
  locale?: string;
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
  /** Empties requests, callbacks and violations. */
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

const ACK_DEADLINE_MS = 3000;
const TOKEN_TTL_MS = 15 * 60_000;
const DISCORD_EPOCH = 1420070400000n;
const EPHEMERAL = 64;
const LOADING = 128;
const SUPPRESS_EMBEDS = 4;
const SUPPRESS_NOTIFICATIONS = 4096;
const IS_COMPONENTS_V2 = 32768;

// Permission bits.
const P = {
  CreateInstantInvite: 1n << 0n,
  AddReactions: 1n << 6n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  MentionEveryone: 1n << 17n,
  UseExternalEmojis: 1n << 18n,
  Connect: 1n << 20n,
  Speak: 1n << 21n,
  ChangeNickname: 1n << 26n,
  UseApplicationCommands: 1n << 31n,
  CreatePublicThreads: 1n << 35n,
  SendMessagesInThreads: 1n << 38n,
};
const MEMBER_PERMISSIONS = (
  P.CreateInstantInvite | P.AddReactions | P.ViewChannel | P.SendMessages | P.EmbedLinks | P.AttachFiles | P.ReadMessageHistory |
  P.UseExternalEmojis | P.Connect | P.Speak | P.ChangeNickname | P.UseApplicationCommands | P.CreatePublicThreads | P.SendMessagesInThreads
).toString();
const BOT_PERMISSIONS = (BigInt(MEMBER_PERMISSIONS) | P.MentionEveryone).toString();

interface Waiter<T> {
  match: (x: T) => boolean;
  resolve: (x: T) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Problem {
  path: string;
  code: string;
  message: string;
}

interface InteractionState {
  id: string;
  token: string;
  type: number;
  payload: Json;
  label: string;
  dispatchedAt: number;
  acked?: { type: number; at: number };
  /** Message id of @original: the reply, or for components the message the component is on. */
  originalId?: string;
  followUps: string[];
  expired: boolean;
  flagged: boolean;
  settled: boolean;
  resolve: (r: CallbackResult) => void;
  reject: (e: Error) => void;
  deadline: NodeJS.Timeout;
  giveUp: NodeJS.Timeout;
}

interface Session {
  id: string;
  seq: number;
  log: { s: number; payload: Json }[];
  conn?: Conn;
}

interface Conn {
  ws: WebSocket;
  path: string;
  authed: boolean;
  session?: Session;
}

type GatewayEvent = 'ready' | 'resumed';

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
  ) {
    super(String(body.message));
  }
}

const notFound = (what: string, code: number): HttpError => new HttpError(404, { message: `Unknown ${what}`, code });

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

function formError(problems: Problem[]): Json {
  const errors: Json = {};
  for (const p of problems) {
    let node = errors;
    for (const k of p.path.split('.').filter(Boolean)) node = node[k] ??= {};
    (node._errors ??= []).push({ code: p.code, message: p.message });
  }
  return { message: 'Invalid Form Body', code: 50035, errors };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const strLen = (v: unknown): number => (typeof v === 'string' ? [...v].length : 0);
const NAME_RE = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

// ───────────────────────────── validation ─────────────────────────────

function embedProblems(embeds: unknown, path: string): Problem[] {
  const out: Problem[] = [];
  if (embeds === undefined || embeds === null) return out;
  if (!Array.isArray(embeds)) return [{ path, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }];
  if (embeds.length > 10) out.push({ path, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 10 or fewer in length.' });
  let total = 0;
  const max = (v: unknown, n: number, p: string): void => {
    total += strLen(v);
    if (strLen(v) > n) out.push({ path: p, code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${n} or fewer in length.` });
  };
  embeds.forEach((e: unknown, i) => {
    const p = `${path}.${i}`;
    if (!isObj(e)) return out.push({ path: p, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
    max(e.title, 256, `${p}.title`);
    max(e.description, 4096, `${p}.description`);
    if (isObj(e.footer)) max(e.footer.text, 2048, `${p}.footer.text`);
    if (isObj(e.author)) max(e.author.name, 256, `${p}.author.name`);
    if (e.color !== undefined && e.color !== null && (!Number.isInteger(e.color) || e.color < 0 || e.color > 0xffffff))
      out.push({ path: `${p}.color`, code: 'NUMBER_TYPE_MAX', message: 'Int value should be less than or equal to 16777215.' });
    if (e.fields !== undefined) {
      if (!Array.isArray(e.fields)) return out.push({ path: `${p}.fields`, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' });
      if (e.fields.length > 25) out.push({ path: `${p}.fields`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
      e.fields.forEach((f: unknown, j: number) => {
        const fp = `${p}.fields.${j}`;
        if (!isObj(f)) return out.push({ path: fp, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
        if (!strLen(f.name)) out.push({ path: `${fp}.name`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
        if (!strLen(f.value)) out.push({ path: `${fp}.value`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
        max(f.name, 256, `${fp}.name`);
        max(f.value, 1024, `${fp}.value`);
      });
    }
  });
  if (total > 6000) out.push({ path, code: 'MAX_EMBED_SIZE_EXCEEDED', message: 'Embed size exceeds maximum size of 6000' });
  return out;
}

const SELECTS = new Set([3, 5, 6, 7, 8]);

function componentProblems(components: unknown, path: string, ids: Set<string>): Problem[] {
  const out: Problem[] = [];
  if (components === undefined || components === null) return out;
  if (!Array.isArray(components)) return [{ path, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }];
  if (components.length > 5) out.push({ path, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 5 or fewer in length.' });
  const customId = (c: Json, p: string): void => {
    if (typeof c.custom_id !== 'string' || !c.custom_id) return void out.push({ path: `${p}.custom_id`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
    if (strLen(c.custom_id) > 100) out.push({ path: `${p}.custom_id`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 100 or fewer in length.' });
    if (ids.has(c.custom_id)) out.push({ path: `${p}.custom_id`, code: 'COMPONENT_CUSTOM_ID_DUPLICATED', message: 'Component custom id cannot be duplicated' });
    ids.add(c.custom_id);
  };
  components.forEach((row: unknown, i) => {
    const p = `${path}.${i}`;
    if (!isObj(row) || row.type !== 1) return out.push({ path: `${p}.type`, code: 'UNION_TYPE_CHOICES', message: 'Value of field "type" must be one of (1,).' });
    const inner: unknown[] = Array.isArray(row.components) ? row.components : [];
    if (inner.length === 0) out.push({ path: `${p}.components`, code: 'BASE_TYPE_MIN_LENGTH', message: 'Must be 1 or more in length.' });
    const hasSelect = inner.some((c) => isObj(c) && SELECTS.has(c.type as number));
    if (hasSelect && inner.length > 1) out.push({ path: `${p}.components`, code: 'COMPONENT_LAYOUT_WIDTH_EXCEEDED', message: 'The specified component exceeds the maximum width' });
    if (!hasSelect && inner.length > 5) out.push({ path: `${p}.components`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 5 or fewer in length.' });
    inner.forEach((c, j) => {
      const cp = `${p}.components.${j}`;
      if (!isObj(c)) return out.push({ path: cp, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
      if (c.type === 2) {
        const style = c.style as number;
        if (![1, 2, 3, 4, 5, 6].includes(style)) out.push({ path: `${cp}.style`, code: 'BASE_TYPE_CHOICES', message: 'Value must be one of {1, 2, 3, 4, 5, 6}.' });
        if (style === 5) {
          if (typeof c.url !== 'string' || !c.url) out.push({ path: `${cp}.url`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
          if (c.custom_id !== undefined) out.push({ path: `${cp}.custom_id`, code: 'BUTTON_COMPONENT_CUSTOM_ID_LINK', message: 'A custom id cannot be used with a link button' });
        } else if (style === 6) {
          if (!c.sku_id) out.push({ path: `${cp}.sku_id`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
        } else {
          customId(c, cp);
          if (!strLen(c.label) && !c.emoji) out.push({ path: `${cp}.label`, code: 'BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED', message: 'A label or emoji is required' });
        }
        if (strLen(c.label) > 80) out.push({ path: `${cp}.label`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 80 or fewer in length.' });
      } else if (SELECTS.has(c.type as number)) {
        customId(c, cp);
        if (strLen(c.placeholder) > 150) out.push({ path: `${cp}.placeholder`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 150 or fewer in length.' });
        if (c.type === 3) {
          const options: unknown[] = Array.isArray(c.options) ? c.options : [];
          if (options.length < 1 || options.length > 25) out.push({ path: `${cp}.options`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 25 in length.' });
          options.forEach((o, k) => {
            if (!isObj(o) || !strLen(o.label) || strLen(o.label) > 100) out.push({ path: `${cp}.options.${k}.label`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
            if (!isObj(o) || !strLen(o.value) || strLen(o.value) > 100) out.push({ path: `${cp}.options.${k}.value`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
          });
        }
      } else {
        out.push({ path: `${cp}.type`, code: 'UNION_TYPE_CHOICES', message: 'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).' });
      }
    });
  });
  return out;
}

const hasAny = (m: Json): boolean =>
  strLen(m.content) > 0 || (Array.isArray(m.embeds) && m.embeds.length > 0) || (Array.isArray(m.components) && m.components.length > 0) ||
  (Array.isArray(m.attachments) && m.attachments.length > 0) || (Array.isArray(m.sticker_ids) && m.sticker_ids.length > 0) || isObj(m.poll);

/** Problems of a message body as sent (create or edit); `path` prefixes the error keys ("data." for callbacks). */
function messageProblems(body: Json, path = ''): Problem[] {
  const out: Problem[] = [];
  if (body.content !== undefined && body.content !== null && typeof body.content !== 'string')
    out.push({ path: `${path}content`, code: 'BASE_TYPE_STRING', message: 'Must be a string.' });
  if (strLen(body.content) > 2000) out.push({ path: `${path}content`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' });
  const flags = Number(body.flags ?? 0);
  if (flags & IS_COMPONENTS_V2) {
    if (strLen(body.content) || (Array.isArray(body.embeds) && body.embeds.length))
      out.push({ path: `${path}content`, code: 'MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2', message: 'The \'content\' and \'embeds\' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2' });
  } else {
    out.push(...componentProblems(body.components, `${path}components`, new Set()));
  }
  out.push(...embedProblems(body.embeds, `${path}embeds`));
  return out;
}

function optionProblems(options: unknown, path: string, level: 'command' | 'group' | 'subcommand'): { problems: Problem[]; chars: number } {
  const out: Problem[] = [];
  let chars = 0;
  if (options === undefined || options === null) return { problems: out, chars };
  if (!Array.isArray(options)) return { problems: [{ path, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }], chars };
  if (options.length > 25) out.push({ path, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
  const names = new Set<string>();
  const nested = options.filter((o) => isObj(o) && (o.type === 1 || o.type === 2)).length;
  if (nested && nested !== options.length)
    out.push({ path, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-command and sub-command group option types are mutually exclusive to all other types' });
  let sawOptional = false;
  options.forEach((o: unknown, i) => {
    const p = `${path}.${i}`;
    if (!isObj(o)) return out.push({ path: p, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
    const type = o.type as number;
    if (!Number.isInteger(type) || type < 1 || type > 11) out.push({ path: `${p}.type`, code: 'BASE_TYPE_CHOICES', message: 'Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.' });
    if (typeof o.name !== 'string' || !NAME_RE.test(o.name) || o.name !== o.name.toLowerCase())
      out.push({ path: `${p}.name`, code: 'APPLICATION_COMMAND_INVALID_NAME', message: 'Command name is invalid' });
    else if (names.has(o.name)) out.push({ path: `${p}.name`, code: 'APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS', message: 'Option name already exists' });
    else names.add(o.name);
    if (!strLen(o.description) || strLen(o.description) > 100) out.push({ path: `${p}.description`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
    chars += strLen(o.name) + strLen(o.description);
    if (type === 2) {
      if (level !== 'command') out.push({ path: `${p}.type`, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-command groups can only be nested in commands' });
      const sub = optionProblems(o.options, `${p}.options`, 'group');
      out.push(...sub.problems);
      chars += sub.chars;
      if (Array.isArray(o.options) && o.options.some((x: unknown) => !isObj(x) || x.type !== 1))
        out.push({ path: `${p}.options`, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-command groups may only contain sub-commands' });
      return;
    }
    if (type === 1) {
      if (level === 'subcommand') out.push({ path: `${p}.type`, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-commands cannot be nested in sub-commands' });
      const sub = optionProblems(o.options, `${p}.options`, 'subcommand');
      out.push(...sub.problems);
      chars += sub.chars;
      return;
    }
    if (o.required === true && sawOptional) out.push({ path: `${p}.required`, code: 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', message: 'Required options must be placed before non-required options' });
    if (o.required !== true) sawOptional = true;
    const choices: unknown[] | undefined = Array.isArray(o.choices) ? o.choices : undefined;
    if (choices) {
      if (![3, 4, 10].includes(type)) out.push({ path: `${p}.choices`, code: 'APPLICATION_COMMAND_OPTION_CHOICES_INVALID', message: 'Choices are only allowed for string, integer and number options' });
      if (choices.length > 25) out.push({ path: `${p}.choices`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
      choices.forEach((c, k) => {
        if (!isObj(c) || !strLen(c.name) || strLen(c.name) > 100) out.push({ path: `${p}.choices.${k}.name`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
        if (isObj(c)) {
          chars += strLen(c.name) + String(c.value ?? '').length;
          if (type === 3 ? typeof c.value !== 'string' || strLen(c.value) > 100 : typeof c.value !== 'number')
            out.push({ path: `${p}.choices.${k}.value`, code: 'APPLICATION_COMMAND_OPTION_CHOICE_VALUE_INVALID', message: 'Invalid choice value' });
        }
      });
    }
    if (o.autocomplete === true) {
      if (![3, 4, 10].includes(type)) out.push({ path: `${p}.autocomplete`, code: 'APPLICATION_COMMAND_AUTOCOMPLETE_INVALID', message: 'Autocomplete is only allowed for string, integer and number options' });
      if (choices?.length) out.push({ path: `${p}.autocomplete`, code: 'APPLICATION_COMMAND_AUTOCOMPLETE_CHOICES_INVALID', message: 'Autocomplete cannot be used with choices' });
    }
    for (const k of ['min_value', 'max_value'] as const)
      if (o[k] !== undefined && ![4, 10].includes(type)) out.push({ path: `${p}.${k}`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: `${k} is only allowed for integer and number options` });
    if (typeof o.min_value === 'number' && typeof o.max_value === 'number' && o.min_value > o.max_value)
      out.push({ path: `${p}.min_value`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: 'min_value must be less than or equal to max_value' });
    for (const k of ['min_length', 'max_length'] as const) {
      if (o[k] === undefined) continue;
      if (type !== 3) out.push({ path: `${p}.${k}`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: `${k} is only allowed for string options` });
      const lo = k === 'min_length' ? 0 : 1;
      if (!Number.isInteger(o[k]) || o[k] < lo || o[k] > 6000) out.push({ path: `${p}.${k}`, code: 'NUMBER_TYPE_OUT_OF_RANGE', message: `Must be between ${lo} and 6000.` });
    }
    if (o.channel_types !== undefined && type !== 7) out.push({ path: `${p}.channel_types`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: 'channel_types is only allowed for channel options' });
  });
  return { problems: out, chars };
}

function commandProblems(commands: unknown): Problem[] {
  if (!Array.isArray(commands)) return [{ path: '', code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }];
  const out: Problem[] = [];
  const seen = new Set<string>();
  const counts: Record<number, number> = {};
  commands.forEach((c: unknown, i) => {
    const p = String(i);
    if (!isObj(c)) return out.push({ path: p, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
    const type = (c.type as number | undefined) ?? 1;
    counts[type] = (counts[type] ?? 0) + 1;
    if (typeof c.name !== 'string' || !NAME_RE.test(type === 1 ? c.name : c.name.replace(/ /g, '_')) || (type === 1 && c.name !== c.name.toLowerCase()))
      out.push({ path: `${p}.name`, code: 'APPLICATION_COMMAND_INVALID_NAME', message: 'Command name is invalid' });
    const key = `${type}:${String(c.name)}`;
    if (seen.has(key)) out.push({ path: `${p}.name`, code: 'APPLICATION_COMMANDS_DUPLICATE_NAME', message: `Application command names must be unique` });
    seen.add(key);
    if (type === 1) {
      if (!strLen(c.description) || strLen(c.description) > 100) out.push({ path: `${p}.description`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
      const opts = optionProblems(c.options, `${p}.options`, 'command');
      out.push(...opts.problems);
      const chars = strLen(c.name) + strLen(c.description) + opts.chars;
      if (chars > 4000) out.push({ path: p, code: 'APPLICATION_COMMAND_TOO_LARGE', message: 'Command exceeds maximum size (4000)' });
    } else if (strLen(c.description)) {
      out.push({ path: `${p}.description`, code: 'APPLICATION_COMMAND_DESCRIPTION_INVALID', message: 'Context menu commands cannot have description' });
    } else if (c.options !== undefined && Array.isArray(c.options) && c.options.length) {
      out.push({ path: `${p}.options`, code: 'APPLICATION_COMMAND_OPTIONS_INVALID', message: 'Context menu commands cannot have options' });
    }
  });
  if ((counts[1] ?? 0) > 100) out.push({ path: '', code: 'APPLICATION_COMMANDS_TOO_MANY', message: 'Maximum number of application commands reached (100)' });
  for (const t of [2, 3]) if ((counts[t] ?? 0) > 15) out.push({ path: '', code: 'APPLICATION_COMMANDS_TOO_MANY', message: 'Maximum number of context menu commands reached (15)' });
  return out;
}

// ───────────────────────────── the stand-in ─────────────────────────────

export async function startDiscordStandin(opts: DiscordStandinOptions = {}): Promise<DiscordStandin> {
  let increment = 0;
  const snowflake = (): string => ((((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (1n << 17n) | BigInt(increment++ & 0xfff))).toString();

  const appId = snowflake();
  const botUserId = snowflake();
  const guildId = snowflake();
  const channelId = snowflake();
  const botUsername = 'gpubot-standin';
  const guildName = 'GPU Lab';
  const token = `${Buffer.from(botUserId).toString('base64url')}.${randomBytes(4).toString('base64url')}.${randomBytes(27).toString('base64url')}`;
  const heartbeatInterval = opts.heartbeatIntervalMs ?? 41_250;
  const startedIso = new Date().toISOString();

  const users = new Map<string, StandinUser>(Object.entries(opts.users ?? {}));
  const roles = new Map<string, string>(Object.entries(opts.roles ?? {}));
  const requests: RestRequest[] = [];
  const callbacks: DiscordStandin['callbacks'] = [];
  const violations: string[] = [];
  const messages = new Map<string, Json>();
  const dmChannels = new Map<string, string>(); // userId → channel id
  const dmOwner = new Map<string, string>(); // channel id → userId
  const globalCommands: Json[] = [];
  const guildCommands: Json[] = [];
  const interactions = new Map<string, InteractionState>();
  const byToken = new Map<string, InteractionState>();
  const modals = new Map<string, Json>(); // custom_id → last modal data the bot opened
  const failures: { method: string; pattern: RegExp; status: number; body?: Json; retryAfter?: number; times: number }[] = [];
  const requestWaiters = new Set<Waiter<RestRequest>>();
  const originalWaiters = new Set<Waiter<null> & { token: string }>();
  const gatewayWaiters = new Set<{ resolve: (e: GatewayEvent) => void; timer: NodeJS.Timeout }>();
  let closed = false;

  let identifyCount = 0;
  let resumeCount = 0;
  let heartbeatCount = 0;
  let connectionCount = 0;
  const conns = new Set<Conn>();
  let current: Session | undefined;
  const sessions = new Map<string, Session>();

  const violation = (v: string): void => {
    violations.push(v);
  };

  // ── users, channels, messages ──

  function ensureUser(id: string, username?: string): StandinUser {
    let u = users.get(id);
    if (!u) {
      u = { username: username ?? `user${id.slice(-4)}` };
      users.set(id, u);
    } else if (username && u.username !== username) {
      u.username = username;
    }
    return u;
  }

  function userJson(id: string): Json {
    if (id === botUserId) return botUserJson();
    const u = ensureUser(id);
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

  function botUserJson(): Json {
    return { id: botUserId, username: botUsername, global_name: null, discriminator: '0', avatar: null, bot: true, public_flags: 0, flags: 0, avatar_decoration_data: null, banner: null, accent_color: null };
  }

  function memberJson(id: string, o?: { roles?: string[] }): Json {
    return {
      user: userJson(id),
      nick: null,
      avatar: null,
      banner: null,
      roles: o?.roles ?? (id === botUserId ? [] : (users.get(id)?.roles ?? [])),
      joined_at: startedIso,
      premium_since: null,
      deaf: false,
      mute: false,
      flags: 0,
      pending: false,
      communication_disabled_until: null,
      unusual_dm_activity_until: null,
    };
  }

  function textChannelJson(withGuild: boolean): Json {
    return {
      id: channelId,
      type: 0,
      ...(withGuild ? { guild_id: guildId } : {}),
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

  function dmChannelFor(userId: string): string {
    let id = dmChannels.get(userId);
    if (!id) {
      id = snowflake();
      dmChannels.set(userId, id);
      dmOwner.set(id, userId);
    }
    return id;
  }

  function dmChannelJson(userId: string): Json {
    return { id: dmChannelFor(userId), type: 1, last_message_id: null, flags: 0, recipients: [userJson(userId)] };
  }

  function roleJson(id: string, name: string, position: number, permissions: string): Json {
    return { id, name, color: 0, colors: { primary_color: 0, secondary_color: null, tertiary_color: null }, hoist: false, icon: null, unicode_emoji: null, position, permissions, managed: false, mentionable: false, flags: 0 };
  }

  function guildCreateJson(): Json {
    const members = [botUserId, ...users.keys()].map((id) => memberJson(id));
    return {
      id: guildId,
      name: guildName,
      icon: null,
      splash: null,
      discovery_splash: null,
      banner: null,
      description: null,
      owner_id: [...users.keys()][0] ?? botUserId,
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 1,
      explicit_content_filter: 0,
      roles: [roleJson(guildId, '@everyone', 0, MEMBER_PERMISSIONS), ...[...roles].map(([id, name], i) => roleJson(id, name, i + 1, MEMBER_PERMISSIONS))],
      emojis: [],
      stickers: [],
      features: [],
      mfa_level: 0,
      application_id: null,
      system_channel_id: channelId,
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
      joined_at: startedIso,
      large: false,
      unavailable: false,
      member_count: members.length,
      voice_states: [],
      members,
      channels: [textChannelJson(false)],
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
      incidents_data: null,
      lazy: true,
    };
  }

  function channelJson(id: string): Json | undefined {
    if (id === channelId) return textChannelJson(true);
    const owner = dmOwner.get(id);
    return owner ? dmChannelJson(owner) : undefined;
  }

  function newMessage(channel: string, body: Json, extra: Json = {}): Json {
    const m: Json = {
      id: snowflake(),
      type: 0,
      channel_id: channel,
      author: botUserJson(),
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
    messages.set(m.id, m);
    return m;
  }

  function applyEdit(m: Json, body: Json, files: RestRequest['files']): void {
    if ('content' in body) m.content = typeof body.content === 'string' ? body.content : '';
    if ('embeds' in body) m.embeds = Array.isArray(body.embeds) ? body.embeds.map((e: Json) => ({ type: 'rich', ...e })) : [];
    if ('components' in body) m.components = Array.isArray(body.components) ? clone(body.components) : [];
    if ('flags' in body && body.flags !== null && body.flags !== undefined) m.flags = (m.flags & EPHEMERAL) | (Number(body.flags) & (SUPPRESS_EMBEDS | IS_COMPONENTS_V2));
    if ('attachments' in body && Array.isArray(body.attachments)) {
      const keep = new Set(body.attachments.map((a: Json) => String(a.id)));
      m.attachments = (m.attachments as Json[]).filter((a) => keep.has(String(a.id)));
    }
    m.flags &= ~LOADING;
    m.edited_timestamp = new Date().toISOString();
    addFiles(m, files);
  }

  function addFiles(m: Json, files: RestRequest['files']): void {
    for (const f of files) {
      const id = snowflake();
      m.attachments.push({ id, filename: f.name, size: f.size, content_type: f.contentType, url: `${baseUrl}/attachments/${m.channel_id}/${id}/${f.name}`, proxy_url: `${baseUrl}/attachments/${m.channel_id}/${id}/${f.name}` });
    }
  }

  /** Work that must wait until the current REST request is recorded (so a test woken by it sees the record). */
  const afterRecord: (() => void)[] = [];
  function flushAfterRecord(): void {
    for (const fn of afterRecord.splice(0)) fn();
  }

  function messageChanged(): void {
    afterRecord.push(notifyOriginalWaiters);
  }

  function notifyOriginalWaiters(): void {
    for (const w of [...originalWaiters]) {
      if (w.match(null)) {
        originalWaiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(null);
      }
    }
  }

  function originalOf(tokenValue: string): Json | undefined {
    const st = byToken.get(tokenValue);
    return st?.originalId ? messages.get(st.originalId) : undefined;
  }

  // ── interactions ──

  function interactionLabel(p: Json): string {
    const d = isObj(p.data) ? p.data : {};
    if (p.type === 2 || p.type === 4) {
      const parts = [`/${String(d.name)}`];
      let opts = d.options as Json[] | undefined;
      while (opts?.[0] && (opts[0].type === 1 || opts[0].type === 2)) {
        parts.push(String(opts[0].name));
        opts = opts[0].options as Json[] | undefined;
      }
      return `${p.type === 4 ? 'autocomplete ' : ''}${parts.join(' ')}`;
    }
    if (p.type === 3) return `component ${String(d.custom_id)}`;
    if (p.type === 5) return `modal ${String(d.custom_id)}`;
    return `interaction type ${String(p.type)}`;
  }

  function dispatchInteraction(payload: object, o: { waitMs?: number } = {}): DispatchedInteraction {
    if (closed) throw new Error('the Discord stand-in is closed');
    if (!current) throw new Error('no gateway session: has the client logged in?');
    const p = clone(payload) as Json;
    p.id ??= snowflake();
    p.token ??= `aW50ZXJhY3Rpb246${p.id}${randomBytes(48).toString('base64url')}`;
    const id = String(p.id);
    const tok = String(p.token);
    let resolve!: (r: CallbackResult) => void;
    let reject!: (e: Error) => void;
    const callback = new Promise<CallbackResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    callback.catch(() => undefined); // a handle nobody awaits must not become an unhandled rejection
    const label = interactionLabel(p);
    const waitMs = o.waitMs ?? 5000;
    const st: InteractionState = {
      id,
      token: tok,
      type: Number(p.type),
      payload: p,
      label,
      dispatchedAt: Date.now(),
      followUps: [],
      expired: false,
      flagged: false,
      settled: false,
      resolve,
      reject,
      deadline: setTimeout(() => {
        if (!st.acked) {
          st.flagged = true;
          violation(`interaction ${id} (${label}) was not acknowledged within ${ACK_DEADLINE_MS} ms`);
        }
      }, ACK_DEADLINE_MS),
      giveUp: setTimeout(() => {
        if (!st.settled) {
          st.settled = true;
          reject(new Error(`no callback for interaction ${id} (${label}) within ${waitMs} ms`));
        }
      }, waitMs),
    };
    // The message a component was clicked on is the interaction's @original until it replies.
    if (p.type === 3 && isObj(p.message)) {
      st.originalId = String(p.message.id);
      if (!messages.has(st.originalId)) messages.set(st.originalId, clone(p.message));
    }
    if (p.type === 5 && isObj(p.message)) st.originalId = String(p.message.id);
    interactions.set(id, st);
    byToken.set(tok, st);
    dispatch('INTERACTION_CREATE', p);
    return { id, token: tok, callback };
  }

  function settle(st: InteractionState, r: CallbackResult): void {
    if (st.settled) return;
    st.settled = true;
    clearTimeout(st.giveUp);
    afterRecord.push(() => st.resolve(r));
  }

  const CALLBACK_TYPES: Record<number, number[]> = {
    2: [4, 5, 9, 12],
    3: [4, 5, 6, 7, 9, 12],
    4: [8],
    5: [4, 5, 6, 7],
  };

  function handleCallback(id: string, tok: string, query: Record<string, string>, body: Json, files: RestRequest['files']): { status: number; body?: Json } {
    const st = interactions.get(id);
    const type = Number(body?.type);
    const data = isObj(body?.data) ? body.data : undefined;
    if (!st || st.token !== tok) {
      violation(`callback for an unknown interaction ${id}`);
      throw new HttpError(404, { message: 'Unknown interaction', code: 10062 });
    }
    const ms = Date.now() - st.dispatchedAt;
    const record = (status: number, error?: Json): void => {
      const r: CallbackResult = { type, ...(data !== undefined ? { data: clone(data) } : {}), ms, status, ...(error ? { error } : {}) };
      callbacks.push({ interactionId: id, token: tok, ...r });
      settle(st, r);
    };
    const fail = (status: number, err: Json, v?: string): never => {
      if (v) violation(v);
      record(status, err);
      throw new HttpError(status, err);
    };
    if (st.acked) fail(400, { message: 'Interaction has already been acknowledged.', code: 40060 }, `interaction ${id} (${st.label}) acknowledged twice (callback type ${type} after ${st.acked.type})`);
    if (ms > ACK_DEADLINE_MS) {
      const v = st.flagged ? undefined : `interaction ${id} (${st.label}) answered after ${ms} ms (more than ${ACK_DEADLINE_MS} ms)`;
      st.flagged = true;
      fail(404, { message: 'Unknown interaction', code: 10062 }, v);
    }
    const allowed = CALLBACK_TYPES[st.type] ?? [];
    if (!allowed.includes(type))
      fail(400, formError([{ path: 'type', code: 'INTERACTION_RESPONSE_TYPE_INVALID', message: `Interaction response type ${type} is not valid for interaction type ${st.type}` }]), `interaction ${id} (${st.label}): callback type ${type} is not allowed for interaction type ${st.type}`);
    if (st.type === 5 && (type === 6 || type === 7) && !st.originalId)
      fail(400, formError([{ path: 'type', code: 'INTERACTION_RESPONSE_TYPE_INVALID', message: 'This modal was not opened from a message' }]), `interaction ${id} (${st.label}): update of a modal that was not opened from a message`);

    // Validate data.
    let problems: Problem[] = [];
    if (type === 4 || type === 7) {
      problems = messageProblems(data ?? {}, 'data.');
      const after = type === 7 && st.originalId ? { ...messages.get(st.originalId), ...data } : { ...data, attachments: files };
      if (!problems.length && !hasAny(after) && !files.length)
        fail(400, { message: 'Cannot send an empty message', code: 50006 }, `interaction ${id} (${st.label}): empty message in callback type ${type}`);
    } else if (type === 8) {
      const choices = data?.choices;
      if (!Array.isArray(choices)) problems.push({ path: 'data.choices', code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
      else {
        if (choices.length > 25) problems.push({ path: 'data.choices', code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
        choices.forEach((c: unknown, i) => {
          if (!isObj(c) || !strLen(c.name) || strLen(c.name) > 100) problems.push({ path: `data.choices.${i}.name`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
          if (!isObj(c) || !(typeof c.value === 'number' || (typeof c.value === 'string' && strLen(c.value) <= 100)))
            problems.push({ path: `data.choices.${i}.value`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
        });
      }
    } else if (type === 9) {
      if (!data || !strLen(data.custom_id) || strLen(data.custom_id) > 100) problems.push({ path: 'data.custom_id', code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
      if (!data || !strLen(data.title) || strLen(data.title) > 45) problems.push({ path: 'data.title', code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 45 in length.' });
      if (!data || !Array.isArray(data.components) || data.components.length < 1 || data.components.length > 5)
        problems.push({ path: 'data.components', code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 5 in length.' });
    }
    if (problems.length) fail(400, formError(problems), `interaction ${id} (${st.label}): invalid callback type ${type}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);

    // Apply.
    const isCommand = st.type === 2;
    const meta = {
      webhook_id: appId,
      application_id: appId,
      interaction_metadata: {
        id,
        type: st.type,
        user: st.payload.member?.user ?? st.payload.user,
        authorizing_integration_owners: st.payload.authorizing_integration_owners ?? {},
        ...(isCommand ? { name: st.payload.data?.name, command_type: st.payload.data?.type ?? 1 } : {}),
      },
    };
    const channel = String(st.payload.channel?.id ?? st.payload.channel_id);
    let msg: Json | undefined;
    if (type === 4) {
      msg = newMessage(channel, data ?? {}, { ...meta, type: isCommand ? 20 : 19 });
      addFiles(msg, files);
      st.originalId = msg.id;
    } else if (type === 5) {
      msg = newMessage(channel, { content: '', flags: Number(data?.flags ?? 0) & EPHEMERAL }, { ...meta, type: isCommand ? 20 : 19 });
      msg.flags |= LOADING;
      st.originalId = msg.id;
    } else if (type === 7 && st.originalId) {
      msg = messages.get(st.originalId);
      if (msg) applyEdit(msg, data ?? {}, files);
    } else if (type === 6 && st.originalId) {
      msg = messages.get(st.originalId);
    } else if (type === 9 && data) {
      modals.set(String(data.custom_id), clone(data));
    }
    st.acked = { type, at: Date.now() };
    clearTimeout(st.deadline);
    record(query.with_response === 'true' ? 200 : 204);
    messageChanged();
    if (query.with_response !== 'true') return { status: 204 };
    return {
      status: 200,
      body: {
        interaction: {
          id,
          type: st.type,
          activity_instance_id: null,
          response_message_id: msg?.id ?? null,
          response_message_loading: msg ? Boolean(msg.flags & LOADING) : null,
          response_message_ephemeral: msg ? Boolean(msg.flags & EPHEMERAL) : null,
        },
        resource: { type, ...(msg && (type === 4 || type === 7) ? { message: clone(msg) } : {}) },
      },
    };
  }

  function webhookState(app: string, tok: string): InteractionState {
    const st = byToken.get(tok);
    if (!st) {
      violation(`interaction webhook used with an unknown token`);
      throw notFound('Webhook', 10015);
    }
    if (app !== appId || app !== String(st.payload.application_id)) {
      violation(`interaction webhook for ${st.label} used with application id ${app} (expected ${appId})`);
      throw notFound('Webhook', 10015);
    }
    if (st.expired || Date.now() - st.dispatchedAt > TOKEN_TTL_MS) {
      violation(`interaction webhook for ${st.label} used after its token expired`);
      throw new HttpError(401, { message: 'Invalid Webhook Token', code: 50027 });
    }
    if (!st.acked) {
      violation(`interaction webhook for ${st.label} used before the interaction was acknowledged`);
      throw notFound('Webhook', 10015);
    }
    if (st.acked.type === 8) {
      violation(`interaction webhook used for an autocomplete interaction (${st.label})`);
      throw notFound('Webhook', 10015);
    }
    return st;
  }

  function webhookMessage(st: InteractionState, mid: string): Json {
    const id = mid === '@original' ? st.originalId : st.followUps.includes(mid) || mid === st.originalId ? mid : undefined;
    const m = id ? messages.get(id) : undefined;
    if (!m) throw notFound('Message', 10008);
    return m;
  }

  // ── gateway ──

  function send(conn: Conn, payload: Json): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(JSON.stringify(payload));
  }

  function dispatchOn(session: Session, t: string, d: Json): void {
    session.seq += 1;
    const payload = { op: 0, t, s: session.seq, d };
    session.log.push({ s: session.seq, payload });
    if (session.log.length > 1000) session.log.shift();
    if (session.conn?.authed) send(session.conn, payload);
  }

  function dispatch(t: string, d: Json): void {
    if (!current) throw new Error('no gateway session');
    dispatchOn(current, t, d);
  }

  function gatewayEvent(e: GatewayEvent): void {
    for (const w of [...gatewayWaiters]) {
      gatewayWaiters.delete(w);
      w.resolve(e);
    }
  }

  function nextGatewayEvent(timeoutMs: number, what: string): Promise<GatewayEvent> {
    return new Promise((resolve, reject) => {
      const w = {
        resolve: (e: GatewayEvent) => {
          clearTimeout(w.timer);
          resolve(e);
        },
        timer: setTimeout(() => {
          gatewayWaiters.delete(w);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs),
      };
      gatewayWaiters.add(w);
    });
  }

  function onGatewayMessage(conn: Conn, raw: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(raw);
    } catch {
      violation(`gateway: undecodable payload ${raw.slice(0, 200)}`);
      conn.ws.close(4002, 'Error while decoding payload.');
      return;
    }
    if (!isObj(msg)) return void conn.ws.close(4002, 'Error while decoding payload.');
    const op = msg.op as number;
    const d = msg.d;
    if (op === 1) {
      heartbeatCount += 1;
      if (conn.session && typeof d === 'number' && d > conn.session.seq) violation(`gateway: heartbeat with sequence ${d} beyond the last sent ${conn.session.seq}`);
      send(conn, { op: 11, d: null, s: null, t: null });
      return;
    }
    if (op === 2) {
      if (conn.authed) return void conn.ws.close(4005, 'Already authenticated.');
      if (!isObj(d) || d.token !== token) {
        violation('gateway: IDENTIFY with a wrong token');
        return void conn.ws.close(4004, 'Authentication failed.');
      }
      if (typeof d.intents !== 'number') return void conn.ws.close(4013, 'Invalid intent(s).');
      if (Array.isArray(d.shard) && (d.shard[0] !== 0 || d.shard[1] !== 1)) return void conn.ws.close(4010, 'Invalid shard.');
      identifyCount += 1;
      const session: Session = { id: randomBytes(16).toString('hex'), seq: 0, log: [], conn };
      sessions.set(session.id, session);
      if (current?.conn && current.conn !== conn) current.conn = undefined;
      current = session;
      conn.session = session;
      conn.authed = true;
      dispatchOn(session, 'READY', {
        v: 10,
        user_settings: {},
        user: { ...botUserJson(), verified: true, mfa_enabled: false, email: null },
        guilds: [{ id: guildId, unavailable: true }],
        guild_join_requests: [],
        relationships: [],
        private_channels: [],
        presences: [],
        session_id: session.id,
        session_type: 'normal',
        resume_gateway_url: resumeUrl,
        shard: [0, 1],
        application: { id: appId, flags: 0 },
        geo_ordered_rtc_regions: [],
        auth: {},
        _trace: ['["gateway-standin",{"micros":0}]'],
      });
      dispatchOn(session, 'GUILD_CREATE', guildCreateJson());
      gatewayEvent('ready');
      return;
    }
    if (op === 6) {
      if (conn.authed) return void conn.ws.close(4005, 'Already authenticated.');
      if (!isObj(d) || d.token !== token) {
        violation('gateway: RESUME with a wrong token');
        return void conn.ws.close(4004, 'Authentication failed.');
      }
      const session = sessions.get(String(d.session_id));
      if (!session || typeof d.seq !== 'number' || d.seq > session.seq) {
        send(conn, { op: 9, d: false, s: null, t: null });
        return;
      }
      if (conn.path !== '/resume') violation(`gateway: RESUME on ${conn.path} instead of the resume_gateway_url`);
      if (session.conn && session.conn !== conn) session.conn.ws.close(4009, 'Session timed out.');
      resumeCount += 1;
      session.conn = conn;
      conn.session = session;
      conn.authed = true;
      current = session;
      for (const e of session.log) if (e.s > d.seq) send(conn, e.payload);
      dispatchOn(session, 'RESUMED', { _trace: ['["gateway-standin",{"micros":0}]'] });
      gatewayEvent('resumed');
      return;
    }
    if (!conn.authed) return void conn.ws.close(4003, 'Not authenticated.');
    if (op === 3 || op === 4) return; // presence / voice state: accepted, ignored
    if (op === 8) {
      const q = isObj(d) ? d : {};
      if (q.guild_id !== guildId || !conn.session) return;
      const ids = Array.isArray(q.user_ids) ? q.user_ids.map(String) : typeof q.user_ids === 'string' ? [q.user_ids] : undefined;
      const prefix = typeof q.query === 'string' ? q.query.toLowerCase() : '';
      const all = [botUserId, ...users.keys()];
      const members = all
        .filter((uid) => (ids ? ids.includes(uid) : (uid === botUserId ? botUsername : ensureUser(uid).username).toLowerCase().startsWith(prefix)))
        .slice(0, ids || !q.limit ? undefined : Number(q.limit))
        .map((uid) => memberJson(uid));
      const notFoundIds = ids?.filter((uid) => !all.includes(uid));
      dispatchOn(conn.session, 'GUILD_MEMBERS_CHUNK', { guild_id: guildId, members, chunk_index: 0, chunk_count: 1, ...(notFoundIds?.length ? { not_found: notFoundIds } : {}), ...(q.nonce ? { nonce: q.nonce } : {}) });
      return;
    }
    violation(`gateway: unknown opcode ${String(op)}`);
    conn.ws.close(4001, 'Unknown opcode.');
  }

  // ── REST ──

  function waitFor<T>(set: Set<Waiter<T>>, existing: T[], match: (x: T) => boolean, timeoutMs: number, what: () => string): Promise<T> {
    const found = existing.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          set.delete(w);
          reject(new Error(what()));
        }, timeoutMs),
      };
      set.add(w);
    });
  }

  function record(r: RestRequest): void {
    requests.push(r);
    for (const w of [...requestWaiters]) {
      if (w.match(r)) {
        requestWaiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(r);
      }
    }
  }

  function putCommands(list: Json[], body: Json[], scopeGuild?: string): Json[] {
    const before = new Map(list.map((c) => [`${c.type}:${c.name}`, c]));
    const next = body.map((c) => {
      const type = (c.type as number | undefined) ?? 1;
      const prev = before.get(`${type}:${String(c.name)}`);
      return {
        ...clone(c),
        id: prev?.id ?? snowflake(),
        application_id: appId,
        version: snowflake(),
        type,
        ...(scopeGuild ? { guild_id: scopeGuild } : {}),
        description: c.description ?? '',
        default_member_permissions: c.default_member_permissions ?? null,
        nsfw: c.nsfw ?? false,
        ...(scopeGuild ? {} : { dm_permission: c.dm_permission ?? true }),
        integration_types: c.integration_types ?? [0],
        contexts: c.contexts ?? null,
      };
    });
    list.splice(0, list.length, ...next);
    return clone(next);
  }

  /** Routes a REST call; throws HttpError for Discord's error answers. `bucket` names the rate-limit bucket. */
  async function route(method: string, seg: string[], query: Record<string, string>, body: Json, files: RestRequest['files'], authorization: string | undefined): Promise<{ status: number; body?: unknown; bucket: string }> {
    const [a, b, c, d, e] = seg;
    const n = seg.length;
    const ok = (status: number, out: unknown, bucket: string) => ({ status, body: out, bucket });

    // Interactions (no auth).
    if (a === 'interactions' && n === 4 && d === 'callback' && method === 'POST') {
      const r = handleCallback(b!, c!, query, body, files);
      return ok(r.status, r.body, 'POST /interactions/:id/:token/callback');
    }
    if (a === 'webhooks' && b && c) {
      const st = webhookState(b, c);
      if (n === 3 && method === 'POST') {
        const problems = messageProblems(body ?? {});
        if (problems.length) {
          violation(`follow-up for ${st.label}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
          throw new HttpError(400, formError(problems));
        }
        if (!hasAny(body ?? {}) && !files.length) {
          violation(`follow-up for ${st.label}: empty message`);
          throw new HttpError(400, { message: 'Cannot send an empty message', code: 50006 });
        }
        const orig = st.originalId ? messages.get(st.originalId) : undefined;
        if (orig && orig.flags & LOADING) {
          // The first follow-up after a deferred reply replaces the "thinking…" message.
          applyEdit(orig, { ...body, flags: undefined }, files);
          messageChanged();
          return ok(200, clone(orig), 'POST /webhooks/:id/:token');
        }
        const m = newMessage(String(st.payload.channel?.id ?? st.payload.channel_id), body ?? {}, { type: 0, webhook_id: appId, application_id: appId });
        addFiles(m, files);
        st.followUps.push(m.id);
        messageChanged();
        return ok(200, clone(m), 'POST /webhooks/:id/:token');
      }
      if (n === 5 && d === 'messages' && e) {
        const m = webhookMessage(st, e);
        const bucket = `${method} /webhooks/:id/:token/messages/:message_id`;
        if (method === 'GET') return ok(200, clone(m), bucket);
        if (method === 'PATCH') {
          const problems = messageProblems({ ...body, flags: body?.flags ?? m.flags });
          if (problems.length) {
            violation(`edit of ${e} for ${st.label}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
            throw new HttpError(400, formError(problems));
          }
          const after = { ...m, ...body };
          if (!hasAny(after) && !files.length && !(Array.isArray(m.attachments) && m.attachments.length && !('attachments' in (body ?? {})))) {
            violation(`edit of ${e} for ${st.label}: the message would be empty`);
            throw new HttpError(400, { message: 'Cannot send an empty message', code: 50006 });
          }
          applyEdit(m, body ?? {}, files);
          messageChanged();
          return ok(200, clone(m), bucket);
        }
        if (method === 'DELETE') {
          messages.delete(m.id);
          messageChanged();
          return ok(204, undefined, bucket);
        }
      }
    }

    if (authorization !== `Bot ${token}`) {
      violation(`${method} /${seg.join('/')} without a valid bot Authorization header`);
      throw new HttpError(401, { message: '401: Unauthorized', code: 0 });
    }
    if (a === 'gateway' && b === 'bot' && n === 2 && method === 'GET')
      return ok(200, { url: gatewayUrl, shards: 1, session_start_limit: { total: 1000, remaining: 1000 - identifyCount, reset_after: 14_400_000, max_concurrency: 1 } }, 'GET /gateway/bot');
    if (a === 'gateway' && n === 1 && method === 'GET') return ok(200, { url: gatewayUrl }, 'GET /gateway');
    if (a === 'users' && b === '@me' && n === 2 && method === 'GET') return ok(200, { ...botUserJson(), verified: true, mfa_enabled: false, locale: 'en-US', email: null }, 'GET /users/@me');
    if (a === 'users' && b === '@me' && c === 'channels' && n === 3 && method === 'POST') {
      const rid = String(body?.recipient_id ?? '');
      if (!users.has(rid)) throw new HttpError(400, { message: 'Invalid Recipient(s)', code: 50033 });
      return ok(200, dmChannelJson(rid), 'POST /users/@me/channels');
    }
    if (a === 'users' && b && n === 2 && method === 'GET') {
      if (b !== botUserId && !users.has(b)) throw notFound('User', 10013);
      return ok(200, userJson(b), 'GET /users/:id');
    }
    if ((a === 'applications' && b === '@me' && n === 2) || (a === 'oauth2' && b === 'applications' && c === '@me' && n === 3)) {
      if (method !== 'GET') throw new HttpError(405, { message: '405: Method Not Allowed', code: 0 });
      return ok(200, applicationJson(), 'GET /applications/@me');
    }
    if (a === 'applications' && b) {
      if (b !== appId) throw new HttpError(403, { message: 'Missing Access', code: 50001 });
      const guildScope = c === 'guilds' ? d : undefined;
      const rest = guildScope ? seg.slice(4) : seg.slice(2);
      if (rest[0] === 'commands') {
        if (guildScope !== undefined && guildScope !== guildId) throw notFound('Guild', 10004);
        const list = guildScope ? guildCommands : globalCommands;
        const bucket = `${method} /applications/:id${guildScope ? '/guilds/:guild_id' : ''}/commands${rest.length > 1 ? '/:command_id' : ''}`;
        if (rest.length === 1 && method === 'GET') return ok(200, clone(list), bucket);
        if (rest.length === 1 && method === 'PUT') {
          const problems = commandProblems(body);
          if (problems.length) {
            violation(`command registration rejected: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
            throw new HttpError(400, formError(problems));
          }
          return ok(200, putCommands(list, body as unknown as Json[], guildScope), bucket);
        }
        if (rest.length === 1 && method === 'POST') {
          const problems = commandProblems([body]);
          if (problems.length) {
            violation(`command registration rejected: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
            throw new HttpError(400, formError(problems));
          }
          const type = (body.type as number | undefined) ?? 1;
          const others = list.filter((x) => !(x.type === type && x.name === body.name));
          const existed = others.length !== list.length;
          const merged = [...others.map((x) => ({ ...x })), body];
          const prevIds = new Map(list.map((x) => [`${x.type}:${x.name}`, x]));
          putCommands(list, merged, guildScope);
          for (const x of list) {
            const prev = prevIds.get(`${x.type}:${x.name}`);
            if (prev) x.id = prev.id;
          }
          return ok(existed ? 200 : 201, clone(list.find((x) => x.type === type && x.name === body.name)), bucket);
        }
        if (rest.length === 2) {
          const i = list.findIndex((x) => x.id === rest[1]);
          if (i < 0) throw notFound('application command', 10063);
          if (method === 'GET') return ok(200, clone(list[i]), bucket);
          if (method === 'DELETE') {
            list.splice(i, 1);
            return ok(204, undefined, bucket);
          }
        }
      }
    }
    if (a === 'guilds' && b) {
      if (b !== guildId) throw notFound('Guild', 10004);
      if (n === 2 && method === 'GET') {
        const g = guildCreateJson();
        for (const k of ['members', 'channels', 'threads', 'presences', 'voice_states', 'stage_instances', 'guild_scheduled_events', 'soundboard_sounds', 'joined_at', 'large', 'unavailable', 'member_count', 'lazy']) delete g[k];
        return ok(200, g, 'GET /guilds/:id');
      }
      if (c === 'channels' && n === 3 && method === 'GET') return ok(200, [textChannelJson(true)], 'GET /guilds/:id/channels');
      if (c === 'members' && d && n === 4 && method === 'GET') {
        if (d !== botUserId && !users.has(d)) throw notFound('Member', 10007);
        return ok(200, memberJson(d), 'GET /guilds/:id/members/:user_id');
      }
    }
    if (a === 'channels' && b) {
      const ch = channelJson(b);
      if (!ch) throw notFound('Channel', 10003);
      if (n === 2 && method === 'GET') return ok(200, ch, 'GET /channels/:id');
      if (c === 'messages' && n === 3 && method === 'POST') {
        const owner = dmOwner.get(b);
        if (owner && users.get(owner)?.dmsClosed) throw new HttpError(403, { message: 'Cannot send messages to this user', code: 50007 });
        const problems = messageProblems(body ?? {});
        if (problems.length) {
          violation(`message to channel ${b}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
          throw new HttpError(400, formError(problems));
        }
        if (!hasAny(body ?? {}) && !files.length) {
          violation(`message to channel ${b}: empty message`);
          throw new HttpError(400, { message: 'Cannot send an empty message', code: 50006 });
        }
        if (Number(body?.flags ?? 0) & EPHEMERAL) violation(`message to channel ${b} with the ephemeral flag (only interaction responses can be ephemeral)`);
        const m = newMessage(b, { ...body, flags: Number(body?.flags ?? 0) & ~EPHEMERAL });
        addFiles(m, files);
        messageChanged();
        return ok(200, clone(m), 'POST /channels/:id/messages');
      }
      if (c === 'messages' && d && n === 4) {
        const m = messages.get(d);
        if (!m || m.channel_id !== b || m.flags & EPHEMERAL) throw notFound('Message', 10008);
        const bucket = `${method} /channels/:id/messages/:message_id`;
        if (method === 'GET') return ok(200, clone(m), bucket);
        if (method === 'PATCH') {
          if (m.author?.id !== botUserId) throw new HttpError(403, { message: 'Cannot edit a message authored by another user', code: 50005 });
          const problems = messageProblems({ ...body, flags: body?.flags ?? m.flags });
          if (problems.length) {
            violation(`edit of message ${d}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
            throw new HttpError(400, formError(problems));
          }
          applyEdit(m, body ?? {}, files);
          messageChanged();
          return ok(200, clone(m), bucket);
        }
        if (method === 'DELETE') {
          messages.delete(d);
          messageChanged();
          return ok(204, undefined, bucket);
        }
      }
    }
    violation(`unknown route ${method} /${seg.join('/')}`);
    throw new HttpError(404, { message: '404: Not Found', code: 0 });
  }

  function applicationJson(): Json {
    return {
      id: appId,
      name: botUsername,
      icon: null,
      description: 'gpubot stand-in application',
      summary: '',
      type: null,
      hook: true,
      bot_public: false,
      bot_require_code_grant: false,
      verify_key: randomBytes(32).toString('hex'),
      flags: 0,
      owner: userJson([...users.keys()][0] ?? botUserId),
      team: null,
      bot: botUserJson(),
      guild_id: guildId,
      approximate_guild_count: 1,
      redirect_uris: [],
      interactions_endpoint_url: null,
      integration_types_config: { '0': {} },
      tags: [],
    };
  }

  function rateLimitHeaders(bucket: string): Record<string, string> {
    return {
      'x-ratelimit-limit': '50',
      'x-ratelimit-remaining': '49',
      'x-ratelimit-reset': ((Date.now() + 1000) / 1000).toFixed(3),
      'x-ratelimit-reset-after': '1.000',
      'x-ratelimit-bucket': createHash('sha1').update(bucket).digest('hex').slice(0, 32),
    };
  }

  function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
    if (status === 204 || body === undefined) {
      res.writeHead(status === 200 ? 204 : status, headers);
      res.end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    res.end(text);
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const raw = await readBody(req);
    const m = /^\/api\/v(\d+)(\/.*)?$/.exec(url.pathname);
    const query = Object.fromEntries(url.searchParams);
    let path = url.pathname;
    let seg: string[] = [];
    if (m) {
      if (m[1] !== '10') violation(`REST call with API version v${m[1]} (expected v10): ${method} ${url.pathname}`);
      seg = (m[2] ?? '/').split('/').filter(Boolean).map((s) => {
        try {
          return decodeURIComponent(s);
        } catch {
          return s;
        }
      });
      path = `/${seg.join('/')}`;
    }
    // Body: JSON or multipart (payload_json + files[n]).
    let body: Json | undefined;
    const files: RestRequest['files'] = [];
    const ct = String(req.headers['content-type'] ?? '');
    try {
      if (raw.length && ct.startsWith('multipart/form-data')) {
        const form = await new Response(raw, { headers: { 'content-type': ct } }).formData();
        for (const [field, value] of form.entries()) {
          if (typeof value === 'string') {
            if (field === 'payload_json') body = JSON.parse(value) as Json;
            else (body ??= {})[field] = value;
          } else {
            files.push({ field, name: value.name, contentType: value.type, size: value.size });
          }
        }
      } else if (raw.length) {
        body = JSON.parse(raw.toString('utf8')) as Json;
      }
    } catch {
      const r: RestRequest = { method, path, query, body: raw.toString('utf8'), files, authorization: req.headers.authorization, status: 400, response: { message: '400: Bad Request', code: 0 }, at: Date.now() };
      violation(`undecodable body in ${method} ${path}`);
      record(r);
      reply(res, 400, r.response, rateLimitHeaders(`${method} ${path}`));
      return;
    }

    const rec: RestRequest = { method, path, query, body, files, authorization: req.headers.authorization, status: 0, response: undefined, at: Date.now() };
    const fi = failures.findIndex((x) => x.method === method && x.pattern.test(path));
    if (fi >= 0) {
      const fail = failures[fi]!;
      if (--fail.times <= 0) failures.splice(fi, 1);
      const headers = rateLimitHeaders(`${method} ${path}`);
      let out = fail.body ?? { message: `${fail.status}: injected failure`, code: 0 };
      if (fail.status === 429) {
        const after = fail.retryAfter ?? 0.1;
        Object.assign(headers, { 'retry-after': String(after), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': after.toFixed(3), 'x-ratelimit-scope': 'user' });
        out = fail.body ?? { message: 'You are being rate limited.', retry_after: after, global: false };
      }
      rec.status = fail.status;
      rec.response = out;
      record(rec);
      reply(res, fail.status, out, headers);
      return;
    }
    if (!m) {
      violation(`request outside /api/v10: ${method} ${url.pathname}`);
      rec.status = 404;
      rec.response = { message: '404: Not Found', code: 0 };
      record(rec);
      reply(res, 404, rec.response, {});
      return;
    }
    let status: number;
    let out: unknown;
    let bucket = `${method} ${path}`;
    try {
      const r = await route(method, seg, query, body ?? ({} as Json), files, req.headers.authorization);
      status = r.status;
      out = r.body;
      bucket = r.bucket;
    } catch (err) {
      if (err instanceof HttpError) {
        status = err.status;
        out = err.body;
      } else {
        violation(`stand-in error in ${method} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        status = 500;
        out = { message: '500: Internal Server Error', code: 0 };
      }
    }
    rec.status = status;
    rec.response = out;
    record(rec);
    flushAfterRecord();
    reply(res, status, out, rateLimitHeaders(bucket));
  }

  // ── servers ──

  const httpSockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handleHttp(req, res).catch((err: unknown) => {
      violation(`stand-in error in ${req.method} ${req.url}: ${err instanceof Error ? err.stack : String(err)}`);
      if (!res.headersSent) reply(res, 500, { message: '500: Internal Server Error', code: 0 }, {});
    });
  });
  server.on('connection', (s: Socket) => {
    httpSockets.add(s);
    s.on('close', () => httpSockets.delete(s));
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (closed || (url.pathname !== '/' && url.pathname !== '/resume')) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn: Conn = { ws, path: url.pathname, authed: false };
      connectionCount += 1;
      conns.add(conn);
      ws.on('error', () => {
        /* a client that vanishes mid-frame; 'close' follows */
      });
      ws.on('close', () => {
        conns.delete(conn);
        if (conn.session?.conn === conn) conn.session.conn = undefined;
      });
      const v = url.searchParams.get('v');
      const encoding = url.searchParams.get('encoding');
      if (v !== '10') {
        violation(`gateway: connected with v=${String(v)} (expected 10)`);
        ws.close(4012, 'Invalid API version');
        return;
      }
      if (encoding !== 'json') {
        violation(`gateway: connected with encoding=${String(encoding)} (only json is served)`);
        ws.close(4002, 'Error while decoding payload.');
        return;
      }
      if (url.searchParams.has('compress')) violation(`gateway: compress=${url.searchParams.get('compress')} requested; the stand-in sends uncompressed text frames`);
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          violation('gateway: binary frame from client');
          return void ws.close(4002, 'Error while decoding payload.');
        }
        onGatewayMessage(conn, data.toString());
      });
      send(conn, { op: 10, d: { heartbeat_interval: heartbeatInterval, _trace: ['["gateway-standin",{"micros":0}]'] }, s: null, t: null });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  const gatewayUrl = `ws://127.0.0.1:${port}`;
  const resumeUrl = `ws://127.0.0.1:${port}/resume`;

  // ── builders ──

  function registeredCommand(name: string): Json | undefined {
    return guildCommands.find((c) => c.name === name && (c.type ?? 1) === 1) ?? globalCommands.find((c) => c.name === name && (c.type ?? 1) === 1);
  }

  function basePayload(o: InteractionBase, type: number, data: Json, extra: Json = {}): Json {
    ensureUser(o.userId, o.username);
    const common = {
      id: snowflake(),
      application_id: appId,
      type,
      data,
      version: 1,
      app_permissions: BOT_PERMISSIONS,
      locale: o.locale ?? 'en-US',
      entitlements: [],
      attachment_size_limit: 10_485_760,
    };
    const p: Json = o.dm
      ? { ...common, channel_id: dmChannelFor(o.userId), channel: dmChannelJson(o.userId), user: userJson(o.userId), context: 1, authorizing_integration_owners: { '0': '0' } }
      : {
          ...common,
          guild_id: guildId,
          guild: { id: guildId, locale: 'en-US', features: [] },
          guild_locale: 'en-US',
          channel_id: channelId,
          channel: { ...textChannelJson(true), permissions: MEMBER_PERMISSIONS },
          member: { ...memberJson(o.userId, { roles: o.roles ?? users.get(o.userId)?.roles ?? [] }), permissions: o.permissions ?? MEMBER_PERMISSIONS },
          context: 0,
          authorizing_integration_owners: { '0': guildId },
        };
    Object.assign(p, extra);
    p.token = `aW50ZXJhY3Rpb246${String(p.id)}${randomBytes(48).toString('base64url')}`;
    return p;
  }

  const inferType = (v: string | number | boolean): number => (typeof v === 'boolean' ? 5 : typeof v === 'number' ? (Number.isInteger(v) ? 4 : 10) : 3);

  /** Command data options for name/group/subcommand with typed options, checked against the registered command. */
  function commandData(o: { name?: string; subcommandGroup?: string; subcommand?: string; options?: OptionInput[] }, focused?: { name: string; value: string }, dm?: boolean): Json {
    const name = o.name ?? 'gpu';
    const cmd = registeredCommand(name);
    let schemaOpts: Json[] | undefined = cmd ? ((cmd.options as Json[] | undefined) ?? []) : undefined;
    const where = [`/${name}`];
    if (cmd && o.subcommandGroup) {
      const g = schemaOpts?.find((x) => x.type === 2 && x.name === o.subcommandGroup);
      if (!g) throw new Error(`registered command /${name} has no subcommand group ${o.subcommandGroup}`);
      schemaOpts = g.options ?? [];
      where.push(o.subcommandGroup);
    }
    if (cmd && o.subcommand) {
      const s = schemaOpts?.find((x) => x.type === 1 && x.name === o.subcommand);
      if (!s) throw new Error(`registered command ${where.join(' ')} has no subcommand ${o.subcommand}`);
      schemaOpts = s.options ?? [];
      where.push(o.subcommand);
    }
    const resolved: Json = {};
    const leaf: Json[] = [];
    const inputs = [...(o.options ?? [])];
    if (focused) inputs.push({ name: focused.name, value: focused.value });
    for (const opt of inputs) {
      const schema = schemaOpts?.find((x) => x.name === opt.name);
      if (schemaOpts && !schema) throw new Error(`registered command ${where.join(' ')} has no option ${opt.name}`);
      const type = opt.type ?? (schema?.type as number | undefined) ?? inferType(opt.value);
      if (schema && schema.type !== type) throw new Error(`option ${opt.name} of ${where.join(' ')} has type ${String(schema.type)}, not ${type}`);
      const isFocused = focused?.name === opt.name;
      if (!isFocused) {
        if (type === 3 && typeof opt.value !== 'string') throw new Error(`option ${opt.name} is a string option`);
        if (type === 4 && !Number.isInteger(opt.value)) throw new Error(`option ${opt.name} is an integer option`);
        if (type === 10 && typeof opt.value !== 'number') throw new Error(`option ${opt.name} is a number option`);
        if (type === 5 && typeof opt.value !== 'boolean') throw new Error(`option ${opt.name} is a boolean option`);
        if (schema) {
          if (typeof opt.value === 'number' && ((typeof schema.min_value === 'number' && opt.value < schema.min_value) || (typeof schema.max_value === 'number' && opt.value > schema.max_value)))
            throw new Error(`option ${opt.name}=${opt.value} is outside ${String(schema.min_value)}..${String(schema.max_value)}: Discord would not send it`);
          if (typeof opt.value === 'string' && ((typeof schema.max_length === 'number' && opt.value.length > schema.max_length) || (typeof schema.min_length === 'number' && opt.value.length < schema.min_length)))
            throw new Error(`option ${opt.name} is longer or shorter than the registered length limits: Discord would not send it`);
          if (Array.isArray(schema.choices) && schema.choices.length && !schema.choices.some((ch: Json) => ch.value === opt.value))
            throw new Error(`option ${opt.name}=${String(opt.value)} is not one of the registered choices`);
        }
      }
      const id = String(opt.value);
      if (!isFocused && (type === 6 || type === 9) && (users.has(id) || id === botUserId)) {
        (resolved.users ??= {})[id] = userJson(id);
        if (!dm) {
          const member = memberJson(id);
          delete member.user; // resolved members come without their user
          (resolved.members ??= {})[id] = { ...member, permissions: MEMBER_PERMISSIONS };
        }
      }
      if (!isFocused && type === 7) {
        const ch = channelJson(id);
        if (ch) (resolved.channels ??= {})[id] = { id, type: ch.type, name: ch.name, permissions: MEMBER_PERMISSIONS, ...(ch.guild_id ? { guild_id: ch.guild_id, parent_id: null, flags: 0 } : {}) };
      }
      if (!isFocused && (type === 8 || type === 9) && (roles.has(id) || id === guildId)) (resolved.roles ??= {})[id] = roleJson(id, roles.get(id) ?? '@everyone', 0, MEMBER_PERMISSIONS);
      leaf.push({ type, name: opt.name, value: opt.value, ...(isFocused ? { focused: true } : {}) });
    }
    if (schemaOpts && !focused) {
      for (const s of schemaOpts) if (s.required === true && !leaf.some((l) => l.name === s.name)) throw new Error(`required option ${String(s.name)} of ${where.join(' ')} is missing: Discord would not send it`);
    }
    let options: Json[] = leaf;
    if (o.subcommand) options = [{ type: 1, name: o.subcommand, options: leaf }];
    if (o.subcommandGroup) options = [{ type: 2, name: o.subcommandGroup, options }];
    return {
      id: cmd?.id ?? snowflake(),
      name,
      type: 1,
      ...(cmd?.guild_id && !dm ? { guild_id: cmd.guild_id } : {}),
      options,
      ...(Object.keys(resolved).length ? { resolved } : {}),
    };
  }

  function componentWith(msg: Json, customId: string): Json | undefined {
    const walk = (list: unknown): Json | undefined => {
      if (!Array.isArray(list)) return undefined;
      for (const c of list) {
        if (!isObj(c)) continue;
        if (c.custom_id === customId) return c;
        const inner = walk(c.components) ?? (isObj(c.accessory) && c.accessory.custom_id === customId ? c.accessory : undefined);
        if (inner) return inner;
      }
      return undefined;
    };
    return walk(msg.components);
  }

  const standin: DiscordStandin = {
    apiUrl: `${baseUrl}/api`,
    baseUrl,
    gatewayUrl,
    resumeUrl,
    token,
    appId,
    guildId,
    guildName,
    channelId,
    botUserId,
    botUsername,
    requests,
    callbacks,
    violations,
    users,
    messages,

    requestsTo: (method, pathPattern) => requests.filter((r) => r.method === method.toUpperCase() && pathPattern.test(r.path)),
    waitForRequest: (method, pathPattern, predicate = () => true, timeoutMs = 5000) =>
      waitFor(requestWaiters, requests, (r) => r.method === method.toUpperCase() && pathPattern.test(r.path) && predicate(r.body), timeoutMs, () =>
        `timed out after ${timeoutMs} ms waiting for ${method} ${String(pathPattern)}; seen: ${requests.map((r) => `${r.method} ${r.path}`).join(', ') || 'none'}`,
      ),
    failNext: (method, pathPattern, status, body, o = {}) => {
      failures.push({ method: method.toUpperCase(), pattern: pathPattern, status, ...(body ? { body } : {}), ...(o.retryAfter !== undefined ? { retryAfter: o.retryAfter } : {}), times: o.times ?? 1 });
    },

    dispatchInteraction,
    original: (tok) => clone(originalOf(tok)),
    waitForOriginal: (tok, predicate, timeoutMs = 5000) => {
      const check = (): boolean => {
        const m = originalOf(tok);
        return m !== undefined && predicate(clone(m));
      };
      if (check()) return Promise.resolve(clone(originalOf(tok)));
      return new Promise((resolve, reject) => {
        const w = {
          token: tok,
          match: () => check(),
          resolve: () => resolve(clone(originalOf(tok))),
          reject,
          timer: setTimeout(() => {
            originalWaiters.delete(w);
            reject(new Error(`timed out after ${timeoutMs} ms waiting for the original message of ${byToken.get(tok)?.label ?? 'an unknown interaction'}; now: ${JSON.stringify(originalOf(tok) ?? null).slice(0, 500)}`));
          }, timeoutMs),
        };
        originalWaiters.add(w);
      });
    },
    followUps: (tok) => (byToken.get(tok)?.followUps ?? []).map((id) => messages.get(id)).filter((m): m is Json => m !== undefined).map(clone),
    expireToken: (tok) => {
      const st = byToken.get(tok);
      if (!st) throw new Error('unknown interaction token');
      st.expired = true;
    },

    slashCommand: (o) => basePayload(o, 2, commandData(o, undefined, o.dm)),
    autocomplete: (o) => basePayload(o, 4, commandData(o, { name: o.focused, value: o.value }, o.dm)),
    button: (o) => {
      let message: Json;
      if (o.messageId) {
        const found = messages.get(o.messageId);
        if (!found) throw new Error(`no stored message ${o.messageId}`);
        const comp = componentWith(found, o.customId);
        if (!comp) throw new Error(`message ${o.messageId} has no component with custom_id ${o.customId}`);
        if (comp.type !== 2) throw new Error(`component ${o.customId} is not a button (type ${String(comp.type)})`);
        if (comp.disabled === true) throw new Error(`button ${o.customId} is disabled: Discord would not send a click`);
        message = clone(found);
      } else {
        const ch = o.dm ? dmChannelFor(o.userId) : channelId;
        message = newMessage(ch, { content: '', components: [{ type: 1, components: [{ type: 2, style: 1, label: 'Button', custom_id: o.customId }] }], flags: o.ephemeral ? EPHEMERAL : 0 }, { application_id: appId });
        message = clone(message);
      }
      const dm = o.dm ?? dmOwner.has(String(message.channel_id));
      return basePayload({ ...o, dm }, 3, { component_type: 2, custom_id: o.customId }, { message });
    },
    modalSubmit: (o) => {
      const shown = modals.get(o.customId);
      const components: Json[] = [];
      const used = new Set<string>();
      if (shown && Array.isArray(shown.components)) {
        for (const c of shown.components as Json[]) {
          if (c.type === 1 && Array.isArray(c.components)) {
            components.push({ type: 1, ...(c.id !== undefined ? { id: c.id } : {}), components: (c.components as Json[]).map((t) => ({ type: t.type, ...(t.id !== undefined ? { id: t.id } : {}), custom_id: t.custom_id, value: (used.add(String(t.custom_id)), o.fields[String(t.custom_id)] ?? '') })) });
          } else if (c.type === 18 && isObj(c.component)) {
            const t = c.component;
            components.push({ type: 18, ...(c.id !== undefined ? { id: c.id } : {}), component: { type: t.type, ...(t.id !== undefined ? { id: t.id } : {}), custom_id: t.custom_id, ...(t.type === 4 ? { value: (used.add(String(t.custom_id)), o.fields[String(t.custom_id)] ?? '') } : { values: [] }) } });
          } else if (c.type === 10) {
            components.push({ type: 10, ...(c.id !== undefined ? { id: c.id } : {}) });
          }
        }
        for (const k of Object.keys(o.fields)) if (!used.has(k)) throw new Error(`the modal ${o.customId} the bot opened has no text input ${k}`);
      } else {
        for (const [k, v] of Object.entries(o.fields)) components.push({ type: 1, components: [{ type: 4, custom_id: k, value: v }] });
      }
      const extra: Json = {};
      if (o.messageId) {
        const found = messages.get(o.messageId);
        if (!found) throw new Error(`no stored message ${o.messageId}`);
        extra.message = clone(found);
      }
      return basePayload(o, 5, { custom_id: o.customId, components }, extra);
    },

    commands: (gid) => clone(gid ? (gid === guildId ? guildCommands : []) : globalCommands),
    messagesIn: (cid) => [...messages.values()].filter((m) => m.channel_id === cid).map(clone),
    dmsTo: (uid) => {
      const cid = dmChannels.get(uid);
      return cid ? [...messages.values()].filter((m) => m.channel_id === cid && !m.interaction_metadata && !m.webhook_id).map(clone) : [];
    },
    dmChannelId: (uid) => dmChannels.get(uid),

    waitForSession: async (timeoutMs = 15_000) => {
      if (current?.conn?.authed) return;
      await nextGatewayEvent(timeoutMs, 'a gateway session');
    },
    sendReconnect: async (timeoutMs = 10_000) => {
      const conn = current?.conn;
      if (!conn?.authed) throw new Error('no connected gateway session to send RECONNECT to');
      const next = nextGatewayEvent(timeoutMs, 'the client to RESUME after op 7 RECONNECT');
      send(conn, { op: 7, d: null, s: null, t: null });
      const e = await next;
      if (e !== 'resumed') throw new Error('the client re-identified instead of resuming after op 7 RECONNECT');
    },
    dropConnection: async (code = 4000, timeoutMs = 15_000) => {
      const conn = current?.conn;
      if (!conn) throw new Error('no connected gateway session');
      const next = nextGatewayEvent(timeoutMs, `the client to come back after close code ${code}`);
      conn.ws.close(code, 'stand-in dropped the connection');
      return (await next) === 'resumed' ? 'resumed' : 'identified';
    },
    identifies: () => identifyCount,
    resumes: () => resumeCount,
    heartbeats: () => heartbeatCount,
    connections: () => connectionCount,
    openSockets: () => conns.size,

    clearRecords: () => {
      requests.length = 0;
      callbacks.length = 0;
      violations.length = 0;
    },

    close: async () => {
      if (closed) return;
      closed = true;
      for (const st of interactions.values()) {
        clearTimeout(st.deadline);
        clearTimeout(st.giveUp);
      }
      for (const w of requestWaiters) clearTimeout(w.timer);
      for (const w of originalWaiters) clearTimeout(w.timer);
      for (const w of gatewayWaiters) clearTimeout(w.timer);
      requestWaiters.clear();
      originalWaiters.clear();
      gatewayWaiters.clear();
      for (const c of [...conns]) c.ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of httpSockets) s.destroy();
      await done;
    },
  };
  return standin;
}
