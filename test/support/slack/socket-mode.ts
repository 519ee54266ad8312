/**
 * Socket Mode: apps.connections.open hands out ws://…/socket?ticket=… (one use per ticket); each
 * connection gets "hello", is pinged like Slack does, and receives envelopes whose acks must come
 * back within 3 s; `disconnect` asks the client to reconnect.
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { Waiters } from '../standin-http.js';
import { ACK_DEADLINE_MS, isObj, str } from './rules.js';
import type { Json } from './types.js';
import type { SlackWorkspace } from './workspace.js';

type Ack = { ackMs: number; payload?: unknown; envelopeId: string };

interface PendingAck {
  sentAt: number;
  resolve: (r: Ack) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  timedOut: boolean;
  type: string;
}

export class SocketMode {
  private readonly tickets = new Set<string>();
  /** Open connections, oldest first. */
  readonly sockets: WebSocket[] = [];
  private readonly pendingAcks = new Map<string, PendingAck>();
  private readonly connected = new Waiters<true>();
  private readonly pinger: NodeJS.Timeout | undefined;
  totalConnections = 0;

  constructor(
    private readonly ws: SlackWorkspace,
    /** "ws://127.0.0.1:PORT" */
    private readonly wsUrl: string,
    pingIntervalMs: number,
  ) {
    this.pinger =
      pingIntervalMs > 0
        ? setInterval(() => {
            for (const s of this.sockets) if (s.readyState === s.OPEN) s.ping(`ping ${Date.now()}`);
          }, pingIntervalMs)
        : undefined;
    this.pinger?.unref();
  }

  /** A fresh one-use socket URL (apps.connections.open). */
  issueUrl(): string {
    const ticket = randomUUID();
    this.tickets.add(ticket);
    return `${this.wsUrl}/socket?ticket=${ticket}&app_id=${this.ws.appId}`;
  }

  /** Whether an upgrade request may become a socket-mode connection (spends its ticket). */
  admits(url: URL): boolean {
    return url.pathname === '/socket' && this.tickets.delete(url.searchParams.get('ticket') ?? '');
  }

  onConnection(sock: WebSocket): void {
    this.totalConnections += 1;
    this.sockets.push(sock);
    sock.on('close', () => {
      const i = this.sockets.indexOf(sock);
      if (i >= 0) this.sockets.splice(i, 1);
    });
    sock.on('message', (data, isBinary) => this.onFrame(data.toString(), isBinary));
    sock.send(
      JSON.stringify({
        type: 'hello',
        num_connections: this.sockets.length,
        debug_info: { host: 'applink-standin-1', build_number: 1, approximate_connection_time: 18060 },
        connection_info: { app_id: this.ws.appId },
      }),
    );
    this.connected.notify(true);
  }

  private onFrame(text: string, isBinary: boolean): void {
    const violation = (v: string): void => this.ws.violation(v);
    if (isBinary) return violation('binary WebSocket frame from client');
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return violation(`non-JSON WebSocket frame from client: ${text.slice(0, 200)}`);
    }
    if (!isObj(msg) || typeof msg.envelope_id !== 'string') return violation(`unexpected WebSocket frame from client: ${text.slice(0, 200)}`);
    const p = this.pendingAcks.get(msg.envelope_id);
    if (!p) return violation(`ack for unknown or already acked envelope ${msg.envelope_id}`);
    this.pendingAcks.delete(msg.envelope_id);
    const ackMs = Date.now() - p.sentAt;
    this.ws.latencies.push(ackMs);
    clearTimeout(p.timer);
    if (p.timedOut) return; // already counted late and rejected
    p.resolve({ ackMs, envelopeId: msg.envelope_id, ...('payload' in msg ? { payload: msg.payload } : {}) });
  }

  waitForSocket(timeoutMs: number, apiConnectionOpens: () => number): Promise<void> {
    return this.connected
      .waitFor(this.sockets.length > 0 ? [true] : [], () => true, timeoutMs, () => `no socket-mode connection within ${timeoutMs} ms (connections so far: ${this.totalConnections}; apps.connections.open calls: ${apiConnectionOpens()})`)
      .then(() => undefined);
  }

  sendEnvelope(type: string, payload: Json, o: { retryAttempt?: number; retryReason?: string } = {}): Promise<Ack> {
    const sock = this.sockets[this.sockets.length - 1];
    if (!sock) return Promise.reject(new Error('sendEnvelope: no socket-mode client is connected'));
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
          this.ws.late += 1;
          const what = `${type} envelope ${envelopeId} (${str(payload.command) ?? str(payload.type) ?? ''}) not acknowledged within ${ACK_DEADLINE_MS} ms`;
          this.ws.violation(what);
          reject(new Error(what));
        }, ACK_DEADLINE_MS),
      };
      p.timer.unref();
      this.pendingAcks.set(envelopeId, p);
      sock.send(JSON.stringify({ envelope_id: envelopeId, type, payload, accepts_response_payload: accepts, retry_attempt: o.retryAttempt ?? 0, retry_reason: o.retryReason ?? '' }));
    });
  }

  async sendDisconnect(reason: string, graceMs: number): Promise<void> {
    await Promise.all(
      [...this.sockets].map(
        (sock) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              this.ws.violation(`client did not close its socket within ${graceMs} ms of a disconnect message`);
              sock.terminate();
            }, graceMs);
            sock.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            sock.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-standin-1' } }));
          }),
      ),
    );
  }

  /** Stops pings and forgets pending acks and waiters (the sockets close with the server). */
  stop(): void {
    if (this.pinger) clearInterval(this.pinger);
    for (const p of this.pendingAcks.values()) clearTimeout(p.timer);
    this.pendingAcks.clear();
    this.connected.clear();
  }
}
