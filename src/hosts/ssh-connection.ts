import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Client, ClientChannel } from 'ssh2';
import { NodeSSH } from 'node-ssh';
import type { Logger } from '../log.js';
import { quoteArgv } from './argv.js';
import { ConnectionRefused, HostUnavailable, Timeout } from './errors.js';
import { fingerprint, hostKeyMatches } from './host-key.js';
import type { CommandOutput } from './nvidia-smi.js';
import type { StreamedCommand } from './gpu-host.js';
import { recyclePackets, tuneSshPackets } from './ssh-packets.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  hostKey: string;
  connectTimeoutMs: number;
}

export type ConnectionState = 'connecting' | 'up' | 'down' | 'closed';

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 15_000;
const MAX_OUTPUT = 4 * 1024 * 1024;
const MAX_SESSIONS = 8;

/**
 * One SSH connection per host, kept open and reconnected with backoff. Calls on a host that is
 * down fail at once with the last error instead of waiting for the next attempt.
 */
export class SshConnection {
  state: ConnectionState = 'connecting';
  lastError: string | undefined;
  /** When the current run of failed attempts began (undefined while up or before the first failure). */
  failingSince: number | undefined;
  /** Whether the connection was ever up (a host never reached is "connecting", then "down"). */
  everUp = false;
  private client: Client | null = null;
  private backoffMs = MIN_BACKOFF_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private waiters: { resolve: (c: Client) => void; reject: (e: Error) => void }[] = [];
  private readonly listeners = new Set<(state: ConnectionState) => void>();

  constructor(
    readonly name: string,
    private readonly target: SshTarget,
    private readonly log: Logger,
    /** A connection failing this long is down: callers are answered at once instead of waiting for a retry. */
    private readonly downAfterMs = 3000,
  ) {}

  /** Failing for longer than downAfterMs: down, not merely reconnecting. */
  isDown(now = Date.now()): boolean {
    return this.state === 'closed' || (this.state !== 'up' && this.failingSince !== undefined && now - this.failingSince >= this.downAfterMs);
  }

