import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';
import { audit } from '../db/audit.js';
import type { PrismaClient } from '../db/client.js';
import { keyByFingerprint } from '../db/ssh-keys.js';
import { userDir } from '../hosts/container-spec.js';
import { startGatewayServer, type AuthVerdict, type GatewayConnection, type GatewayTarget, type RunningGateway } from '../hosts/gateway-server.js';
import type { HostPool } from '../hosts/host-pool.js';
import { keyFingerprint, loadOrCreateHostKey, verifyClientKey } from '../hosts/ssh-public-key.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { RateLimiter } from './rate-limit.js';

export interface GatewayDeps {
  config: Config;
  db: PrismaClient;
  pool: HostPool;
  log: Logger;
}

/** What the rest of gpubot sees of a running gateway. */
export interface GatewayInfo {
  readonly port: number;
  readonly publicHost: string;
  readonly hostKeyFingerprint: string;
  /** Names of containers with an open session (activity for the idle job). */
  activeContainers(): Set<string>;
  /** Ends the open sessions that authenticated with these keys (now, not at the next sweep). */
  revokeKeys(fingerprints: string[]): void;
}

const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** Open sessions are checked this often: a key removed elsewhere (another process) ends its sessions within it. */
export const SWEEP_MS = 20_000;
const FAILURE_WINDOW_MS = 5 * 60_000;

/** The gateway's decisions: who gets in (keys), where to (their containers), and the record of it. */
export class GatewayService implements GatewayInfo {
  private readonly failuresByAddress = new RateLimiter(20, FAILURE_WINDOW_MS);
  private readonly failuresByKey = new RateLimiter(10, FAILURE_WINDOW_MS);
  private readonly open = new Map<number, GatewayConnection>();
  private server: RunningGateway | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  port = 0;
  hostKeyFingerprint = '';
  readonly publicHost: string;

  constructor(
    private readonly deps: GatewayDeps,
    private readonly settings: NonNullable<Config['gateway']>,
    private readonly sweepMs = SWEEP_MS,
  ) {
    this.publicHost = settings.publicHost ?? hostname();
  }

  async start(): Promise<void> {
    const key = await loadOrCreateHostKey(this.settings.hostKeyPath);
    this.hostKeyFingerprint = key.fingerprint;
    this.server = await startGatewayServer({
      hostKey: key.privateKey,
      port: this.settings.port,
      listen: this.settings.listen,
      log: this.deps.log,
      hooks: {
        authenticate: (r) => this.authenticate(r),
        target: (c) => this.target(c),
        opened: (c) => this.opened(c),
        closed: (c) => this.closed(c),
      },
    });
    this.port = this.server.port;
    this.deps.log.info({ fingerprint: key.fingerprint, port: this.port }, 'ssh gateway host key');
    this.sweeper = setInterval(() => void this.sweep().catch((err) => this.deps.log.warn({ err: errorMessage(err) }, 'gateway sweep failed')), this.sweepMs);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    for (const c of this.open.values()) c.end('gpubot is restarting');
    await this.server?.close();
  }

  activeContainers(): Set<string> {
    return new Set([...this.open.values()].map((c) => c.username));
  }

  revokeKeys(fingerprints: string[]): void {
    const gone = new Set(fingerprints);
    for (const c of this.open.values()) if (c.principal && gone.has(c.principal.fingerprint)) c.end('your key was removed; this session is closed');
  }

  /** Ends sessions whose key is gone, and those whose container stopped or changed hands. */
  async sweep(): Promise<void> {
    const conns = [...this.open.values()];
    if (!conns.length) return;
    const fps = [...new Set(conns.map((c) => c.principal!.fingerprint))];
    const present = new Set((await this.deps.db.sshKey.findMany({ where: { fingerprint: { in: fps } }, select: { fingerprint: true } })).map((k) => k.fingerprint));
    for (const c of conns) {
      if (!present.has(c.principal!.fingerprint)) c.end('your key was removed; this session is closed');
      else {
        const t = await this.target(c).catch(() => 'the container cannot be reached');
        if (typeof t === 'string') c.end(t);
      }
    }
  }

