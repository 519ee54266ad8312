/**
 * A local stand-in for Slack's servers, speaking the real protocols, so the real Bolt `App`
 * (@slack/bolt 4.7.2, @slack/web-api 7.19, @slack/socket-mode 2.0.7) can be driven offline.
 *
 * One HTTP server on 127.0.0.1 serves:
 *   - the Web API          POST /api/<method>   (form-encoded or JSON; token from `Authorization: Bearer` or `token`)
 *   - Socket Mode          GET  /socket?ticket=…&app_id=…  (WebSocket upgrade; URL handed out by apps.connections.open)
 *   - response_urls        POST /response/<id>  (JSON)
 * and `postToReceiver` plays Slack's side of HTTP mode (signed requests to Bolt's HTTPReceiver).
 *
 * Slack rules that are enforced (each breach is listed in `violations`):
 *   - an envelope / HTTP request must be acknowledged within 3 s;
 *   - a trigger_id works once and only within 3 s of being issued (views.open/push answer
 *     `expired_trigger_id` / `invalid_trigger_id`);
 *   - a response_url takes at most 5 messages within 30 minutes (then 404 `used_url`); its
 *     messages need text, blocks or attachments unless they delete the original;
 *   - chat.update / chat.delete only work on non-ephemeral messages the bot posted (or the
 *     message a `blockAction` was built on); ephemeral messages answer `message_not_found`;
 *   - a few size limits: message text ≤ 40 000 chars, ≤ 50 blocks in a message and ≤ 100 in a view,
 *     section text ≤ 3000, header ≤ 150, modal title ≤ 24, private_metadata ≤ 3000.
 *
 * Bolt must be stopped (`await app.stop()`) before `close()`: a socket-mode client that loses its
 * server while not shutting down schedules a reconnect whose failure is an unhandled rejection.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export type Json = Record<string, unknown>;

export interface ApiCall {
  method: string;
  /** Parsed arguments without `token`. Form values stay strings (as Slack receives them), except
   *  JSON-typed arguments (blocks, attachments, view, metadata, …) which are decoded. */
  args: Json;
  token?: string;
  /** What the stand-in answered. */
  response: Json;
  at: number;
}

export interface ResponseRecord {
  id: string;
  body: Json;
  at: number;
}

export interface StandinUser {
  name: string;
  display_name?: string;
  real_name?: string;
  /** A multi-channel guest (users.info is_restricted). */
  is_restricted?: boolean;
  /** A single-channel guest (users.info is_ultra_restricted). */
  is_ultra_restricted?: boolean;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks?: unknown;
  thread_ts?: string;
  /** true for messages the bot posted (only those can be updated/deleted). */
  fromBot: boolean;
  deleted?: boolean;
}

export interface StandinView extends Json {
  id: string;
  callback_id: string;
  private_metadata: string;
  hash: string;
}

export interface SlackStandin {
  /** "http://127.0.0.1:PORT/api/" — pass as Bolt `clientOptions.slackApiUrl` (web-api adds a missing trailing slash itself). */
  apiUrl: string;
  /** "http://127.0.0.1:PORT" */
  baseUrl: string;
  botToken: string;
  appToken: string;
  signingSecret: string;
  /** Legacy verification token Slack puts into payloads (`token` field). */
  verificationToken: string;
  teamId: string;
  teamDomain: string;
  appId: string;
  botUserId: string;
  botId: string;

  /** Every Web API call made (including rejected and unknown ones), in order. */
  calls: ApiCall[];
  callsTo(method: string): Json[];
  /** Resolves with the first call (already made or future) matching; rejects after timeoutMs (default 5000). */
  waitForCall(method: string, predicate?: (args: Json) => boolean, timeoutMs?: number): Promise<Json>;
  /** Make the next `times` calls of `method` answer `{ok:false, error}`. */
  failNext(method: string, error: string, times?: number): void;

  /** Messages accepted by response_urls, in order. */
  responses: ResponseRecord[];
  waitForResponse(id: string, predicate?: (body: Json) => boolean, timeoutMs?: number): Promise<Json>;
  newResponseUrl(): { id: string; url: string };
  /** A fresh trigger_id, valid once for 3 s (views.open / views.push). */
  newTriggerId(): string;

  /** Resolves once a socket-mode client is connected and has been sent "hello" (default timeout 15 s). */
  waitForSocket(timeoutMs?: number): Promise<void>;
  /** Total WebSocket connections accepted so far (reconnects included). */
  socketConnections(): number;
  /** Currently open WebSocket connections. */
  openSockets(): number;
  /** Sends an envelope on the newest connection; resolves with the ack (Bolt always acks with a
   *  `payload` object, `{}` when ack() got no argument). Rejects (and records a violation) if no
   *  ack arrives within 3000 ms. */
  sendEnvelope(type: 'slash_commands' | 'interactive' | 'events_api', payload: Json, opts?: { retryAttempt?: number; retryReason?: string }): Promise<{ ackMs: number; payload?: unknown; envelopeId: string }>;
  /** Sends {"type":"disconnect","reason":…} to every open connection and resolves when they are
   *  closed (the client closes them itself; stragglers are terminated after graceMs, default 10 s). */
  sendDisconnect(reason?: string, graceMs?: number): Promise<void>;

