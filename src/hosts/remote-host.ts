import Docker from 'dockerode';
import type { Config, HostConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { DockerRuntime } from './docker-runtime.js';
import type { CommandStream, GpuHost, HostConnectionState } from './gpu-host.js';
import type { RuntimeTimeouts } from './runtime.js';
import type { SFTPWrapper } from 'ssh2';
import { HostSftpPool, type HostSftpJail } from './host-sftp.js';
import { SshConnection } from './ssh-connection.js';
import { SshDockerAgent } from './ssh-docker-agent.js';

/** A file connection with no file session left is closed after this long. */
const FILE_CONNECTION_LINGER_MS = 30_000;
/** How long a shutdown waits for the jailed SFTP servers still running to be killed. */
const FILE_KILL_TIMEOUT_MS = 1_400;

/** A GPU host reached over SSH; Docker API calls ride channels of the same connection. */
export class RemoteHost implements GpuHost {
  readonly docker: Docker;
  readonly runtime: DockerRuntime;
  readonly ssh: SshConnection;

  constructor(
    readonly config: HostConfig & { ssh: NonNullable<HostConfig['ssh']> },
    gpubotConfig: Config,
    timeouts: RuntimeTimeouts,
    private readonly log: Logger,
    private readonly downAfterMs = 3000,
  ) {
    this.ssh = new SshConnection(config.name, config.ssh, log, downAfterMs);
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
    return { state: this.ssh.state, lastError: this.ssh.lastError, down: this.ssh.isDown(), failingSince: this.ssh.failingSince, neverUp: !this.ssh.everUp };
  }

  run(argv: string[], timeoutMs: number) {
    return this.ssh.exec(argv, timeoutMs);
  }

  runStream(argv: string[], openTimeoutMs: number) {
    return this.ssh.execStream(argv, openTimeoutMs);
  }

  async stream(argv: string[], timeoutMs: number): Promise<CommandStream> {
    const channel = await this.ssh.openExec(argv, timeoutMs);
    const ended = new Promise<void>((resolve) => {
      channel.once('close', () => resolve());
      channel.once('error', () => resolve());
    });
    // stderr is not read: drain it so a chatty command never stalls on a full window.
    channel.stderr.resume();
    // sshd keeps a channel open until its command exits: a hung command is signalled, not waited for.
    const close = () => {
      try {
        channel.signal('KILL');
      } catch {
        // the channel is already gone
      }
      channel.close();
    };
    return { stdout: channel, close, ended };
  }

  connectTcp(address: string, port: number, timeoutMs: number) {
    return this.ssh.openTcp(address, port, timeoutMs);
  }

  async waitUp(timeoutMs: number): Promise<boolean> {
    try {
      await this.ssh.ready(timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  private files: { ssh: SshConnection; pool: HostSftpPool } | undefined;
  private filesIdle: NodeJS.Timeout | undefined;

  /**
   * SFTP onto one user's directory only (see host-sftp.ts). The jailed servers run on a second SSH
   * connection, opened while file sessions are open, so they never take the sessions the kept
   * connection's commands and monitor need. Throws TooManyFileSessions when that one is full.
   */
  sftp(jail: HostSftpJail, timeoutMs: number): { sftp: Promise<SFTPWrapper>; release: () => void } {
    clearTimeout(this.filesIdle);
    if (!this.files) {
      const ssh = new SshConnection(this.config.name, this.config.ssh, this.log, this.downAfterMs);
      ssh.start();
      this.files = { ssh, pool: new HostSftpPool(ssh) };
    }
    const files = this.files;
    const taken = files.pool.take(jail, timeoutMs);
    return {
      sftp: taken.sftp,
      release: () => {
        taken.release();
        if (files.pool.size > 0 || this.files !== files) return;
        clearTimeout(this.filesIdle);
        this.filesIdle = setTimeout(() => {
          if (files.pool.size > 0 || this.files !== files) return;
          this.files = undefined;
          files.ssh.close();
        }, FILE_CONNECTION_LINGER_MS).unref();
      },
    };
  }

  close(): void {
    clearTimeout(this.filesIdle);
    const files = this.files;
    this.files = undefined;
    this.ssh.close();
    if (!files) return;
    // The file connection stays until its servers are killed (bounded), so none outlives gpubot.
    if (!files.pool.running) files.ssh.close();
    else void files.pool.endAll(FILE_KILL_TIMEOUT_MS).finally(() => files.ssh.close());
  }
}
