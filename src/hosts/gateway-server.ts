import { createServer, type AddressInfo } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import ssh2, { type Connection, type ServerChannel, type Session } from 'ssh2';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { execInContainer, LOGIN_SHELL, portRelay, shellCommand, type ContainerProcess } from './container-exec.js';
import type { GpuHost } from './gpu-host.js';
import { RemoteHost } from './remote-host.js';
import { serveSftp } from './sftp-proxy.js';
import { recyclePackets, tuneSshPackets } from './ssh-packets.js';

/** Who proved possession of a registered key. */
export interface GatewayPrincipal {
  userId: number;
  handle: string;
  isAdmin: boolean;
  fingerprint: string;
}

/** The running container a connection may reach right now. */
export interface GatewayTarget {
  name: string;
  host: GpuHost;
  /** Docker id (or name) on that host. */
  container: string;
  /** The owner's directory on the host, and where the container sees it. */
  hostDir: string;
  mountPath: string;
  /** The uid/gid the container runs as (storage.runAs: user): files sent in become theirs. */
  uid?: number;
}

export interface GatewayConnection {
  readonly id: number;
  /** The ssh user name: the container the client asked for. */
  readonly username: string;
  readonly remote: string;
  readonly startedAt: Date;
  principal?: GatewayPrincipal;
  bytesIn: number;
  bytesOut: number;
  /** What was used: shell, exec, sftp, forward. */
  readonly uses: Set<string>;
  /** Ends the connection, telling open channels why. */
  end(reason: string): void;
}

export type AuthVerdict = { verdict: 'accept'; principal: GatewayPrincipal } | { verdict: 'key-ok' } | { verdict: 'reject' } | { verdict: 'blocked' };

export interface GatewayHooks {
  /** Public key authentication; `signed` is absent when the client only asks whether a key would do. */
  authenticate(request: { username: string; remote: string; key: Buffer; signed?: { blob: Buffer; signature: Buffer; hashAlgo?: string } }): Promise<AuthVerdict>;
  /** The container this connection may reach now, or a refusal the client prints. */
  target(conn: GatewayConnection): Promise<GatewayTarget | string>;
  opened(conn: GatewayConnection): void;
  closed(conn: GatewayConnection): void;
}

export interface GatewayServerOptions {
  hostKey: string;
  port: number;
  listen: string;
  hooks: GatewayHooks;
  log: Logger;
}

export interface RunningGateway {
  port: number;
  close(): Promise<void>;
}

const FORWARD_HOSTS = new Set(['localhost', '127.0.0.1', '::1']);
const ENV_ALLOWED = /^(LANG|LC_[A-Z]+|TZ|COLORTERM)$/;
const SFTP_TIMEOUT_MS = 10_000;
const DIRECT_CONNECT_TIMEOUT_MS = 3_000;
// AES-GCM only: the OpenSSH client would otherwise pick chacha20-poly1305, several times slower in
// ssh2, and a -L forward or scp would crawl. Every OpenSSH since 6.2 and PuTTY since 0.76 has GCM.
const GATEWAY_CIPHERS: ssh2.CipherAlgorithm[] = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com'];

let nextId = 1;

/**
 * The SSH gateway: users log in as their container's name with a key they added in chat, and get
 * a shell or a command (Docker exec inside that container), its files (SFTP onto their directory
 * on its host) and forwards to its own loopback. Nothing here ever runs on a host itself.
 */
