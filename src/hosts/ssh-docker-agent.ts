import { Agent, type AgentOptions } from 'node:http';
import type { Duplex } from 'node:stream';
import { inspect } from 'node:util';
import type { SshConnection } from './ssh-connection.js';

/**
 * Serves HTTP requests to a remote Docker socket over the host's kept-open SSH connection, one
 * direct-streamlocal channel per pooled socket, so a Docker call costs a round trip instead of
 * a new SSH handshake (dockerode's own `protocol: 'ssh'` connects anew for every request).
 */
export class SshDockerAgent extends Agent {
  constructor(
    private readonly connection: SshConnection,
    private readonly socketPath: string,
    private readonly openTimeoutMs = 5000,
    options: AgentOptions = {},
  ) {
    super({ keepAlive: true, maxSockets: 32, maxFreeSockets: 8, ...options });
    // Channels of a lost connection never say so themselves: drop them so the pool cannot hand
    // a dead one to the next request.
    connection.onStateChange((state) => {
      if (state === 'up') return;
      for (const channel of this.channels) channel.destroy();
      this.channels.clear();
    });
  }

  private readonly channels = new Set<Duplex>();

  override createConnection(_options: unknown, callback?: (err: Error | null, socket: Duplex) => void): Duplex | undefined {
    this.connection.openStreamLocal(this.socketPath, this.openTimeoutMs).then(
      (channel) => {
        this.channels.add(channel);
        channel.once('close', () => this.channels.delete(channel));
        callback?.(null, asSocket(channel));
      },
      (err: Error) => callback?.(err, null as never),
    );
    return undefined;
  }

  // docker-modem inspects its options on every request; walking the ssh2 objects costs ~0.7 s.
  [inspect.custom](): string {
    return `SshDockerAgent(${this.connection.name}:${this.socketPath})`;
  }
}

/** ssh2 channels are streams but not sockets: give http the socket methods it calls. */
function asSocket(channel: Duplex): Duplex {
  const socket = channel as Duplex & Record<string, unknown>;
  for (const method of ['setKeepAlive', 'setNoDelay', 'setTimeout', 'ref', 'unref']) {
    if (typeof socket[method] !== 'function') socket[method] = () => socket;
  }
  return socket;
}
