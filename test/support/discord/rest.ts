/**
 * The REST front door, /api/v10/…: decodes the body (JSON, or multipart with payload_json and
 * files[n]), applies injected failures (`failNext`, 429 with rate-limit headers), routes, answers
 * with rate-limit headers, and records every request and every message body the bot sent.
 * GET /attachments/<channel>/<id>/<name> serves stored files (Discord's CDN; not recorded).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router, Waiters, matchPattern, parseMultipart, pathSegments, readBody, type MultipartFile } from '../standin-http.js';
import type { DiscordGuild } from './guild.js';
import { ATTACHMENTS_PATH, type MessageStore } from './messages.js';
import { HttpError, isObj } from './protocol.js';
import type { RouteContext, RouteResult } from './routes.js';
import type { Json, RestRequest, SentKind, SentMessage } from './types.js';

interface Failure {
  method: string;
  pattern: RegExp;
  status: number;
  body?: Json;
  retryAfter?: number;
  times: number;
}

const CALLBACK_KINDS: Record<number, SentKind> = { 4: 'reply', 5: 'defer', 7: 'update' };

/** Requests that carry a message body, and how to read it. */
const SENDS: { method: string; pattern: string; kind: SentKind | ((body: Json) => SentKind | undefined) }[] = [
  { method: 'POST', pattern: '/interactions/:id/:token/callback', kind: (b) => CALLBACK_KINDS[Number(b.type)] },
  { method: 'POST', pattern: '/webhooks/:id/:token', kind: 'follow-up' },
  { method: 'PATCH', pattern: '/webhooks/:id/:token/messages/:message_id', kind: 'edit' },
  { method: 'POST', pattern: '/channels/:id/messages', kind: 'message' },
  { method: 'PATCH', pattern: '/channels/:id/messages/:message_id', kind: 'message-edit' },
];

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

export class Rest {
  readonly requestWaiters = new Waiters<RestRequest>();
  readonly sentWaiters = new Waiters<SentMessage>();
  private readonly failures: Failure[] = [];

  constructor(
    private readonly g: DiscordGuild,
    private readonly store: MessageStore,
    private readonly router: Router<RouteContext, RouteResult>,
  ) {}