  start(): void {
    if (this.state === 'closed') return;
    this.setState('connecting');
    void this.attempt();
  }

  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The connected client. Waits (at most timeoutMs) while the first attempt or a reconnect is in
   * flight; a host failing for longer than downAfterMs is reported at once with its last error.
   */
  async ready(timeoutMs: number): Promise<Client> {
    if (this.state === 'up' && this.client) return this.client;
    if (this.state === 'closed') throw new HostUnavailable(this.name, 'connection closed');
    if (this.isDown()) throw new HostUnavailable(this.name, this.lastError ?? 'not connected');
    return new Promise<Client>((resolve, reject) => {
      const waiter = {
        resolve: (c: Client) => {
          clearTimeout(timer);
          resolve(c);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new HostUnavailable(this.name, this.lastError ? `${this.lastError} (no SSH connection within ${timeoutMs} ms)` : `no SSH connection within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private running = 0;
  private readonly queued: (() => void)[] = [];

  /** sshd allows 10 sessions per connection by default (MaxSessions); stay under it. */
  private async session<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= MAX_SESSIONS) await new Promise<void>((resolve) => this.queued.push(resolve));
    this.running++;
    try {
      return await work();
    } finally {
      this.running--;
      this.queued.shift()?.();
    }
  }

  /** Runs a fixed argv on the host, `input` (if any) on its stdin. The exit code is returned, not thrown. */
  async exec(argv: string[], timeoutMs: number, input?: string): Promise<CommandOutput> {
    const client = await this.ready(timeoutMs);
    const command = quoteArgv(argv);
    const deadline = Date.now() + timeoutMs;
    return this.session(
      () =>
        new Promise<CommandOutput>((resolve, reject) => {
          let channel: ClientChannel | undefined;
          let timedOut = false;
          const timer = setTimeout(
            () => {
              timedOut = true;
              channel?.close();
              reject(new Timeout(`${this.name}: "${argv[0]}" took longer than ${timeoutMs} ms`));
            },
            Math.max(1, deadline - Date.now()),
          );
          client.exec(command, (err, stream) => {
            if (err) {
              clearTimeout(timer);
              reject(new HostUnavailable(this.name, `cannot open an SSH session: ${err.message}`));
              return;
            }
            // A channel that opens after the deadline is closed at once, not leaked.
            if (timedOut) return void stream.close();
            channel = stream;
            if (input !== undefined) stream.end(input);
            const out: Buffer[] = [];
            const errOut: Buffer[] = [];
            let size = 0;
            const collect = (into: Buffer[]) => (chunk: Buffer) => {
              size += chunk.length;
              if (size <= MAX_OUTPUT) into.push(chunk);
            };
            stream.on('data', collect(out));
            stream.stderr.on('data', collect(errOut));
            stream.on('close', (code: number | null) => {
              clearTimeout(timer);
              resolve({ code: code ?? null, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
            });
          });
        }),
    );
  }

  /**
   * Runs a fixed argv and hands back its stdout as a stream (no size cap, no deadline: the caller
   * ends it). It holds one of the connection's sessions until it exits.
   */
  async execStream(argv: string[], openTimeoutMs: number): Promise<StreamedCommand> {
    const client = await this.ready(openTimeoutMs);
    const command = quoteArgv(argv);
    return new Promise<StreamedCommand>((resolve, reject) => {
      void this.session(
        () =>
          new Promise<void>((sessionDone) => {
            client.exec(command, (err, stream) => {
              if (err) {
                sessionDone();
                reject(new HostUnavailable(this.name, `cannot open an SSH session: ${err.message}`));
                return;
              }
              let stderr = '';
              stream.stderr.on('data', (d: Buffer) => {
                if (stderr.length < 65_536) stderr += d.toString('utf8');
              });
              const done = new Promise<{ code: number | null; stderr: string }>((settle) => {
                stream.on('close', (code: number | null) => {
                  sessionDone();
                  settle({ code: code ?? null, stderr });
                });
              });
              resolve({ stdout: stream, done, close: () => stream.close() });
            });
          }),
      );
    });
  }

  /**
   * A long-lived exec channel (the live monitor's sampling loop), outside the session limit for
   * short commands: the caller reads its stdout and closes it.
   */
  async openExec(argv: string[], timeoutMs: number): Promise<ClientChannel> {
    const client = await this.ready(timeoutMs);
    const command = quoteArgv(argv);
    return new Promise((resolve, reject) => {
      client.exec(command, (err, stream) => (err ? reject(new HostUnavailable(this.name, `cannot open an SSH session: ${err.message}`)) : resolve(stream)));
    });
  }

  /** A direct-streamlocal channel to a unix socket on the host (the Docker socket). */
  async openStreamLocal(socketPath: string, timeoutMs: number): Promise<ClientChannel> {
    const client = await this.ready(timeoutMs);
    return new Promise((resolve, reject) => {
      client.openssh_forwardOutStreamLocal(socketPath, (err, stream) =>
        err ? reject(new HostUnavailable(this.name, `cannot reach ${socketPath}: ${err.message}`)) : resolve(stream),
      );
    });
  }

  /** A direct-tcpip channel: the host's sshd connects to address:port. */
  async openTcp(address: string, port: number, timeoutMs: number): Promise<ClientChannel> {
    const client = await this.ready(timeoutMs);
    return new Promise((resolve, reject) => {
      // sshd answers the open only once its connect() ends: an address that drops packets is given up on.
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new ConnectionRefused(this.name, `${address}:${port}`, `no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      client.forwardOut('127.0.0.1', 0, address, port, (err, stream) => {
        clearTimeout(timer);
        if (late) return void stream?.close();
        if (err) reject(new ConnectionRefused(this.name, `${address}:${port}`, err.message));
        else resolve(stream);
      });
    });
  }

  close(): void {
    this.setState('closed');
    clearTimeout(this.retryTimer);
    this.client?.end();
    this.client = null;
    this.flushWaiters(new HostUnavailable(this.name, 'connection closed'));
  }

  private async attempt(): Promise<void> {
    let offered: Buffer | undefined;
    let privateKey: string;
    try {
      privateKey = await readFile(this.target.privateKeyPath, 'utf8');
    } catch (err) {
      this.fail(`cannot read the private key ${this.target.privateKeyPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    tuneSshPackets();
    const ssh = new NodeSSH();
    // Our own socket, so its packet buffers are reused (ssh-packets.ts). node-ssh hands it to ssh2
    // in this same tick (the key is already read). If ssh2 throws before taking it (a key it cannot
    // parse), the catch below destroys it; the no-op listener keeps its error from crashing us.
    const sock = recyclePackets(connect({ host: this.target.host, port: this.target.port }));
    sock.on('error', () => {});
    sock.setMaxListeners(0);
    try {
      await ssh.connect({
        host: this.target.host,
        port: this.target.port,
        sock,
        username: this.target.user,
        privateKey,
        readyTimeout: this.target.connectTimeoutMs,
        keepaliveInterval: 2000,
        keepaliveCountMax: 3,
        // A pinned key line also fixes the algorithm: ssh2 would otherwise ask for ed25519 first.
        ...(this.target.hostKey.startsWith('SHA256:') ? {} : { algorithms: { serverHostKey: hostKeyAlgorithms(this.target.hostKey) as never[] } }),
        // No trust on first use: the key must match the one pinned in the config.
        hostVerifier: (key: Buffer) => {
          offered = key;
          return hostKeyMatches(this.target.hostKey, key);
        },
      });
    } catch (err) {
      ssh.dispose();
      sock.destroy();
      const message =
        offered && !hostKeyMatches(this.target.hostKey, offered)
          ? `host key ${fingerprint(offered)} does not match the key pinned in the config; refusing to connect`
          : (err as Error).message || String(err);
      this.fail(message);
      return;
    }
    const client = ssh.connection!;
    if (this.state === 'closed') {
      client.end();
      return;
    }
    this.client = client;
    this.backoffMs = MIN_BACKOFF_MS;
    this.lastError = undefined;
    this.failingSince = undefined;
    this.everUp = true;
    client.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    client.on('close', () => {
      if (this.client !== client) return;
      this.client = null;
      this.fail(this.lastError ?? 'connection lost');
    });
    this.setState('up');
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(client);
  }

  private fail(message: string): void {
    if (this.state === 'closed') return;
    if (message !== this.lastError || this.state !== 'down') this.log.warn({ host: this.name, err: message }, 'ssh connection failed');
    this.lastError = message;
    this.failingSince ??= Date.now();
    this.setState('down');
    // Callers wait for the retry while the host is merely reconnecting; once it is down they are told.
    if (this.isDown()) this.flushWaiters(new HostUnavailable(this.name, message));
    const delay = this.backoffMs * (0.8 + Math.random() * 0.4);
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.state === 'closed') return;
      this.setState('connecting');
      void this.attempt();
    }, delay);
    this.retryTimer.unref();
  }

  private flushWaiters(err: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(err);
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    for (const l of this.listeners) l(state);
  }
}

/** Signature algorithms that prove a key of the pinned type (an RSA key signs with SHA-2 today). */
function hostKeyAlgorithms(keyLine: string): string[] {
  const type = keyLine.split(' ')[0]!;
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}