  async authenticate(r: { username: string; remote: string; key: Buffer; signed?: { blob: Buffer; signature: Buffer; hashAlgo?: string } }): Promise<AuthVerdict> {
    const fp = keyFingerprint(r.key);
    if (!this.failuresByAddress.allowed(r.remote) || !this.failuresByKey.allowed(fp)) {
      this.deps.log.warn({ remote: r.remote, key: fp }, 'gateway: too many failed logins');
      return { verdict: 'blocked' };
    }
    const stored = await keyByFingerprint(this.deps.db, fp);
    if (!stored || !verifyClientKey(stored, r.key)) {
      this.failuresByAddress.hit(r.remote);
      return { verdict: 'reject' };
    }
    if (!r.signed) return { verdict: 'key-ok' };
    if (!verifyClientKey(stored, r.key, r.signed)) {
      this.failuresByAddress.hit(r.remote);
      this.failuresByKey.hit(fp);
      await audit(this.deps.db, { actor: `key ${fp}`, action: 'ssh-login', target: printableName(r.username), result: 'refused', detail: `bad signature from ${r.remote}` });
      return { verdict: 'reject' };
    }
    const user = await this.deps.db.user.findUnique({ where: { id: stored.userId } });
    if (!user) return { verdict: 'reject' };
    const { admins } = this.deps.config;
    const identities = admins.length ? await this.deps.db.chatIdentity.findMany({ where: { userId: user.id }, select: { externalId: true } }) : [];
    const isAdmin = admins.includes(user.handle) || identities.some((i) => admins.includes(i.externalId));
    return { verdict: 'accept', principal: { userId: user.id, handle: user.handle, isAdmin, fingerprint: fp } };
  }

  async target(conn: GatewayConnection): Promise<GatewayTarget | string> {
    const name = conn.username;
    const who = conn.principal!;
    if (!CONTAINER_NAME.test(name)) return `"${printableName(name)}" is not a container name; log in as your container: ssh -p ${this.port} NAME@${this.publicHost}`;
    const c = await this.deps.db.container.findUnique({ where: { name }, include: { user: true } });
    if (!c || c.state === 'removed') return `there is no container named "${name}" (see "ls" in chat)`;
    if (c.userId !== who.userId && !who.isAdmin) return `"${name}" belongs to ${c.user.handle}; only they or an admin can enter it`;
    if (c.state !== 'running') return `${name} is ${c.state === 'stopped' ? 'stopped' : c.state}; say "start ${name}" in chat to run it again`;
    const host = this.deps.pool.get(c.hostName);
    if (!host) return `${name} is on ${c.hostName}, which is no longer configured`;
    const state = host.connection();
    if (state.state !== 'up') return `${name}'s host ${c.hostName} cannot be reached now (${state.lastError ?? state.state})`;
    const { storage } = this.deps.config;
    const uid = storage.runAs === 'user' ? (c.user.uid ?? undefined) : undefined;
    return { name, host, container: c.dockerId ?? c.name, hostDir: userDir(this.deps.config, c.user.handle), mountPath: storage.mountPath, uid };
  }

  private opened(conn: GatewayConnection): void {
    this.open.set(conn.id, conn);
    const who = conn.principal!;
    this.deps.log.info({ user: who.handle, container: conn.username, remote: conn.remote, key: who.fingerprint }, 'gateway session opened');
    void audit(this.deps.db, {
      actor: who.handle,
      action: 'ssh-session',
      target: printableName(conn.username),
      result: 'ok',
      detail: `opened from ${conn.remote} with key ${who.fingerprint}`,
    }).catch(() => {});
  }

  private closed(conn: GatewayConnection): void {
    this.open.delete(conn.id);
    const who = conn.principal!;
    const seconds = Math.round((Date.now() - conn.startedAt.getTime()) / 1000);
    const uses = [...conn.uses].join(',') || 'nothing';
    this.deps.log.info(
      { user: who.handle, container: conn.username, remote: conn.remote, seconds, bytesIn: conn.bytesIn, bytesOut: conn.bytesOut, uses },
      'gateway session closed',
    );
    void audit(this.deps.db, {
      actor: who.handle,
      action: 'ssh-session-end',
      target: printableName(conn.username),
      result: 'ok',
      detail: `from ${conn.remote}, started ${conn.startedAt.toISOString()}, ${seconds} s, ${conn.bytesIn} bytes in, ${conn.bytesOut} bytes out, used ${uses}`,
    }).catch(() => {});
  }
}

/** An ssh user name is the client's to choose: shown only as plain, short text. */
const printableName = (s: string): string => s.replace(/[^\x21-\x7e]/g, '?').slice(0, 64);