export async function startGatewayServer(options: GatewayServerOptions): Promise<RunningGateway> {
  const { hooks, log } = options;
  const clients = new Set<Connection>();
  tuneSshPackets();
  const server = new ssh2.Server({ hostKeys: [options.hostKey], ident: 'gpubot', algorithms: { cipher: GATEWAY_CIPHERS } }, (client, info) => {
    let closed = false;
    clients.add(client);
    const channels = new Set<ServerChannel>();
    const conn: GatewayConnection = {
      id: nextId++,
      username: '',
      remote: info.ip,
      startedAt: new Date(),
      bytesIn: 0,
      bytesOut: 0,
      uses: new Set(),
      end(reason) {
        for (const ch of channels) {
          try {
            ch.stderr.write(`gpubot: ${reason}\r\n`);
            ch.exit(255);
          } catch {
            // already closing
          }
        }
        setTimeout(() => client.end(), 100).unref();
      },
    };
    client.on('error', (err) => log.debug({ err: errorMessage(err), remote: info.ip }, 'gateway connection error'));
    client.on('authentication', (ctx) => {
      (conn as { username: string }).username = ctx.username;
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const signed = ctx.signature ? { blob: ctx.blob!, signature: ctx.signature, hashAlgo: ctx.hashAlgo } : undefined;
      hooks.authenticate({ username: ctx.username, remote: info.ip, key: ctx.key.data, signed }).then(
        (v) => {
          if (v.verdict === 'accept') {
            conn.principal = v.principal;
            ctx.accept();
          } else if (v.verdict === 'key-ok') ctx.accept();
          else if (v.verdict === 'blocked') {
            ctx.reject([]);
            client.end();
          } else ctx.reject(['publickey']);
        },
        (err) => {
          log.warn({ err: errorMessage(err) }, 'gateway authentication failed');
          ctx.reject(['publickey']);
        },
      );
    });
    client.on('ready', () => {
      hooks.opened(conn);
      client.on('session', (accept) => void openSession(accept));
      client.on('tcpip', (accept, reject, dest) => void openForward(accept, reject, dest));
      // Remote forwarding (-R) and anything else global: refused.
      client.on('request', (_accept, reject) => reject?.());
    });
    client.on('close', () => {
      clients.delete(client);
      if (closed) return;
      closed = true;
      if (conn.principal) hooks.closed(conn);
    });

    const track = (ch: ServerChannel) => {
      channels.add(ch);
      ch.on('close', () => channels.delete(ch));
      return ch;
    };
    const refuseChannel = (ch: ServerChannel, message: string) => {
      ch.stderr.write(`gpubot: ${message}\r\n`);
      ch.exit(1);
      ch.end();
    };
    const counting = (from: Readable, to: NodeJS.WritableStream, field: 'bytesIn' | 'bytesOut', end = true) => {
      from.on('data', (d: Buffer) => (conn[field] += d.length));
      from.pipe(to as never, { end });
    };

    async function openSession(acceptSession: () => Session): Promise<void> {
      // Decided before the session exists, so a refusal can be printed whatever the client asks for.
      let target: GatewayTarget | string;
      try {
        target = await hooks.target(conn);
      } catch (err) {
        target = `could not reach the container: ${errorMessage(err)}`;
      }
      const session = acceptSession();
      let pty: { cols: number; rows: number; term: string } | undefined;
      const env: string[] = [];
      let proc: ContainerProcess | undefined;
      session.on('pty', (accept, _reject, p) => {
        pty = { cols: p.cols, rows: p.rows, term: /^[A-Za-z0-9._+-]{1,40}$/.test(p.term) ? p.term : 'xterm' };
        accept?.();
      });
      session.on('env', (accept, reject, e) => {
        if (ENV_ALLOWED.test(e.key) && env.length < 16 && e.val.length < 200 && !/[\0]/.test(e.val)) {
          env.push(`${e.key}=${e.val}`);
          accept?.();
        } else reject?.();
      });
      session.on('window-change', (accept, _reject, w) => {
        accept?.();
        if (pty) pty = { ...pty, cols: w.cols, rows: w.rows };
        void proc?.resize(w.cols, w.rows);
      });
      session.on('signal', (accept, _reject, s) => {
        accept?.();
        void proc?.signal(s.name).catch(() => {});
      });
      const run = async (ch: ServerChannel, argv: string[], use: string) => {
        track(ch);
        if (typeof target === 'string') return refuseChannel(ch, target);
        conn.uses.add(use);
        try {
          proc = await execInContainer(target.host, target.container, {
            argv,
            tty: !!pty,
            env: [...(pty ? [`TERM=${pty.term}`] : []), ...env],
            cols: pty?.cols,
            rows: pty?.rows,
          });
        } catch (err) {
          return refuseChannel(ch, `could not start in ${target.name}: ${errorMessage(err)}`);
        }
        const p = proc;
        // As sshd does, a client's EOF does not end a terminal session (Docker would cut its output).
        counting(ch, p.stdin, 'bytesIn', !pty);
        counting(p.stdout, ch, 'bytesOut', false);
        counting(p.stderr, ch.stderr, 'bytesOut', false);
        ch.on('close', () => p.kill());
        const code = await p.exited;
        await Promise.all([ended(p.stdout), ended(p.stderr)]);
        if (!ch.destroyed) {
          ch.exit(code ?? 255);
          ch.end();
        }
      };
      session.on('shell', (accept) => void run(accept(), LOGIN_SHELL, 'shell'));
      session.on('exec', (accept, _reject, e) => void run(accept(), shellCommand(e.command), 'exec'));
      if (typeof target === 'string' || !(target.host instanceof RemoteHost)) {
        const why = typeof target === 'string' ? target : `file transfer needs an SSH host; ${target.host.name} is this machine`;
        session.on('subsystem', (accept) => refuseChannel(track(accept()), why));
      } else {
        const t = target;
        const remote = t.host as RemoteHost;
        // Accepted at once: the client sends its first SFTP packet without waiting for the reply.
        // Each session gets its own sftp-server on the host, jailed to this user's directory (see
        // host-sftp.ts); serveSftp's path checks come first, the kernel's confinement behind them.
        session.on('sftp', (accept, reject) => {
          conn.uses.add('sftp');
          let taken: ReturnType<RemoteHost['sftp']>;
          try {
            taken = remote.sftp({ hostDir: t.hostDir, mountPath: t.mountPath, uid: t.uid }, SFTP_TIMEOUT_MS);
          } catch (err) {
            // Too many users' transfers on that host at once: sftp and scp say the subsystem failed.
            log.warn({ host: remote.name, err: errorMessage(err) }, 'gateway: file session refused');
            return reject();
          }
          const sftp = accept();
          const { sftp: hostSftp, release } = taken;
          sftp.on('close', release);
          hostSftp.then(
            (h) => h.once('close', () => sftp.end()),
            (err) => {
              log.warn({ host: remote.name, err: errorMessage(err) }, 'gateway: no SFTP server on the host');
              sftp.end();
            },
          );
          serveSftp(sftp, {
            host: hostSftp,
            // The jailed server sees the directory where the container does.
            hostDir: t.mountPath,
            mountPath: t.mountPath,
            onBytes: (dir, n) => (dir === 'in' ? (conn.bytesIn += n) : (conn.bytesOut += n)),
          });
        });
      }
    }

    async function openForward(accept: () => ServerChannel, reject: () => void, dest: { destIP: string; destPort: number }): Promise<void> {
      if (!FORWARD_HOSTS.has(dest.destIP) || !Number.isInteger(dest.destPort) || dest.destPort < 1 || dest.destPort > 65535) return reject();
      let target: GatewayTarget | string;
      try {
        target = await hooks.target(conn);
      } catch {
        return reject();
      }
      if (typeof target === 'string') return reject();
      const direct = await connectDirect(target, dest.destPort);
      if (direct) {
        conn.uses.add('forward');
        const ch = track(accept());
        counting(ch, direct, 'bytesIn');
        counting(direct, ch, 'bytesOut');
        direct.on('error', () => ch.destroy());
        ch.on('error', () => direct.destroy());
        ch.on('close', () => direct.destroy());
        return;
      }
      let p: ContainerProcess;
      try {
        p = await execInContainer(target.host, target.container, { argv: portRelay(dest.destPort), tty: false });
      } catch {
        return reject();
      }
      conn.uses.add('forward');
      const ch = track(accept());
      counting(ch, p.stdin, 'bytesIn');
      counting(p.stdout, ch, 'bytesOut', false);
      p.stderr.resume();
      ch.on('close', () => p.kill());
      await p.exited;
      await ended(p.stdout);
      if (!ch.destroyed) ch.end();
    }
  });
  // Our own listener hands each socket to ssh2 (its public injectSocket), so the socket can give
  // packet buffers back for reuse (ssh-packets.ts).
  const listener = createServer((socket) => server.injectSocket(recyclePackets(socket)));
  listener.on('error', (err: Error) => log.warn({ err: errorMessage(err) }, 'gateway server error'));
  server.on('error', (err: Error) => log.warn({ err: errorMessage(err) }, 'gateway server error'));
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port, options.listen, () => {
      listener.off('error', reject);
      resolve();
    });
  });
  const port = (listener.address() as AddressInfo).port;
  log.info({ port, listen: options.listen }, 'ssh gateway listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        listener.close(() => resolve());
        for (const c of clients) c.end();
      }),
  };
}

/**
 * A forward's fast way: the host itself connects to the container's bridge address, so bytes go
 * through sshd and the kernel, not a Docker exec. Only a service listening on all of the
 * container's addresses answers there; for one on its loopback only (JupyterLab, VS Code's server)
 * this gives null and the caller relays through an exec. The address is Docker's own for this
 * very container, never the client's.
 */
async function connectDirect(target: GatewayTarget, port: number): Promise<Duplex | null> {
  let addresses: string[];
  try {
    const c = await target.host.runtime.inspect(target.container);
    if (!c.running) return null;
    addresses = c.addresses;
  } catch {
    return null;
  }
  for (const address of addresses) {
    try {
      return await target.host.connectTcp(address, port, DIRECT_CONNECT_TIMEOUT_MS);
    } catch {
      // Nothing listens there: try the next address, then the relay.
    }
  }
  return null;
}

const ended = (s: Readable): Promise<void> => (s.readableEnded ? Promise.resolve() : new Promise((r) => s.once('end', r).once('close', r)));

export type { Connection };
