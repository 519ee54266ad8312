import { execFile } from 'node:child_process';
import Docker from 'dockerode';
import type { Config, HostConfig } from '../config/schema.js';
import { DockerRuntime } from './docker-runtime.js';
import type { GpuHost, HostConnectionState } from './gpu-host.js';
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

  close(): void {}
}