  slashCommand(opts: { userId: string; userName?: string; text: string; command?: string; channelId?: string; channelName?: string }): { payload: Json; responseId: string; triggerId: string };
  /** A button click. With `messageTs` the button sits on a normal bot message (registered so chat.update works);
   *  without it (or with `ephemeral: true`) on an ephemeral message, as after `respond()`. */
  blockAction(opts: { userId: string; userName?: string; actionId: string; value: string; blockId?: string; messageTs?: string; channelId?: string; ephemeral?: boolean }): { payload: Json; responseId: string; triggerId: string };
  /** A modal submission. If a view with this callback_id was opened through views.open/push, its id, blocks and title are used. */
  viewSubmission(opts: { userId: string; userName?: string; callbackId: string; values: Record<string, Record<string, unknown>>; privateMetadata?: string; viewId?: string }): { payload: Json; triggerId: string };
  /** An Events API `event_callback` wrapper around `event` (send with type 'events_api'). */
  eventCallback(event: Json): { payload: Json };

  /** HTTP mode: POST to Bolt's receiver, signed ('valid', default), with a wrong secret ('bad') or unsigned ('none').
   *  timestampSkewSec shifts X-Slack-Request-Timestamp (−360 = six minutes old). */
  postToReceiver(url: string, body: string, opts?: { contentType?: string; signature?: 'valid' | 'bad' | 'none'; timestampSkewSec?: number }): Promise<{ status: number; body: string; ms: number }>;
  /** Slash command payloads → form fields; interactive payloads → `payload=<json>`. */
  formBody(payload: Json): string;
  sign(body: string, timestampSec: number, secret?: string): string;

  ackLatencies(): number[];
  lateAcks(): number;
  violations: string[];

  users: Map<string, StandinUser>;
  messages: StoredMessage[];
  views: Map<string, StandinView>;

  /** Empties calls, responses, latencies and violations (not users, messages or views). */
  clearRecords(): void;
  close(): Promise<void>;
}

export interface StandinOptions {
  users?: Record<string, StandinUser>;
  /** How often the server pings each socket (like Slack). Default 10 000 ms; 0 disables. */
  pingIntervalMs?: number;
  /** Max messages per response_url (Slack: 5). */
  responseUrlMaxUses?: number;
}

const ACK_DEADLINE_MS = 3000;
const TRIGGER_TTL_MS = 3000;
const RESPONSE_URL_TTL_MS = 30 * 60_000;

/** Arguments Slack decodes as JSON when they arrive form-encoded (web-api JSON-stringifies non-scalars). */
const JSON_ARGS = new Set(['blocks', 'attachments', 'view', 'metadata', 'unfurls', 'user_auth_blocks', 'options', 'option_groups', 'profile', 'elements', 'chunks']);

interface Waiter<T> {
  match: (x: T) => boolean;
  resolve: (x: T) => void;
  timer: NodeJS.Timeout;
}

