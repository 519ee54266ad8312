import type { Config } from './config/schema.js';
import { Engine, type Handlers } from './core/engine.js';
import type { Actor } from './core/requests.js';
import { openDatabase, type PrismaClient } from './db/client.js';
import { InventoryRecorder, syncHosts } from './db/hosts.js';
import { migrate } from './db/migrate.js';
import { ensureUser, type Platform } from './db/users.js';
import { HostPool } from './hosts/host-pool.js';
import type { Logger } from './log.js';
import { errorMessage } from './util/errors.js';

export interface AppOptions {
  config: Config;
  log: Logger;
  databaseUrl: string;
  /** Environment for the local host's commands (nvidia-smi on PATH). */
  localEnv?: NodeJS.ProcessEnv;
  handlers?: Handlers;
}

/** The bot without any chat: database, hosts, engine. Adapters wrap this. */
export class App {
  readonly engine: Engine;
  private readonly inventory: InventoryRecorder;

  private constructor(
    readonly options: AppOptions,
    readonly db: PrismaClient,
    readonly pool: HostPool,
  ) {
    const { log } = options;
    this.inventory = new InventoryRecorder(db);
    const cluster = {
      hostNames: () => pool.hostNames(),
      snapshot: async (hosts?: string[]) => {
        const snapshots = await pool.snapshot(hosts);
        this.inventory.record(snapshots).catch((err) => log.warn({ err: errorMessage(err) }, 'could not record GPU inventory'));
        return snapshots;
      },
    };
    this.engine = new Engine({
      cluster,
      handlers: options.handlers,
      onCommand: (e) => log.info({ user: e.actor.handle, command: e.command, ok: e.ok, ms: Math.round(e.ms), err: e.error }, 'command'),
    });
  }

  /** Applies pending migrations, then connects to every host (in the background). */
  static async create(options: AppOptions): Promise<App> {
    const { config, log, databaseUrl } = options;
    const { applied } = await migrate(databaseUrl, { log: (msg) => log.info(msg) });
    if (applied.length) log.info({ applied }, 'database migrated');
    const db = await openDatabase(databaseUrl);
    await syncHosts(db, config.hosts.map((h) => h.name));
    const pool = new HostPool(config, log, config.timeouts.hostMs, options.localEnv);
    return new App(options, db, pool);
  }

  /** The gpubot user behind a chat identity; admins by handle or chat id in the config. */
  async actor(externalId: string, platform: Platform = 'console', displayName = externalId): Promise<Actor> {
    const user = await ensureUser(this.db, platform, externalId, displayName);
    const admins = this.options.config.admins;
    return { handle: user.handle, isAdmin: admins.includes(user.handle) || admins.includes(externalId) };
  }

  async close(): Promise<void> {
    this.pool.close();
    await this.db.$disconnect();
  }
}