  failNext(f: Failure): void {
    this.failures.push(f);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { g } = this;
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = (req.method ?? 'GET').toUpperCase();
    const raw = await readBody(req);
    if (method === 'GET' && url.pathname.startsWith(ATTACHMENTS_PATH)) return this.serveAttachment(res, url.pathname.slice(ATTACHMENTS_PATH.length));
    const m = /^\/api\/v(\d+)(\/.*)?$/.exec(url.pathname);
    const query = Object.fromEntries(url.searchParams);
    let path = url.pathname;
    let seg: string[] = [];
    if (m) {
      if (m[1] !== '10') g.violation(`REST call with API version v${m[1]} (expected v10): ${method} ${url.pathname}`);
      seg = pathSegments(m[2] ?? '/');
      path = `/${seg.join('/')}`;
    }
    // Body: JSON or multipart (payload_json + files[n]).
    let body: Json | undefined;
    let files: MultipartFile[] = [];
    const ct = String(req.headers['content-type'] ?? '');
    try {
      if (raw.length && ct.startsWith('multipart/form-data')) {
        const form = await parseMultipart(raw, ct);
        for (const [field, value] of form.fields) {
          if (field === 'payload_json') body = JSON.parse(value) as Json;
          else (body ??= {})[field] = value;
        }
        files = form.files;
      } else if (raw.length) {
        body = JSON.parse(raw.toString('utf8')) as Json;
      }
    } catch {
      const r: RestRequest = { method, path, query, body: raw.toString('utf8'), files: [], authorization: req.headers.authorization, status: 400, response: { message: '400: Bad Request', code: 0 }, at: Date.now() };
      g.violation(`undecodable body in ${method} ${path}`);
      this.record(r);
      reply(res, 400, r.response, rateLimitHeaders(`${method} ${path}`));
      return;
    }

    const fileInfo = files.map(({ field, name, contentType, size }) => ({ field, name, contentType, size }));
    const rec: RestRequest = { method, path, query, body, files: fileInfo, authorization: req.headers.authorization, status: 0, response: undefined, at: Date.now() };
    const ctx: RouteContext = { method, seg, query, body: body ?? {}, files, authorization: req.headers.authorization };
    const fi = this.failures.findIndex((x) => x.method === method && x.pattern.test(path));
    if (fi >= 0) {
      const fail = this.failures[fi]!;
      if (--fail.times <= 0) this.failures.splice(fi, 1);
      const headers = rateLimitHeaders(`${method} ${path}`);
      let out = fail.body ?? { message: `${fail.status}: injected failure`, code: 0 };
      if (fail.status === 429) {
        const after = fail.retryAfter ?? 0.1;
        Object.assign(headers, { 'retry-after': String(after), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': after.toFixed(3), 'x-ratelimit-scope': 'user' });
        out = fail.body ?? { message: 'You are being rate limited.', retry_after: after, global: false };
      }
      rec.status = fail.status;
      rec.response = out;
      this.record(rec, ctx);
      reply(res, fail.status, out, headers);
      return;
    }
    if (!m) {
      g.violation(`request outside /api/v10: ${method} ${url.pathname}`);
      rec.status = 404;
      rec.response = { message: '404: Not Found', code: 0 };
      this.record(rec);
      reply(res, 404, rec.response, {});
      return;
    }
    let status: number;
    let out: unknown;
    let bucket = `${method} ${path}`;
    try {
      const routed = this.router.handle(method, seg, ctx);
      if (!routed) {
        g.violation(`unknown route ${method} /${seg.join('/')}`);
        throw new HttpError(404, { message: '404: Not Found', code: 0 });
      }
      status = routed.result.status;
      out = routed.result.body;
      bucket = `${method} ${routed.pattern}`;
    } catch (err) {
      if (err instanceof HttpError) {
        status = err.status;
        out = err.body;
      } else {
        g.violation(`stand-in error in ${method} ${path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        status = 500;
        out = { message: '500: Internal Server Error', code: 0 };
      }
    }
    rec.status = status;
    rec.response = out;
    this.record(rec, ctx);
    g.flushAfterRecord();
    reply(res, status, out, rateLimitHeaders(bucket));
  }

  private serveAttachment(res: ServerResponse, rest: string): void {
    const a = this.store.attachmentAt(rest);
    if (!a) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
      return;
    }
    res.writeHead(200, { 'content-type': a.contentType || 'application/octet-stream', 'content-length': String(a.data.length) });
    res.end(a.data);
  }

  private record(r: RestRequest, ctx?: RouteContext): void {
    this.g.requests.push(r);
    if (ctx) this.recordSent(r, ctx);
    this.requestWaiters.notify(r);
  }

  /** Adds the message body of a message-bearing request to `sent`. */
  private recordSent(r: RestRequest, ctx: RouteContext): void {
    for (const s of SENDS) {
      if (s.method !== ctx.method) continue;
      const params = matchPattern(s.pattern, ctx.seg);
      if (!params) continue;
      const isCallback = typeof s.kind === 'function';
      const kind = typeof s.kind === 'function' ? s.kind(ctx.body) : s.kind;
      if (!kind) return;
      const msg: Json = isCallback ? (isObj(ctx.body.data) ? ctx.body.data : {}) : ctx.body;
      const interactionId = isCallback ? params.id : ctx.interaction?.id;
      const channelId = ctx.seg[0] === 'channels' ? params.id : ctx.interaction ? String(ctx.interaction.payload.channel?.id ?? ctx.interaction.payload.channel_id) : undefined;
      const sent: SentMessage = {
        kind,
        method: r.method,
        path: r.path,
        status: r.status,
        ...(interactionId !== undefined ? { interactionId } : {}),
        ...(channelId !== undefined ? { channelId } : {}),
        ...(r.status < 300 && ctx.messageId ? { messageId: ctx.messageId } : {}),
        ...(typeof msg.content === 'string' ? { content: msg.content } : {}),
        ...(msg.flags !== undefined && msg.flags !== null ? { flags: Number(msg.flags) } : {}),
        ...(msg.allowed_mentions !== undefined ? { allowedMentions: JSON.parse(JSON.stringify(msg.allowed_mentions)) } : {}),
        ...(Array.isArray(msg.embeds) ? { embeds: msg.embeds } : {}),
        ...(Array.isArray(msg.components) ? { components: msg.components } : {}),
        files: r.files,
        body: msg,
        at: r.at,
      };
      this.g.sent.push(sent);
      this.sentWaiters.notify(sent);
      return;
    }
  }
}