interface PendingAck {
  sentAt: number;
  resolve: (r: { ackMs: number; payload?: unknown; envelopeId: string }) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  timedOut: boolean;
  type: string;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Slack's invalid_blocks check, for the limits most likely to bite a chat bot. */
function blocksProblem(blocks: unknown, max: number): string | undefined {
  if (blocks === undefined) return undefined;
  if (!Array.isArray(blocks)) return 'blocks is not an array';
  if (blocks.length > max) return `more than ${max} blocks (${blocks.length})`;
  for (const [i, b] of blocks.entries()) {
    if (!isObj(b) || typeof b.type !== 'string') return `block ${i} has no type`;
    const text = isObj(b.text) ? str(b.text.text) : undefined;
    if (b.type === 'section' && text !== undefined && text.length > 3000) return `block ${i}: section text longer than 3000 (${text.length})`;
    if (b.type === 'header' && text !== undefined && text.length > 150) return `block ${i}: header text longer than 150 (${text.length})`;
    if (b.type === 'section' && Array.isArray(b.fields) && b.fields.length > 10) return `block ${i}: more than 10 fields`;
    if (b.type === 'actions' && Array.isArray(b.elements) && b.elements.length > 25) return `block ${i}: more than 25 elements`;
  }
  return undefined;
}

export async function startSlackStandin(opts: StandinOptions = {}): Promise<SlackStandin> {
  const teamId = 'T0STANDIN';
  const teamDomain = 'gpubot-standin';
  const appId = 'A1';
  const botUserId = 'U0BOT';
  const botId = 'B0BOT';
  const botToken = `xoxb-1-${randomBytes(12).toString('hex')}`;
  const appToken = `xapp-1-${appId}-1-${randomBytes(16).toString('hex')}`;
  const signingSecret = randomBytes(16).toString('hex');
  const verificationToken = randomBytes(12).toString('hex');
  const maxResponseUses = opts.responseUrlMaxUses ?? 5;

  const calls: ApiCall[] = [];
  const responses: ResponseRecord[] = [];
  const violations: string[] = [];
  const latencies: number[] = [];
  let late = 0;
  const users = new Map<string, StandinUser>(Object.entries(opts.users ?? {}));
  const messages: StoredMessage[] = [];
  const views = new Map<string, StandinView>();
  const failures = new Map<string, { error: string; times: number }>();

  const callWaiters = new Set<Waiter<ApiCall>>();
  const responseWaiters = new Set<Waiter<ResponseRecord>>();
  const socketWaiters = new Set<{ resolve: () => void; timer: NodeJS.Timeout }>();

  const responseUrls = new Map<string, { issuedAt: number; uses: number }>();
  const triggers = new Map<string, { issuedAt: number; used: boolean }>();
  const tickets = new Set<string>();
  const sockets: WebSocket[] = []; // open, oldest first
  const pendingAcks = new Map<string, PendingAck>();
  const httpSockets = new Set<Socket>();
  let totalConnections = 0;
  let closed = false;

  const tsBase = Math.floor(Date.now() / 1000);
  let tsCounter = 0;
  const nextTs = () => `${tsBase}.${String(++tsCounter).padStart(6, '0')}`;
  let idCounter = 0;
  const nextId = (prefix: string) => `${prefix}${(++idCounter).toString(36).toUpperCase().padStart(8, '0')}`;

  const violation = (msg: string) => violations.push(msg);

  function ensureUser(id: string, name?: string): void {
    if (!users.has(id)) users.set(id, { name: name ?? id.toLowerCase() });
  }

  function newResponseUrl(): { id: string; url: string } {
    const id = `${nextId('R')}${randomBytes(6).toString('hex')}`;
    responseUrls.set(id, { issuedAt: Date.now(), uses: 0 });
    return { id, url: `${baseUrl}/response/${id}` };
  }

  function newTriggerId(): string {
    const id = `${Date.now()}.${tsBase}.${randomBytes(12).toString('hex')}`;
    triggers.set(id, { issuedAt: Date.now(), used: false });
    return id;
  }

  function dmFor(channel: string): string {
    return /^[UW]/.test(channel) ? `D${channel}` : channel;
  }

  function findMessage(channel: string, ts: string): StoredMessage | undefined {
    const ch = dmFor(channel);
    return messages.find((m) => m.channel === ch && m.ts === ts && !m.deleted);
  }

  function messageOut(m: StoredMessage): Json {
    return {
      type: 'message',
      user: botUserId,
      bot_id: botId,
      app_id: appId,
      team: teamId,
      ts: m.ts,
      text: m.text ?? '',
      ...(m.blocks !== undefined ? { blocks: m.blocks } : {}),
      ...(m.thread_ts !== undefined ? { thread_ts: m.thread_ts } : {}),
    };
  }

  function userOut(id: string): Json | undefined {
    if (id === botUserId) {
      return { id, team_id: teamId, name: 'gpubot', deleted: false, real_name: 'gpubot', is_bot: true, is_app_user: false, profile: { real_name: 'gpubot', display_name: '', bot_id: botId, team: teamId } };
    }
    const u = users.get(id);
    if (!u) return undefined;
    const real = u.real_name ?? u.display_name ?? u.name;
    const display = u.display_name ?? '';
    return {
      id,
      team_id: teamId,
      name: u.name,
      deleted: false,
      real_name: real,
      tz: 'Etc/UTC',
      tz_label: 'Coordinated Universal Time',
      tz_offset: 0,
      is_admin: false,
      is_owner: false,
      is_restricted: u.is_restricted ?? false,
      is_ultra_restricted: u.is_ultra_restricted ?? false,
      is_bot: false,
      is_app_user: false,
      updated: tsBase,
      profile: { real_name: real, real_name_normalized: real, display_name: display, display_name_normalized: display, team: teamId },
    };
  }

  function storeView(view: Json, existing?: StandinView): StandinView {
    const id = existing?.id ?? nextId('V');
    const out: StandinView = {
      id,
      team_id: teamId,
      type: str(view.type) ?? 'modal',
      title: view.title ?? null,
      submit: view.submit ?? null,
      close: view.close ?? null,
      blocks: view.blocks ?? [],
      private_metadata: str(view.private_metadata) ?? '',
      callback_id: str(view.callback_id) ?? '',
      state: { values: {} },
      hash: `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`,
      clear_on_close: view.clear_on_close === true || view.clear_on_close === 'true',
      notify_on_close: view.notify_on_close === true || view.notify_on_close === 'true',
      previous_view_id: null,
      root_view_id: existing?.root_view_id ?? id,
      app_id: appId,
      external_id: str(view.external_id) ?? '',
      app_installed_team_id: teamId,
      bot_id: botId,
    };
    views.set(id, out);
    return out;
  }

  function viewProblem(view: unknown): string | undefined {
    if (!isObj(view)) return 'view is missing or not an object';
    if (view.type !== 'modal' && view.type !== 'home') return `unsupported view type ${String(view.type)}`;
    const title = isObj(view.title) ? str(view.title.text) : undefined;
    if (view.type === 'modal' && title === undefined) return 'modal has no title';
    if (title !== undefined && title.length > 24) return `title longer than 24 characters (${title.length})`;
    const meta = str(view.private_metadata);
    if (meta !== undefined && meta.length > 3000) return `private_metadata longer than 3000 (${meta.length})`;
    const cb = str(view.callback_id);
    if (cb !== undefined && cb.length > 255) return 'callback_id longer than 255';
    return blocksProblem(view.blocks ?? [], 100);
  }

  function useTrigger(triggerId: string | undefined): string | undefined {
    if (!triggerId) return 'invalid_arguments';
    const t = triggers.get(triggerId);
    if (!t) return 'invalid_trigger_id';
    if (t.used) return 'expired_trigger_id';
    t.used = true;
    if (Date.now() - t.issuedAt > TRIGGER_TTL_MS) {
      violation(`trigger_id used ${Date.now() - t.issuedAt} ms after it was issued (Slack allows ${TRIGGER_TTL_MS})`);
      return 'expired_trigger_id';
    }
    return undefined;
  }

  const err = (error: string, extra: Json = {}): Json => ({ ok: false, error, ...extra });
  const invalidArgs = (msg: string): Json => err('invalid_arguments', { response_metadata: { messages: [`[ERROR] ${msg}`] } });

  /** Answers one Web API method. `token` has already been checked. */
  function answer(method: string, a: Json): Json {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: `https://${teamDomain}.slack.com/`, team: teamDomain, user: 'gpubot', team_id: teamId, user_id: botUserId, bot_id: botId, is_enterprise_install: false };
      case 'users.info': {
        const id = str(a.user);
        if (!id) return err('user_not_found');
        const u = userOut(id);
        return u ? { ok: true, user: u } : err('user_not_found');
      }
      case 'conversations.open': {
        const channel = str(a.channel);
        if (channel) return { ok: true, no_op: true, already_open: true, channel: { id: channel } };
        const ids = (str(a.users) ?? '').split(',').map((s) => s.trim()).filter(Boolean);
        if (ids.length === 0) return err('users_list_not_supplied');
        for (const id of ids) if (!userOut(id)) return err('user_not_found');
        const id = ids.length === 1 ? `D${ids[0]!}` : `G${ids.join('')}`;
        return { ok: true, no_op: true, already_open: true, channel: { id } };
      }
      case 'chat.postMessage':
      case 'chat.postEphemeral': {
        const channel = str(a.channel);
        if (!channel) return err('channel_not_found');
        const text = str(a.text);
        if (!text && a.blocks === undefined && a.attachments === undefined) return err('no_text');
        if (text && text.length > 40_000) return err('msg_too_long');
        const bp = blocksProblem(a.blocks, 50);
        if (bp) return err('invalid_blocks', { response_metadata: { messages: [`[ERROR] ${bp}`] } });
        if (method === 'chat.postEphemeral') {
          const user = str(a.user);
          if (!user) return err('user_not_in_channel');
          // Ephemeral messages are not stored: they cannot be updated or deleted through the Web API.
          return { ok: true, message_ts: nextTs() };
        }
        const m: StoredMessage = { channel: dmFor(channel), ts: nextTs(), fromBot: true, ...(text !== undefined ? { text } : {}), ...(a.blocks !== undefined ? { blocks: a.blocks } : {}), ...(str(a.thread_ts) ? { thread_ts: str(a.thread_ts)! } : {}) };
        messages.push(m);
        return { ok: true, channel: m.channel, ts: m.ts, message: messageOut(m) };
      }
      case 'chat.update': {
        const channel = str(a.channel);
        const ts = str(a.ts);
        if (!channel) return err('channel_not_found');
        if (!ts) return err('message_not_found');
        const m = findMessage(channel, ts);
        if (!m) return err('message_not_found');
        if (!m.fromBot) return err('cant_update_message');
        const text = str(a.text);
        if (text && text.length > 40_000) return err('msg_too_long');
        const bp = blocksProblem(a.blocks, 50);
        if (bp) return err('invalid_blocks', { response_metadata: { messages: [`[ERROR] ${bp}`] } });
        if (text !== undefined) m.text = text;
        if (a.blocks !== undefined) m.blocks = a.blocks;
        return { ok: true, channel: m.channel, ts: m.ts, text: m.text ?? '', message: messageOut(m) };
      }
      case 'chat.delete': {
        const channel = str(a.channel);
        const ts = str(a.ts);
        if (!channel) return err('channel_not_found');
        const m = ts ? findMessage(channel, ts) : undefined;
        if (!m) return err('message_not_found');
        if (!m.fromBot) return err('cant_delete_message');
        m.deleted = true;
        return { ok: true, channel: m.channel, ts: m.ts };
      }
      case 'views.open':
      case 'views.push': {
        const problem = useTrigger(str(a.trigger_id));
        if (problem === 'invalid_arguments') return invalidArgs('missing required field: trigger_id');
        if (problem) return err(problem);
        const vp = viewProblem(a.view);
        if (vp) return invalidArgs(vp);
        return { ok: true, view: storeView(a.view as Json) };
      }
      case 'views.update': {
        const viewId = str(a.view_id);
        const externalId = str(a.external_id);
        if (!viewId && !externalId) return invalidArgs('either view_id or external_id is required');
        const existing = viewId ? views.get(viewId) : [...views.values()].find((v) => v.external_id === externalId);
        if (!existing) return err('not_found');
        const hash = str(a.hash);
        if (hash && hash !== existing.hash) return err('hash_conflict');
        const vp = viewProblem(a.view);
        if (vp) return invalidArgs(vp);
        return { ok: true, view: storeView(a.view as Json, existing) };
      }
      default:
        return err('unknown_method');
    }
  }

  function record(call: ApiCall): void {
    calls.push(call);
    for (const w of [...callWaiters]) {
      if (w.match(call)) {
        callWaiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(call);
      }
    }
  }

  async function handleApi(req: IncomingMessage, res: ServerResponse, method: string, query: URLSearchParams): Promise<void> {
    const raw = req.method === 'POST' ? await readBody(req) : '';
    const ctype = (req.headers['content-type'] ?? '').toLowerCase();
    let args: Json = {};
    let parseError: string | undefined;
    if (ctype.startsWith('application/json')) {
      try {
        const parsed: unknown = raw ? JSON.parse(raw) : {};
        if (isObj(parsed)) args = parsed;
        else parseError = 'invalid_json';
      } catch {
        parseError = 'invalid_json';
      }
    } else if (ctype.startsWith('multipart/form-data')) {
      parseError = 'invalid_form_data'; // file uploads are not supported by the stand-in
    } else {
      const form = new URLSearchParams(raw);
      for (const [k, v] of [...query.entries(), ...form.entries()]) {
        let value: unknown = v;
        if (JSON_ARGS.has(k) && /^\s*[[{]/.test(v)) {
          try {
            value = JSON.parse(v);
          } catch {
            /* Slack would reject it; keep the string so the test can see it */
          }
        }
        args[k] = value;
      }
    }
    const auth = req.headers.authorization;
    const bearer = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length).trim() : undefined;
    const bodyToken = str(args.token);
    delete args.token;
    const token = bearer || bodyToken || undefined;

    let response: Json;
    const failure = failures.get(method);
    if (parseError) response = err(parseError);
    else if (!token) response = err('not_authed');
    else if (token !== botToken && token !== appToken) response = err('invalid_auth');
    else if (method === 'apps.connections.open') {
      if (token !== appToken) response = err('not_allowed_token_type');
      else if (failure) {
        response = err(failure.error);
        if (--failure.times <= 0) failures.delete(method);
      } else {
        const ticket = randomUUID();
        tickets.add(ticket);
        response = { ok: true, url: `ws://127.0.0.1:${port}/socket?ticket=${ticket}&app_id=${appId}` };
      }
    } else if (token === appToken) response = err('not_allowed_token_type');
    else if (failure) {
      response = err(failure.error);
      if (--failure.times <= 0) failures.delete(method);
    } else response = answer(method, args);

    record({ method, args, ...(token ? { token } : {}), response, at: Date.now() });
    sendJson(res, 200, response);
  }

  async function handleResponseUrl(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const raw = await readBody(req);
    const entry = responseUrls.get(id);
    if (!entry) {
      violation(`POST to unknown response_url ${id}`);
      return sendJson(res, 404, err('no_active_hooks'));
    }
    if (Date.now() - entry.issuedAt > RESPONSE_URL_TTL_MS) {
      violation(`response_url ${id} used after 30 minutes`);
      return sendJson(res, 404, err('expired_url'));
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      violation(`response_url ${id}: body is not JSON: ${raw.slice(0, 200)}`);
      return sendJson(res, 400, err('invalid_payload'));
    }
    if (!isObj(body)) {
      violation(`response_url ${id}: body is not a JSON object`);
      return sendJson(res, 400, err('invalid_payload'));
    }
    if (entry.uses >= maxResponseUses) {
      violation(`response_url ${id} used more than ${maxResponseUses} times`);
      return sendJson(res, 404, err('used_url'));
    }
    const deleting = body.delete_original === true || body.delete_original === 'true';
    if (!deleting && !str(body.text) && body.blocks === undefined && body.attachments === undefined) {
      violation(`response_url ${id}: message without text, blocks or attachments`);
      return sendJson(res, 400, err('no_text'));
    }
    const bp = blocksProblem(body.blocks, 50);
    if (bp) {
      violation(`response_url ${id}: invalid_blocks: ${bp}`);
      return sendJson(res, 400, err('invalid_blocks'));
    }
    entry.uses += 1;
    const rec: ResponseRecord = { id, body, at: Date.now() };
    responses.push(rec);
    for (const w of [...responseWaiters]) {
      if (w.match(rec)) {
        responseWaiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(rec);
      }
    }
    sendJson(res, 200, { ok: true });
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const fail = (e: unknown) => {
      violation(`stand-in error on ${req.method} ${path}: ${String(e)}`);
      if (!res.headersSent) sendJson(res, 500, err('internal_error'));
    };
    if (path.startsWith('/api/') && path.length > '/api/'.length) {
      handleApi(req, res, path.slice('/api/'.length), url.searchParams).catch(fail);
    } else if (path.startsWith('/response/') && req.method === 'POST') {
      handleResponseUrl(req, res, decodeURIComponent(path.slice('/response/'.length))).catch(fail);
    } else {
      sendJson(res, 404, err('not_found'));
    }
  });
  server.on('connection', (s: Socket) => {
    httpSockets.add(s);
    s.on('close', () => httpSockets.delete(s));
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const ticket = url.searchParams.get('ticket') ?? '';
    if (closed || url.pathname !== '/socket' || !tickets.delete(ticket)) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onSocket(ws));
  });

  function onSocket(ws: WebSocket): void {
    totalConnections += 1;
    sockets.push(ws);
    ws.on('error', () => {
      /* a client that vanishes mid-frame; 'close' follows */
    });
    ws.on('close', () => {
      const i = sockets.indexOf(ws);
      if (i >= 0) sockets.splice(i, 1);
    });
    ws.on('message', (data, isBinary) => {
      if (isBinary) return violation('binary WebSocket frame from client');
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return violation(`non-JSON WebSocket frame from client: ${data.toString().slice(0, 200)}`);
      }
      if (!isObj(msg) || typeof msg.envelope_id !== 'string') return violation(`unexpected WebSocket frame from client: ${data.toString().slice(0, 200)}`);
      const p = pendingAcks.get(msg.envelope_id);
      if (!p) return violation(`ack for unknown or already acked envelope ${msg.envelope_id}`);
      pendingAcks.delete(msg.envelope_id);
      const ackMs = Date.now() - p.sentAt;
      latencies.push(ackMs);
      clearTimeout(p.timer);
      if (p.timedOut) return; // already counted late and rejected
      p.resolve({ ackMs, envelopeId: msg.envelope_id, ...('payload' in msg ? { payload: msg.payload } : {}) });
    });
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: sockets.length,
        debug_info: { host: 'applink-standin-1', build_number: 1, approximate_connection_time: 18060 },
        connection_info: { app_id: appId },
      }),
    );
    for (const w of [...socketWaiters]) {
      socketWaiters.delete(w);
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  const pingInterval = opts.pingIntervalMs ?? 10_000;
  const pinger = pingInterval > 0 ? setInterval(() => {
    for (const ws of sockets) if (ws.readyState === ws.OPEN) ws.ping(`ping ${Date.now()}`);
  }, pingInterval) : undefined;
  pinger?.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;

  function waitFor<T>(set: Set<Waiter<T>>, existing: T[], match: (x: T) => boolean, timeoutMs: number, what: () => string): Promise<T> {
    const found = existing.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = {
        match,
        resolve,
        timer: setTimeout(() => {
          set.delete(w);
          reject(new Error(what()));
        }, timeoutMs),
      };
      set.add(w);
    });
  }

  function sign(body: string, timestampSec: number, secret = signingSecret): string {
    return `v0=${createHmac('sha256', secret).update(`v0:${timestampSec}:${body}`).digest('hex')}`;
  }

  function userObj(userId: string, userName?: string): Json {
    ensureUser(userId, userName);
    const name = users.get(userId)!.name;
    return { id: userId, username: name, name, team_id: teamId };
  }

  const standin: SlackStandin = {
    apiUrl: `${baseUrl}/api/`,
    baseUrl,
    botToken,
    appToken,
    signingSecret,
    verificationToken,
    teamId,
    teamDomain,
    appId,
    botUserId,
    botId,
    calls,
    responses,
    violations,
    users,
    messages,
    views,

    callsTo: (method) => calls.filter((c) => c.method === method).map((c) => c.args),
    waitForCall: (method, predicate = () => true, timeoutMs = 5000) =>
      waitFor(callWaiters, calls, (c) => c.method === method && predicate(c.args), timeoutMs, () =>
        `timed out after ${timeoutMs} ms waiting for a ${method} call; ${method} calls so far: ${JSON.stringify(calls.filter((c) => c.method === method).map((c) => c.args))}; methods called: ${[...new Set(calls.map((c) => c.method))].join(', ') || 'none'}`,
      ).then((c) => c.args),
    failNext: (method, error, times = 1) => {
      failures.set(method, { error, times });
    },

    waitForResponse: (id, predicate = () => true, timeoutMs = 5000) =>
      waitFor(responseWaiters, responses, (r) => r.id === id && predicate(r.body), timeoutMs, () =>
        `timed out after ${timeoutMs} ms waiting for a message on response_url ${id}; got: ${JSON.stringify(responses.filter((r) => r.id === id).map((r) => r.body))}; violations: ${JSON.stringify(violations)}`,
      ).then((r) => r.body),
    newResponseUrl,
    newTriggerId,

    waitForSocket: (timeoutMs = 15_000) => {
      if (sockets.length > 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const w = {
          resolve,
          timer: setTimeout(() => {
            socketWaiters.delete(w);
            reject(new Error(`no socket-mode connection within ${timeoutMs} ms (connections so far: ${totalConnections}; apps.connections.open calls: ${calls.filter((c) => c.method === 'apps.connections.open').length})`));
          }, timeoutMs),
        };
        socketWaiters.add(w);
      });
    },
    socketConnections: () => totalConnections,
    openSockets: () => sockets.length,

    sendEnvelope: (type, payload, o = {}) => {
      const ws = sockets[sockets.length - 1];
      if (!ws) return Promise.reject(new Error('sendEnvelope: no socket-mode client is connected'));
      const envelopeId = randomUUID();
      const accepts = type === 'slash_commands' || (type === 'interactive' && (payload.type === 'view_submission' || payload.type === 'block_suggestion'));
      return new Promise((resolve, reject) => {
        const p: PendingAck = {
          sentAt: Date.now(),
          resolve,
          reject,
          type,
          timedOut: false,
          timer: setTimeout(() => {
            p.timedOut = true;
            late += 1;
            const what = `${type} envelope ${envelopeId} (${str(payload.command) ?? str(payload.type) ?? ''}) not acknowledged within ${ACK_DEADLINE_MS} ms`;
            violation(what);
            reject(new Error(what));
          }, ACK_DEADLINE_MS),
        };
        p.timer.unref();
        pendingAcks.set(envelopeId, p);
        ws.send(
          JSON.stringify({
            envelope_id: envelopeId,
            type,
            payload,
            accepts_response_payload: accepts,
            retry_attempt: o.retryAttempt ?? 0,
            retry_reason: o.retryReason ?? '',
          }),
        );
      });
    },

    sendDisconnect: async (reason = 'refresh_requested', graceMs = 10_000) => {
      const open = [...sockets];
      await Promise.all(
        open.map(
          (ws) =>
            new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                violation(`client did not close its socket within ${graceMs} ms of a disconnect message`);
                ws.terminate();
              }, graceMs);
              ws.once('close', () => {
                clearTimeout(timer);
                resolve();
              });
              ws.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-standin-1' } }));
            }),
        ),
      );
    },

    slashCommand: ({ userId, userName, text, command = '/gpu', channelId = 'C0GENERAL', channelName }) => {
      ensureUser(userId, userName);
      const { id: responseId, url } = newResponseUrl();
      const triggerId = newTriggerId();
      const payload: Json = {
        token: verificationToken,
        team_id: teamId,
        team_domain: teamDomain,
        channel_id: channelId,
        channel_name: channelName ?? (channelId.startsWith('D') ? 'directmessage' : channelId === 'C0GENERAL' ? 'general' : channelId.toLowerCase()),
        user_id: userId,
        user_name: users.get(userId)!.name,
        command,
        text,
        api_app_id: appId,
        is_enterprise_install: 'false',
        response_url: url,
        trigger_id: triggerId,
      };
      return { payload, responseId, triggerId };
    },

    blockAction: ({ userId, userName, actionId, value, blockId, messageTs, channelId = 'C0GENERAL', ephemeral }) => {
      const { id: responseId, url } = newResponseUrl();
      const triggerId = newTriggerId();
      const isEphemeral = ephemeral ?? messageTs === undefined;
      const ts = messageTs ?? nextTs();
      const bId = blockId ?? randomBytes(3).toString('base64url');
      let message: Json | undefined;
      if (!isEphemeral) {
        let m = findMessage(channelId, ts);
        if (!m) {
          m = { channel: dmFor(channelId), ts, fromBot: true, text: '', blocks: [] };
          messages.push(m);
        }
        message = messageOut(m);
      }
      const payload: Json = {
        type: 'block_actions',
        user: userObj(userId, userName),
        api_app_id: appId,
        token: verificationToken,
        container: { type: 'message', message_ts: ts, channel_id: dmFor(channelId), is_ephemeral: isEphemeral },
        trigger_id: triggerId,
        team: { id: teamId, domain: teamDomain },
        enterprise: null,
        is_enterprise_install: false,
        channel: { id: dmFor(channelId), name: channelId.startsWith('C') ? (channelId === 'C0GENERAL' ? 'general' : channelId.toLowerCase()) : 'directmessage' },
        ...(message ? { message } : {}),
        state: { values: {} },
        response_url: url,
        actions: [
          {
            action_id: actionId,
            block_id: bId,
            text: { type: 'plain_text', text: value, emoji: true },
            value,
            type: 'button',
            action_ts: `${Math.floor(Date.now() / 1000)}.${String(Date.now() % 1000).padStart(3, '0')}000`,
          },
        ],
      };
      return { payload, responseId, triggerId };
    },

    viewSubmission: ({ userId, userName, callbackId, values, privateMetadata, viewId }) => {
      const triggerId = newTriggerId();
      const opened = viewId ? views.get(viewId) : [...views.values()].reverse().find((v) => v.callback_id === callbackId);
      const base: Json = opened ?? {
        id: nextId('V'),
        team_id: teamId,
        type: 'modal',
        title: { type: 'plain_text', text: 'gpubot', emoji: true },
        submit: { type: 'plain_text', text: 'Submit', emoji: true },
        close: null,
        blocks: [],
        clear_on_close: false,
        notify_on_close: false,
        previous_view_id: null,
        app_id: appId,
        external_id: '',
        app_installed_team_id: teamId,
        bot_id: botId,
        hash: `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`,
      };
      const view: Json = {
        ...base,
        root_view_id: base.root_view_id ?? base.id,
        callback_id: callbackId,
        private_metadata: privateMetadata ?? str(base.private_metadata) ?? '',
        state: { values },
      };
      const payload: Json = {
        type: 'view_submission',
        team: { id: teamId, domain: teamDomain },
        user: userObj(userId, userName),
        api_app_id: appId,
        token: verificationToken,
        trigger_id: triggerId,
        view,
        response_urls: [],
        is_enterprise_install: false,
        enterprise: null,
      };
      return { payload, triggerId };
    },

    eventCallback: (event) => {
      const now = Math.floor(Date.now() / 1000);
      return {
        payload: {
          token: verificationToken,
          team_id: teamId,
          context_team_id: teamId,
          context_enterprise_id: null,
          api_app_id: appId,
          event: { event_ts: `${now}.000100`, ...event },
          type: 'event_callback',
          event_id: `Ev${randomBytes(5).toString('hex').toUpperCase()}`,
          event_time: now,
          authorizations: [{ enterprise_id: null, team_id: teamId, user_id: botUserId, is_bot: true, is_enterprise_install: false }],
          is_ext_shared_channel: false,
          event_context: `4-${randomBytes(16).toString('base64url')}`,
        },
      };
    },

    postToReceiver: (url, body, o = {}) => {
      const signature = o.signature ?? 'valid';
      const ts = Math.floor(Date.now() / 1000) + (o.timestampSkewSec ?? 0);
      const contentType = o.contentType ?? (body.trimStart().startsWith('{') ? 'application/json' : 'application/x-www-form-urlencoded');
      const headers: Record<string, string | number> = {
        'content-type': contentType,
        'content-length': Buffer.byteLength(body),
        'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
        accept: 'application/json,*/*',
        connection: 'close',
      };
      if (signature !== 'none') {
        headers['x-slack-request-timestamp'] = String(ts);
        headers['x-slack-signature'] = signature === 'valid' ? sign(body, ts) : sign(body, ts, `${signingSecret}-wrong`);
      }
      const started = Date.now();
      return new Promise((resolve, reject) => {
        const req = httpRequest(url, { method: 'POST', headers, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const ms = Date.now() - started;
            if (signature === 'valid' && (o.timestampSkewSec ?? 0) === 0) {
              latencies.push(ms);
              if (ms > ACK_DEADLINE_MS) {
                late += 1;
                violation(`HTTP request to ${url} answered after ${ms} ms (Slack gives up after ${ACK_DEADLINE_MS})`);
              }
            }
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms });
          });
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end(body);
      });
    },

    formBody: (payload) => {
      if (payload.command !== undefined) {
        const form = new URLSearchParams();
        for (const [k, v] of Object.entries(payload)) if (v !== undefined && v !== null) form.append(k, typeof v === 'string' ? v : JSON.stringify(v));
        return form.toString();
      }
      return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    },
    sign,

    ackLatencies: () => [...latencies],
    lateAcks: () => late,

    clearRecords: () => {
      calls.length = 0;
      responses.length = 0;
      violations.length = 0;
      latencies.length = 0;
      late = 0;
    },

    close: async () => {
      if (closed) return;
      closed = true;
      if (pinger) clearInterval(pinger);
      for (const p of pendingAcks.values()) clearTimeout(p.timer);
      pendingAcks.clear();
      for (const w of callWaiters) clearTimeout(w.timer);
      for (const w of responseWaiters) clearTimeout(w.timer);
      for (const w of socketWaiters) clearTimeout(w.timer);
      callWaiters.clear();
      responseWaiters.clear();
      socketWaiters.clear();
      for (const ws of [...sockets]) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of httpSockets) s.destroy();
      await done;
    },
  };
  return standin;
}
