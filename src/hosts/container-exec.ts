import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { DockerRuntime } from './docker-runtime.js';
import type { GpuHost } from './gpu-host.js';

export interface ExecOptions {
  /** The argv to run; the wrapper below runs it with exec so its PID is the one we signal. */
  argv: string[];
  tty: boolean;
  env?: string[];
  cols?: number;
  rows?: number;
}

/** A process inside a container, started with Docker exec over the host's kept connection. */
export interface ContainerProcess {
  /** Bytes to the process (stdin). end() closes its stdin. */
  stdin: NodeJS.WritableStream;
  /** Its output; with a TTY, stdout and stderr are one stream. */
  stdout: Readable;
  stderr: Readable;
  resize(cols: number, rows: number): Promise<void>;
  /** Sends a signal (TERM, INT, HUP, KILL, ...) to the process, from inside the container. */
  signal(name: string): Promise<void>;
  /** Resolves with the exit code once the process is gone (null if Docker cannot say). */
  exited: Promise<number | null>;
  /** Stops the process (HUP, then KILL) and drops the stream. */
  kill(): void;
}

// Printed by the wrapper before it execs: "<RS>pid<RS>" on fd 2, read back and stripped.
const RS = '\x1e';
const WRAPPER = `printf '\\036%s\\036' "$$" >&2; exec "$@"`;
const SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);

/** The user's login shell in the container: bash if the image has it, else sh. */
export const LOGIN_SHELL = ['/bin/sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi'];

/** A command line as ssh sends it, run by the container's shell (as sshd would with the user's shell). */
export const shellCommand = (command: string): string[] => ['/bin/sh', '-c', command];

/**
 * A byte relay to a TCP port on the container's own loopback: busybox/netcat `nc` if the image has
 * it, else python3. The port is a validated number, passed as an argument, never spliced in.
 */
export const portRelay = (port: number): string[] => [
  '/bin/sh',
  '-c',
  `if command -v nc >/dev/null 2>&1; then exec nc 127.0.0.1 "$1"; fi
exec python3 -c 'import socket,sys,threading
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])))
def up():
    while True:
        d=sys.stdin.buffer.read1(65536)
        if not d: break
        s.sendall(d)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up,daemon=True).start()
while True:
    d=s.recv(65536)
    if not d: break
    sys.stdout.buffer.write(d); sys.stdout.buffer.flush()' "$1"`,
  'relay',
  String(port),
];

/** Docker's own API: an interactive exec (hijacked stream, TTY, resize) is more than the runtime's one-shot exec. */
function dockerOf(host: GpuHost) {
  if (!(host.runtime instanceof DockerRuntime)) throw new Error(`${host.name}: interactive sessions need a Docker host`);
  return host.runtime.docker;
}

export async function execInContainer(host: GpuHost, container: string, options: ExecOptions): Promise<ContainerProcess> {
  const docker = dockerOf(host);
  const c = docker.getContainer(container);
  const exec = await c.exec({
    Cmd: ['/bin/sh', '-c', WRAPPER, 'gpubot-exec', ...options.argv],
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: options.tty,
    Env: options.env ?? [],
    ...(options.tty && options.cols && options.rows ? { ConsoleSize: [options.rows, options.cols] } : {}),
  } as never);
  const stream = (await exec.start({ hijack: true, stdin: true, Tty: options.tty } as never)) as unknown as Duplex;
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let pid: number | undefined;
  let pidWaiters: ((pid: number | undefined) => void)[] = [];
  // Strips the PID marker off the front of the stream that carries fd 2.
  let head = '';
  let headDone = false;
  const markerFilter = (into: PassThrough) => (chunk: Buffer) => {
    if (headDone) return void into.write(chunk);
    head += chunk.toString('latin1');
    const m = new RegExp(`^${RS}(\\d+)${RS}`).exec(head);
    if (m) {
      pid = Number(m[1]);
      headDone = true;
      for (const w of pidWaiters) w(pid);
      pidWaiters = [];
      const rest = Buffer.from(head.slice(m[0].length), 'latin1');
      head = '';
      if (rest.length) into.write(rest);
    } else if (head.length > 32 || (head.length > 0 && !head.startsWith(RS))) {
      headDone = true;
      into.write(Buffer.from(head, 'latin1'));
      head = '';
    }
  };
  if (options.tty) {
    stream.on('data', markerFilter(stdout));
  } else {
    const errFilter = markerFilter(stderr);
    const errSink = new PassThrough();
    errSink.on('data', errFilter);
    docker.modem.demuxStream(stream, stdout, errSink);
  }
  let resolveExit!: (code: number | null) => void;
  const exited = new Promise<number | null>((r) => (resolveExit = r));
  let ended = false;
  const finish = async () => {
    if (ended) return;
    ended = true;
    for (const w of pidWaiters) w(undefined);
    pidWaiters = [];
    // The stream ends a moment before Docker records the exit code.
    let code: number | null = null;
    for (let i = 0; i < 20; i++) {
      try {
        const info = await exec.inspect();
        if (!info.Running) {
          code = info.ExitCode ?? null;
          break;
        }
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    stdout.end();
    stderr.end();
    resolveExit(code);
  };
  stream.on('end', () => void finish());
  stream.on('close', () => void finish());
  stream.on('error', () => void finish());

  const pidNow = (): Promise<number | undefined> => (pid !== undefined || headDone || ended ? Promise.resolve(pid) : new Promise((r) => pidWaiters.push(r)));
  const signal = async (name: string, group = false): Promise<void> => {
    const sig = name.replace(/^SIG/, '').toUpperCase();
    if (!SIGNALS.has(sig)) return;
    const p = await pidNow();
    if (p === undefined || ended) return;
    const target = group ? `-${p}` : String(p);
    const k = await c.exec({
      Cmd: ['/bin/sh', '-c', 'kill -s "$1" -- "$2" 2>/dev/null || kill -s "$1" -- "$3"', 'kill', sig, target, String(p)],
      AttachStdout: true,
      AttachStderr: true,
    });
    const s = (await k.start({})) as unknown as Readable;
    s.resume();
    await new Promise((r) => s.once('end', r).once('close', r).once('error', r));
  };
  return {
    stdin: stream,
    stdout,
    stderr,
    exited,
    resize: async (cols, rows) => {
      if (options.tty && !ended) await exec.resize({ w: cols, h: rows } as never).catch(() => {});
    },
    signal: (name) => signal(name),
    kill: () => {
      if (ended) return;
      // A TTY shell leads its process group: hang the whole group up, as a closed terminal would.
      void signal('HUP', options.tty)
        .then(() => new Promise((r) => setTimeout(r, 2000)))
        .then(() => (ended ? undefined : signal('KILL', options.tty)))
        .catch(() => {})
        .finally(() => stream.destroy());
    },
  };
}
