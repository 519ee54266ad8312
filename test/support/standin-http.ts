/**
 * HTTP and WebSocket plumbing shared by the Slack and Discord stand-ins (test/support/slack/,
 * test/support/discord/): a server on 127.0.0.1 with an ephemeral port, body reading (raw, JSON,
 * multipart), JSON answers, a small ordered router, WebSocket upgrades through `ws`, waiters that
 * resolve on a recorded event, and a close that leaves no socket or timer behind.
 *
 * Nothing here knows about Slack or Discord: protocol rules live in the stand-ins' own modules.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
/** Called for every `Upgrade: websocket` request; call `accept` to complete it or `refuse` to answer with a status. */
export type UpgradeHandler = (req: IncomingMessage, url: URL, upgrade: { accept: () => Promise<WebSocket>; refuse: (status: number, reason: string) => void }) => void;

export interface StandinServer {
  port: number;
  /** "http://127.0.0.1:PORT" */
  baseUrl: string;
  /** "ws://127.0.0.1:PORT" */
  wsUrl: string;
  server: Server;
  /** Open WebSocket connections accepted through `upgrade`. */
  webSockets(): WebSocket[];
  /** Terminates every WebSocket, drops every HTTP connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 (port 0: the kernel picks one). */
export async function startStandinServer(handlers: { request: RequestHandler; upgrade?: UpgradeHandler }): Promise<StandinServer> {
  const httpSockets = new Set<Socket>();
  const webSockets = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  let closed = false;

  const server = createServer((req, res) => handlers.request(req, res));
  server.on('connection', (s: Socket) => {
    httpSockets.add(s);
    s.on('close', () => httpSockets.delete(s));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const refuse = (status: number, reason: string): void => {
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (closed || !handlers.upgrade) return refuse(404, 'Not Found');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    handlers.upgrade(req, url, {
      refuse,
      accept: () =>
        new Promise<WebSocket>((resolve) => {
          wss.handleUpgrade(req, socket, head, (ws) => {
            webSockets.add(ws);
            ws.on('close', () => webSockets.delete(ws));
            // A client that vanishes mid-frame: 'close' follows; without a listener 'error' would throw.
            ws.on('error', () => undefined);
            resolve(ws);
          });
        }),
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

  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    server,
    webSockets: () => [...webSockets],
    close: async () => {
      if (closed) return;
      closed = true;
      for (const ws of [...webSockets]) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of httpSockets) s.destroy();
      await done;
    },
  };
}

// ───────────────────────────── bodies ─────────────────────────────

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(text)) });
  res.end(text);
}

export interface MultipartFile {
  field: string;
  name: string;
  contentType: string;
  size: number;
  data: Buffer;
}

/** Parses a multipart/form-data body (throws on a malformed one). */
export async function parseMultipart(raw: Buffer, contentType: string): Promise<{ fields: [string, string][]; files: MultipartFile[] }> {
  const form = await new Response(raw, { headers: { 'content-type': contentType } }).formData();
  const fields: [string, string][] = [];
  const files: MultipartFile[] = [];
  for (const [field, value] of form.entries()) {
    if (typeof value === 'string') fields.push([field, value]);
    else files.push({ field, name: value.name, contentType: value.type, size: value.size, data: Buffer.from(await value.arrayBuffer()) });
  }
  return { fields, files };
}

// ───────────────────────────── routing ─────────────────────────────

export type Params = Record<string, string>;

/** Matches `/a/:x/b` against path segments; `prefix` also accepts longer paths. */
export function matchPattern(pattern: string, segments: string[], prefix = false): Params | undefined {
  const parts = pattern.split('/').filter(Boolean);
  if (segments.length < parts.length || (!prefix && segments.length !== parts.length)) return undefined;
  const params: Params = {};
  for (const [i, part] of parts.entries()) {
    const seg = segments[i]!;
    if (part.startsWith(':')) params[part.slice(1)] = seg;
    else if (part !== seg) return undefined;
  }
  return params;
}

export function pathSegments(path: string): string[] {
  return path
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

interface RouteEntry<C, R> {
  kind: 'route' | 'guard';
  method: string;
  pattern: string;
  exact: boolean;
  handler: (ctx: C, params: Params) => R | undefined;
}

/**
 * Ordered routes and guards. A guard runs for every request whose path starts with its pattern (or
 * equals it, with `exact`) and may throw to refuse it; the first route whose method and whole path
 * match answers. Order is the order of registration, so a route placed before a guard escapes it.
 */
export class Router<C, R> {
  private readonly entries: RouteEntry<C, R>[] = [];

  /** `method` '*' matches any method. Patterns name the bucket Discord-style: `/channels/:id/messages`. */
  on(method: string | string[], pattern: string, handler: (ctx: C, params: Params) => R): this {
    for (const m of Array.isArray(method) ? method : [method]) this.entries.push({ kind: 'route', method: m, pattern, exact: true, handler });
    return this;
  }

  guard(pattern: string, check: (ctx: C, params: Params) => void, opts: { exact?: boolean } = {}): this {
    this.entries.push({ kind: 'guard', method: '*', pattern, exact: opts.exact ?? false, handler: (ctx, p) => void check(ctx, p) });
    return this;
  }

  /** The first matching route's answer and its pattern, or undefined when no route matches. */
  handle(method: string, segments: string[], ctx: C): { result: R; pattern: string } | undefined {
    for (const e of this.entries) {
      const params = matchPattern(e.pattern, segments, !e.exact);
      if (!params) continue;
      if (e.kind === 'guard') {
        e.handler(ctx, params);
        continue;
      }
      if (e.method !== '*' && e.method !== method) continue;
      return { result: e.handler(ctx, params) as R, pattern: e.pattern };
    }
    return undefined;
  }
}

// ───────────────────────────── waiting ─────────────────────────────

interface Waiter<T> {
  match: (x: T) => boolean;
  resolve: (x: T) => void;
  timer: NodeJS.Timeout;
}

/** Promises that resolve with the first recorded item (past or future) that matches. */
export class Waiters<T> {
  private readonly waiting = new Set<Waiter<T>>();

  /** Resolves with the first of `existing` that matches, else with the first matching `notify`; rejects with `what()` after timeoutMs. */
  waitFor(existing: readonly T[], match: (x: T) => boolean, timeoutMs: number, what: () => string): Promise<T> {
    const found = existing.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = {
        match,
        resolve,
        timer: setTimeout(() => {
          this.waiting.delete(w);
          reject(new Error(what()));
        }, timeoutMs),
      };
      this.waiting.add(w);
    });
  }

  notify(x: T): void {
    for (const w of [...this.waiting]) {
      if (w.match(x)) {
        this.waiting.delete(w);
        clearTimeout(w.timer);
        w.resolve(x);
      }
    }
  }

  /** Drops every waiter without settling it (at close). */
  clear(): void {
    for (const w of this.waiting) clearTimeout(w.timer);
    this.waiting.clear();
  }
}

export function isObj(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
