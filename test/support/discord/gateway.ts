/**
 * The gateway: ws://…/?v=10&encoding=json (uncompressed JSON text frames) and …/resume.
 * HELLO → IDENTIFY (token checked) → READY (guild unavailable) + GUILD_CREATE; heartbeats are acked;
 * op 7 RECONNECT → the client closes (4200) and RESUMEs on the resume URL; events sent while it was
 * away are replayed, then RESUMED. Sequence numbers are tracked per session; op 8 answers members.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { Waiters, type UpgradeHandler } from '../standin-http.js';
import type { DiscordGuild } from './guild.js';
import { isObj } from './protocol.js';
import type { Json } from './types.js';

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

const TRACE = ['["gateway-standin",{"micros":0}]'];
/** Events kept per session for replay after a RESUME. */
const REPLAY_LOG = 1000;

export class Gateway {
  identifyCount = 0;
  resumeCount = 0;
  heartbeatCount = 0;
  connectionCount = 0;
  readonly conns = new Set<Conn>();
  private current: Session | undefined;
  private readonly sessions = new Map<string, Session>();
  private readonly events = new Waiters<GatewayEvent>();

  constructor(
    private readonly g: DiscordGuild,
    private readonly urls: { gatewayUrl: string; resumeUrl: string },
    private readonly heartbeatIntervalMs: number,
  ) {}

  hasSession(): boolean {
    return this.current !== undefined;
  }

  /** Sends a dispatch on the current session (logged for replay even while the client is away). */
  dispatch(t: string, d: Json): void {
    if (!this.current) throw new Error('no gateway session');
    this.dispatchOn(this.current, t, d);
  }

  readonly upgrade: UpgradeHandler = (_req, url, upgrade) => {
    if (url.pathname !== '/' && url.pathname !== '/resume') return upgrade.refuse(404, 'Not Found');
    void upgrade.accept().then((ws) => this.onConnection(ws, url));
  };

