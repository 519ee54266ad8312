import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import type { App } from '../app.js';
import { historyState, liveState, verifyToken, type Viewer } from '../operations/dashboard.js';
import { errorMessage } from '../util/errors.js';

/** How often open pages are checked for news (the live feed itself samples every telemetry.intervalMs). */
const TICK_MS = 1_000;
/** A link revoked or expired while its page is open: the stream ends within this. */
const RECHECK_MS = 10_000;
/** The charts change by the minute: one computation serves every page of the same kind for this long. */
const HISTORY_TTL_MS = 30_000;

interface Asset {
  type: string;
  body: Buffer;
  gzipped: Buffer;
}

/** static/ is copied into dist/ by the build; from src/ (tsx, tests) it is the checkout's. */
const STATIC_DIR =
  [new URL('../static/dashboard/', import.meta.url), new URL('../../static/dashboard/', import.meta.url)].find((u) => existsSync(u)) ??
  new URL('../../static/dashboard/', import.meta.url);

/** The page, its script and style, and uPlot from node_modules: read once, served from memory, never from a CDN. */
function loadAssets(): Map<string, Asset> {
  const require = createRequire(import.meta.url);
  const files: [string, string, string | URL][] = [
    ['index.html', 'text/html; charset=utf-8', new URL('index.html', STATIC_DIR)],
    ['app.js', 'text/javascript; charset=utf-8', new URL('app.js', STATIC_DIR)],
    ['app.css', 'text/css; charset=utf-8', new URL('app.css', STATIC_DIR)],
    ['uplot.js', 'text/javascript; charset=utf-8', require.resolve('uplot/dist/uPlot.iife.min.js')],
    ['uplot.css', 'text/css; charset=utf-8', require.resolve('uplot/dist/uPlot.min.css')],
  ];
  return new Map(
    files.map(([name, type, path]) => {
      const body = readFileSync(path);
      return [name, { type, body, gzipped: gzipSync(body, { level: 9 }) }];
    }),
  );
}

let assets: Map<string, Asset> | undefined;
export const dashboardAssets = (): Map<string, Asset> => (assets ??= loadAssets());

const SECURITY_HEADERS = {
  // Only our own origin: no CDN, no inline script; the data is drawn with textContent, never as HTML.
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function sendAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
  const asset = dashboardAssets().get(name)!;
  const gzip = /\bgzip\b/.test(req.headers['accept-encoding'] ?? '');
  res.writeHead(200, { 'content-type': asset.type, ...SECURITY_HEADERS, ...(gzip ? { 'content-encoding': 'gzip' } : {}), vary: 'accept-encoding' });
  res.end(gzip ? asset.gzipped : asset.body);
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json', ...SECURITY_HEADERS });
  res.end(JSON.stringify(body));
};

const forbidden = (res: ServerResponse, why: string): void => {
  res.writeHead(403, { 'content-type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
  res.end(`403 Forbidden: ${why}\n`);
};

/** The read-only dashboard: /dashboard/<signed token>[/state|/history|/events], /dashboard/public[...], /dashboard/static/*. */
export class Dashboard {
  private readonly streams = new Set<ServerResponse>();
  private readonly history = new Map<string, { at: number; version: string; value: Promise<unknown> }>();

  constructor(private readonly app: App) {}

  /** Ends every open event stream (the server is closing). */
  stop(): void {
    for (const res of this.streams) res.end();
    this.streams.clear();
  }

  /** True when the request was for the dashboard (answered), false otherwise. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const path = (req.url ?? '').split('?')[0]!;
    if (path !== '/dashboard' && !path.startsWith('/dashboard/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET' }).end();
      return true;
    }
    const [, , first, view, ...rest] = path.split('/');
    if (first === 'static' && view && rest.length === 0 && ['app.js', 'app.css', 'uplot.js', 'uplot.css'].includes(view)) {
      sendAsset(req, res, view);
      return true;
    }
    if (!first || rest.length > 0 || (view !== undefined && !['state', 'history', 'events'].includes(view))) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 Not Found: open the link "dashboard" gives in chat\n');
      return true;
    }
    let viewer: Viewer;
    if (first === 'public') {
      if (!this.app.options.config.http?.dashboard.public) {
        forbidden(res, 'the public view is off (http.dashboard.public); say "dashboard" in chat for your own link');
        return true;
      }
      viewer = null;
    } else {
      const checked = await verifyToken(this.app.ops, first);
      if (!checked.ok) {
        forbidden(res, checked.why);
        return true;
      }
      viewer = checked.viewer;
    }
    if (view === undefined) sendAsset(req, res, 'index.html');
    else if (view === 'state') json(res, 200, await liveState(this.app.ops, await this.app.cluster.snapshot(), viewer));
    else if (view === 'history') json(res, 200, await this.historyFor(viewer));
    else this.openStream(res, first, viewer);
    return true;
  }

  /**
   * The week's charts, shared for HISTORY_TTL_MS by viewers who see the same (admins; each user; the
   * public view), and made again at once when an allocation was made or released.
   */
  private async historyFor(viewer: Viewer): Promise<unknown> {
    const { db } = this.app;
    const [newest, active] = await Promise.all([db.allocation.aggregate({ _max: { id: true } }), db.allocation.count({ where: { state: 'active' } })]);
    const key = `${viewer === null ? 'public' : viewer.isAdmin ? 'admin' : `user:${viewer.userId}`}`;
    const version = `${newest._max.id ?? 0}:${active}`;
    const cached = this.history.get(key);
    if (cached && cached.version === version && Date.now() - cached.at < HISTORY_TTL_MS) return cached.value;
    if (this.history.size > 1000) this.history.clear();
    const value = historyState(this.app.ops, viewer);
    this.history.set(key, { at: Date.now(), version, value });
    value.catch(() => this.history.delete(key));
    return value;
  }

  /** Server-sent events: the whole state whenever it changed (compared as JSON), checked every TICK_MS. */
  private openStream(res: ServerResponse, token: string, viewer: Viewer): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'x-accel-buffering': 'no', ...SECURITY_HEADERS });
    res.write('retry: 3000\n\n');
    let last = '';
    let checkedAt = Date.now();
    let busy = false;
    const { app } = this;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        if (viewer && Date.now() - checkedAt >= RECHECK_MS) {
          checkedAt = Date.now();
          const again = await verifyToken(app.ops, token);
          if (!again.ok) {
            res.write(`event: denied\ndata: ${JSON.stringify(again.why)}\n\n`);
            res.end();
            return;
          }
        }
        const state = await liveState(app.ops, await app.cluster.snapshot(), viewer);
        const { at: _at, ...comparable } = state;
        const text = JSON.stringify(comparable);
        if (text !== last) {
          last = text;
          res.write(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
        } else res.write(': ping\n\n');
      } catch (err) {
        app.options.log.warn({ err: errorMessage(err) }, 'dashboard update failed');
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void tick(), TICK_MS);
    this.streams.add(res);
    res.on('close', () => {
      clearInterval(timer);
      this.streams.delete(res);
    });
    void tick();
  }
}
