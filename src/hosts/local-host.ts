import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import Docker from 'dockerode';
import type { Config, HostConfig } from '../config/schema.js';
import { DockerRuntime } from './docker-runtime.js';
import { ConnectionRefused } from './errors.js';
import type { CommandStream, GpuHost, HostConnectionState, StreamedCommand } from './gpu-host.js';
import type { CommandOutput } from './nvidia-smi.js';
import type { RuntimeTimeouts } from './runtime.js';

/** This machine: its own Docker socket and its own nvidia-smi, behind the same interface. */
export class LocalHost implements GpuHost {
  readonly docker: Docker;
  readonly runtime: DockerRuntime;

  constructor(
    readonly config: HostConfig,
    gpubotConfig: Config,
    timeouts: RuntimeTimeouts,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.docker = new Docker({ socketPath: config.dockerSocket });
    this.runtime = new DockerRuntime(config.name, this.docker, gpubotConfig, timeouts);
  }

  get name(): string {
    return this.config.name;
  }

  connection(): HostConnectionState {
    return { state: 'up' };
  }

  run(argv: string[], timeoutMs: number): Promise<CommandOutput> {
    const [file, ...args] = argv;
    return new Promise((resolve) => {
      execFile(file!, args, { timeout: timeoutMs, env: this.env, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? ((err as NodeJS.ErrnoException).code === 'ENOENT' ? 127 : typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr: stderr || (err && code !== 0 ? err.message : '') });
      });
    });
  }

  async runStream(argv: string[]): Promise<StreamedCommand> {
    const [file, ...args] = argv;
    const child = spawn(file!, args, { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 65_536) stderr += d.toString('utf8');
    });
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
      child.on('error', (err) => resolve({ code: 127, stderr: err.message }));
      child.on('close', (code) => resolve({ code, stderr }));
    });
    return { stdout: child.stdout, done, close: () => void child.kill('SIGKILL') };
  }

  connectTcp(address: string, port: number, timeoutMs: number): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: address, port, timeout: timeoutMs });
      const fail = (reason: string) => {
        socket.destroy();
        reject(new ConnectionRefused(this.name, `${address}:${port}`, reason));
      };
      const onTimeout = () => fail('timed out');
      const onError = (err: Error) => fail(err.message);
      socket.once('timeout', onTimeout);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.setTimeout(0);
        socket.off('timeout', onTimeout);
        socket.off('error', onError);
        resolve(socket);
      });
    });
  }

  async stream(argv: string[]): Promise<CommandStream> {
    const [file, ...args] = argv;
    const child = spawn(file!, args, { env: this.env, stdio: ['ignore', 'pipe', 'ignore'] });
    const ended = new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => resolve());
    });
    return { stdout: child.stdout, close: () => void child.kill('SIGTERM'), ended };
  }

  async waitUp(): Promise<boolean> {
    return true;
  }

  close(): void {}
}