  private onConnection(ws: WebSocket, url: URL): void {
    const conn: Conn = { ws, path: url.pathname, authed: false };
    this.connectionCount += 1;
    this.conns.add(conn);
    ws.on('close', () => {
      this.conns.delete(conn);
      if (conn.session?.conn === conn) conn.session.conn = undefined;
    });
    const v = url.searchParams.get('v');
    const encoding = url.searchParams.get('encoding');
    if (v !== '10') {
      this.g.violation(`gateway: connected with v=${String(v)} (expected 10)`);
      ws.close(4012, 'Invalid API version');
      return;
    }
    if (encoding !== 'json') {
      this.g.violation(`gateway: connected with encoding=${String(encoding)} (only json is served)`);
      ws.close(4002, 'Error while decoding payload.');
      return;
    }
    if (url.searchParams.has('compress')) this.g.violation(`gateway: compress=${url.searchParams.get('compress')} requested; the stand-in sends uncompressed text frames`);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.g.violation('gateway: binary frame from client');
        return void ws.close(4002, 'Error while decoding payload.');
      }
      this.onMessage(conn, data.toString());
    });
    this.send(conn, { op: 10, d: { heartbeat_interval: this.heartbeatIntervalMs, _trace: TRACE }, s: null, t: null });
  }

  private send(conn: Conn, payload: Json): void {
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(JSON.stringify(payload));
  }

  private dispatchOn(session: Session, t: string, d: Json): void {
    session.seq += 1;
    const payload = { op: 0, t, s: session.seq, d };
    session.log.push({ s: session.seq, payload });
    if (session.log.length > REPLAY_LOG) session.log.shift();
    if (session.conn?.authed) this.send(session.conn, payload);
  }

  private onMessage(conn: Conn, raw: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(raw);
    } catch {
      this.g.violation(`gateway: undecodable payload ${raw.slice(0, 200)}`);
      conn.ws.close(4002, 'Error while decoding payload.');
      return;
    }
    if (!isObj(msg)) return void conn.ws.close(4002, 'Error while decoding payload.');
    const op = msg.op as number;
    const d = msg.d;
    if (op === 1) {
      this.heartbeatCount += 1;
      if (conn.session && typeof d === 'number' && d > conn.session.seq) this.g.violation(`gateway: heartbeat with sequence ${d} beyond the last sent ${conn.session.seq}`);
      this.send(conn, { op: 11, d: null, s: null, t: null });
      return;
    }
    if (op === 2) return this.identify(conn, d);
    if (op === 6) return this.resume(conn, d);
    if (!conn.authed) return void conn.ws.close(4003, 'Not authenticated.');
    if (op === 3 || op === 4) return; // presence / voice state: accepted, ignored
    if (op === 8) return this.requestMembers(conn, d);
    this.g.violation(`gateway: unknown opcode ${String(op)}`);
    conn.ws.close(4001, 'Unknown opcode.');
  }

  private identify(conn: Conn, d: unknown): void {
    const { g } = this;
    if (conn.authed) return void conn.ws.close(4005, 'Already authenticated.');
    if (!isObj(d) || d.token !== g.token) {
      g.violation('gateway: IDENTIFY with a wrong token');
      return void conn.ws.close(4004, 'Authentication failed.');
    }
    if (typeof d.intents !== 'number') return void conn.ws.close(4013, 'Invalid intent(s).');
    if (Array.isArray(d.shard) && (d.shard[0] !== 0 || d.shard[1] !== 1)) return void conn.ws.close(4010, 'Invalid shard.');
    this.identifyCount += 1;
    const session: Session = { id: randomBytes(16).toString('hex'), seq: 0, log: [], conn };
    this.sessions.set(session.id, session);
    if (this.current?.conn && this.current.conn !== conn) this.current.conn = undefined;
    this.current = session;
    conn.session = session;
    conn.authed = true;
    this.dispatchOn(session, 'READY', {
      v: 10,
      user_settings: {},
      user: { ...g.botUserJson(), verified: true, mfa_enabled: false, email: null },
      guilds: [{ id: g.guildId, unavailable: true }],
      guild_join_requests: [],
      relationships: [],
      private_channels: [],
      presences: [],
      session_id: session.id,
      session_type: 'normal',
      resume_gateway_url: this.urls.resumeUrl,
      shard: [0, 1],
      application: { id: g.appId, flags: 0 },
      geo_ordered_rtc_regions: [],
      auth: {},
      _trace: TRACE,
    });
    this.dispatchOn(session, 'GUILD_CREATE', g.guildCreateJson());
    this.events.notify('ready');
  }

  private resume(conn: Conn, d: unknown): void {
    if (conn.authed) return void conn.ws.close(4005, 'Already authenticated.');
    if (!isObj(d) || d.token !== this.g.token) {
      this.g.violation('gateway: RESUME with a wrong token');
      return void conn.ws.close(4004, 'Authentication failed.');
    }
    const session = this.sessions.get(String(d.session_id));
    if (!session || typeof d.seq !== 'number' || d.seq > session.seq) {
      this.send(conn, { op: 9, d: false, s: null, t: null });
      return;
    }
    if (conn.path !== '/resume') this.g.violation(`gateway: RESUME on ${conn.path} instead of the resume_gateway_url`);
    if (session.conn && session.conn !== conn) session.conn.ws.close(4009, 'Session timed out.');
    this.resumeCount += 1;
    session.conn = conn;
    conn.session = session;
    conn.authed = true;
    this.current = session;
    for (const e of session.log) if (e.s > d.seq) this.send(conn, e.payload);
    this.dispatchOn(session, 'RESUMED', { _trace: TRACE });
    this.events.notify('resumed');
  }

  /** op 8 Request Guild Members → one GUILD_MEMBERS_CHUNK. */
  private requestMembers(conn: Conn, d: unknown): void {
    const { g } = this;
    const q = isObj(d) ? d : {};
    if (q.guild_id !== g.guildId || !conn.session) return;
    const ids = Array.isArray(q.user_ids) ? q.user_ids.map(String) : typeof q.user_ids === 'string' ? [q.user_ids] : undefined;
    const prefix = typeof q.query === 'string' ? q.query.toLowerCase() : '';
    const all = [g.botUserId, ...g.users.keys()];
    const members = all
      .filter((uid) => (ids ? ids.includes(uid) : (uid === g.botUserId ? g.botUsername : g.ensureUser(uid).username).toLowerCase().startsWith(prefix)))
      .slice(0, ids || !q.limit ? undefined : Number(q.limit))
      .map((uid) => g.memberJson(uid));
    const notFoundIds = ids?.filter((uid) => !all.includes(uid));
    this.dispatchOn(conn.session, 'GUILD_MEMBERS_CHUNK', { guild_id: g.guildId, members, chunk_index: 0, chunk_count: 1, ...(notFoundIds?.length ? { not_found: notFoundIds } : {}), ...(q.nonce ? { nonce: q.nonce } : {}) });
  }

  /** The next READY or RESUMED. */
  private nextEvent(timeoutMs: number, what: string): Promise<GatewayEvent> {
    return this.events.waitFor([], () => true, timeoutMs, () => `timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  async waitForSession(timeoutMs: number): Promise<void> {
    if (this.current?.conn?.authed) return;
    await this.nextEvent(timeoutMs, 'a gateway session');
  }

  async sendReconnect(timeoutMs: number): Promise<void> {
    const conn = this.current?.conn;
    if (!conn?.authed) throw new Error('no connected gateway session to send RECONNECT to');
    const next = this.nextEvent(timeoutMs, 'the client to RESUME after op 7 RECONNECT');
    this.send(conn, { op: 7, d: null, s: null, t: null });
    const e = await next;
    if (e !== 'resumed') throw new Error('the client re-identified instead of resuming after op 7 RECONNECT');
  }

  async dropConnection(code: number, timeoutMs: number): Promise<'resumed' | 'identified'> {
    const conn = this.current?.conn;
    if (!conn) throw new Error('no connected gateway session');
    const next = this.nextEvent(timeoutMs, `the client to come back after close code ${code}`);
    conn.ws.close(code, 'stand-in dropped the connection');
    return (await next) === 'resumed' ? 'resumed' : 'identified';
  }

  stop(): void {
    this.events.clear();
  }
}
