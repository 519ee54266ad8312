import Docker from 'dockerode';
import type { Config, HostConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { DockerRuntime } from './docker-runtime.js';
import type { GpuHost, HostConnectionState } from './gpu-host.js';
import type { RuntimeTimeouts } from './runtime.js';
import { SshConnection } from './ssh-connection.js';
import { SshDockerAgent } from './ssh-docker-agent.js';

/** A GPU host reached over SSH; Docker API calls ride channels of the same connection. */
export class RemoteHost implements GpuHost {
  readonly docker: Docker;
  readonly runtime: DockerRuntime;
  readonly ssh: SshConnection;

  constructor(
    readonly config: HostConfig & { ssh: NonNullable<HostConfig['ssh']> },
    gpubotConfig: Config,
    timeouts: RuntimeTimeouts,
    log: Logger,
  ) {
    this.ssh = new SshConnection(config.name, config.ssh, log);
    const agent = new SshDockerAgent(this.ssh, config.dockerSocket, config.ssh.connectTimeoutMs);
    // host/port only fill the HTTP request line; the agent decides where bytes go.
    this.docker = new Docker({ protocol: 'http', host: 'docker', port: 80, agent } as Docker.DockerOptions);
    this.runtime = new DockerRuntime(config.name, this.docker, gpubotConfig, timeouts);
    this.ssh.start();
  }

  get name(): string {
    return this.config.name;
  }

  connection(): HostConnectionState {
    return { state: this.ssh.state, lastError: this.ssh.lastError };
  }

  run(argv: string[], timeoutMs: number) {
    return this.ssh.exec(argv, timeoutMs);
  }

  close(): void {
    this.ssh.close();
  }
}
