import type { Config } from './config/schema.js';
import { Engine, type Handlers } from './core/engine.js';
import type { Actor } from './core/requests.js';
import { HostPool } from './hosts/host-pool.js';
import type { Logger } from './log.js';

export interface AppOptions {
  config: Config;
  log: Logger;
  /** Environment for the local host's commands (nvidia-smi on PATH). */
  localEnv?: NodeJS.ProcessEnv;
  handlers?: Handlers;
}

/** The bot without any chat: hosts, engine. Adapters wrap this. */
export class App {
  readonly pool: HostPool;
  readonly engine: Engine;

  constructor(readonly options: AppOptions) {
    const { config, log } = options;
    this.pool = new HostPool(config, log, config.timeouts.hostMs, options.localEnv);
    this.engine = new Engine({
      cluster: this.pool,
      handlers: options.handlers,
      onCommand: (e) => log.info({ user: e.actor.handle, command: e.command, ok: e.ok, ms: Math.round(e.ms), err: e.error }, 'command'),
    });
  }

  async actor(handle: string): Promise<Actor> {
    return { handle, isAdmin: this.options.config.admins.includes(handle) };
  }

  async close(): Promise<void> {
    this.pool.close();
  }
}
