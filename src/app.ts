import type { Config } from './config/schema.js';
import type { ClusterView } from './core/cluster.js';
import { CommandMetrics } from './http/metrics.js';
import { Engine, type Handlers } from './core/engine.js';
import type { Actor } from './core/requests.js';
import { isError, refuse, type ProgressSink, type Reply } from './core/reply.js';
import type { AccessPolicy, ChatIdentity, ChatPort, Choice, ChoiceSource } from './core/port.js';
import { defaultHours } from './core/policy/quota.js';
import { choicesFor } from './operations/choices.js';
import { openDatabase, type PrismaClient } from './db/client.js';
import { InventoryRecorder, syncHosts } from './db/hosts.js';
import { migrate } from './db/migrate.js';
import { installationId } from './db/installation.js';
import { SchedulerLease, type LeaseTiming } from './db/scheduler-lease.js';
import { audit } from './db/audit.js';
import { chatIdKeys, ensureUser, type Platform } from './db/users.js';
import { RateLimiter, slowDown } from './core/policy/rate-limit.js';
import { HostPool } from './hosts/host-pool.js';
import type { Logger } from './log.js';
import { withLogContext } from './log-context.js';
import { errorMessage } from './util/errors.js';
import { reconcile, type ReconcileReport } from './jobs/reconcile.js';
import { startScheduler } from './jobs/scheduler.js';
import { snapshotWithHolders } from './operations/cluster-state.js';
import type { OpsDeps } from './operations/deps.js';
import { createHandlers } from './operations/handlers.js';
import { exitWatcher } from './operations/exits.js';
import { recordMinutes } from './db/telemetry.js';
import { GatewayService } from './gateway/service.js';
import { SlurmCluster } from './hosts/slurm.js';
import { statusSection } from './operations/slurm.js';

export interface AppOptions {
  config: Config;
  log: Logger;
  databaseUrl: string;
  /** Environment for the local host's commands (nvidia-smi on PATH). */
  localEnv?: NodeJS.ProcessEnv;
  /** Replaces the built-in command handlers (tests). */
  handlers?: Handlers;
  now?: () => Date;
  /** Reconcile hosts and database once at start (default); the scheduler does it after that. */
  reconcileOnStart?: boolean;
  /**
   * Act on container exits from the live feed and keep GPU minute means (default: like
   * reconcileOnStart). Only the long-running bot does; a one-shot `gpubot chat` only reads.
   */
  watchHosts?: boolean;
  failpoint?: string;
  /** Scheduler lease timing (tests shorten it). */
  leaseTiming?: LeaseTiming;
}

/** The bot without any chat: database, hosts, engine. Adapters see it only as a ChatPort. */
export class App implements ChatPort {
  readonly engine: Engine;
  readonly metrics = new CommandMetrics();
  /** Status snapshots with holders from the database: what `status` and /metrics show. */
  readonly cluster: ClusterView;
  readonly ops: OpsDeps;
  private readonly inventory: InventoryRecorder;
  private scheduler: { stop(): void } | undefined;
  /** Only the holder runs the scheduled jobs (and the reconciliation at start). */
  readonly lease: SchedulerLease;
  private reconciling: Promise<unknown> = Promise.resolve();
  private inventoryWrite: Promise<unknown> = Promise.resolve();
  /** False once shutdown began: new commands are turned away, those in flight finish. */
  private accepting = true;
  private readonly inFlight = new Map<Promise<unknown>, 'command' | 'job'>();
  private exits: { close(): void } | undefined;
  /** Commands per user (config rateLimits.commands); link codes and key additions live in ops. */
  readonly commandLimiter: RateLimiter;

  private constructor(
    readonly options: AppOptions,
    readonly db: PrismaClient,
    private readonly txDb: PrismaClient,
    readonly pool: HostPool,
    readonly instanceId: string,
  ) {
    const { log } = options;
    const clock = () => (options.now ?? (() => new Date()))().getTime();
    const limits = options.config.rateLimits;
    this.commandLimiter = new RateLimiter(limits.commands, clock);
    this.lease = new SchedulerLease(db, options.leaseTiming);
    this.inventory = new InventoryRecorder(db);
    this.ops = {
      config: options.config,
      instanceId,
      db,
      txDb,
      pool,
      log,
      now: options.now ?? (() => new Date()),
      launching: new Set(),
      pendingAllocations: new Set(),
      userDirs: new Set(),
      failpoint: options.failpoint,
      limiters: { linkCodes: new RateLimiter(limits.linkCodes, clock), keyAdditions: new RateLimiter(limits.keyAdditions, clock) },
      notify: (userId, message) => this.notifyUser(userId, message),
      stopping: () => !this.accepting,
      slurm: options.config.slurm ? new SlurmCluster(options.config.slurm, log, options.config.timeouts.hostMs * 3) : undefined,
    };
    if (options.watchHosts ?? options.reconcileOnStart !== false) {
      const exits = exitWatcher(this.ops);
      this.exits = exits;
      pool.setHooks({
        onEvent: (e) => exits.onEvent(e),
        onResync: (host, list) => exits.onResync(host, list),
        onMinute: (rows) => void recordMinutes(db, rows).catch((err) => log.warn({ err: errorMessage(err) }, 'could not record GPU minute means')),
      });
    }
    const cluster: ClusterView = {
      hostNames: () => pool.hostNames(),
      snapshot: async (hosts?: string[]) => {
        const snapshots = await snapshotWithHolders({ db, pool, instanceId }, hosts);
        // Not awaited by the command; close() waits for it (a one-shot `chat` would cut it off).
        const write = this.inventory.record(snapshots).catch((err) => log.warn({ err: errorMessage(err) }, 'could not record GPU inventory'));
        this.inventoryWrite = Promise.all([this.inventoryWrite, write]);
        return snapshots;
      },
    };
    this.cluster = cluster;
    const slurm = this.ops.slurm;
    this.engine = new Engine({
      cluster,
      moreStatus: slurm && { names: [slurm.name], sections: async () => [await statusSection(this.ops, slurm)] },
      handlers: options.handlers ?? createHandlers(this.ops),
      around: (actor, request, work) => {
        if (!this.accepting) return Promise.resolve(refuse('unavailable', 'gpubot is restarting', 'Nothing was done; try again in a minute.'));
        const allowed = this.commandLimiter.take(`user:${actor.userId}`);
        if (!allowed.ok) {
          const { title, detail } = slowDown(allowed.retryInMs);
          log.info({ user: actor.handle, command: request.command }, 'rate limited');
          this.metrics.record(request.command, 'rate-limited', 0);
          audit(db, { actor: actor.handle, action: request.command, result: 'refused', detail: `${title}: rate limit rateLimits.commands` }).catch((err) =>
            log.warn({ err: errorMessage(err) }, 'could not write an audit event'),
          );
          return Promise.resolve(refuse('rate-limited', title, detail));
        }
        const host = 'host' in request && typeof request.host === 'string' ? request.host : undefined;
        return this.track(
          withLogContext({ user: actor.handle, command: request.command, host }, () => {
            log.debug('command received');
            return work();
          }),
        );
      },
      identify: (who) => this.actor(who.id, who.platform, who.name ?? who.id),
      onUnexpected: (err, who) => log.error({ platform: who.platform, user: who.id, err: errorMessage(err) }, 'command failed'),
      onCommand: (e) => {
        // The reply says it in a user's words; the log keeps the error as it was.
        log.info(
          {
            user: e.actor.handle,
            command: e.command,
            ok: e.code === undefined,
            code: e.code,
            ms: Math.round(e.ms),
            err: e.code === undefined ? undefined : e.error !== undefined ? errorMessage(e.error) : e.reply.title,
          },
          'command',
        );
        this.metrics.record(e.command, e.code, e.ms);
        // Every refusal is audited here, whichever layer refused; state changes are audited where they happen.
        if (e.code !== undefined) {
          const detail = [`[${e.code}] ${e.reply.title}`, ...e.reply.blocks.flatMap((b) => (b.type === 'text' ? [b.text] : []))].join(': ');
          audit(db, { actor: e.actor.handle, action: e.command, target: e.target, result: isError(e.code) ? 'error' : 'refused', detail }).catch((err) =>
            log.warn({ err: errorMessage(err) }, 'could not write an audit event'),
          );
        }
      },
    });
  }

  /** Applies pending migrations, then connects to every host (in the background). */
  static async create(options: AppOptions): Promise<App> {
    const { config, log, databaseUrl } = options;
    const { applied } = await migrate(databaseUrl, { log: (msg) => log.info(msg) });
    if (applied.length) log.info({ applied }, 'database migrated');
    const db = await openDatabase(databaseUrl);
    const txDb = await openDatabase(databaseUrl);
    await syncHosts(
      db,
      config.hosts.map((h) => h.name),
    );
    const instanceId = await installationId(db);
    const pool = new HostPool(config, log, config.timeouts.hostMs, options.localEnv);
    const app = new App(options, db, txDb, pool, instanceId);
    if (options.reconcileOnStart !== false) app.reconcileInBackground();
    return app;
  }

  /** At start, by the lease holder only: another process running the jobs reconciles already. */
  private reconcileInBackground(): void {
    this.reconciling = this.lease
      .renew()
      .then(async (held): Promise<unknown> => (held ? this.reconcile() : this.options.log.info('another process holds the scheduler lease; no reconciliation at start')))
      .catch((err) => this.options.log.warn({ err: errorMessage(err) }, 'reconciliation failed'));
  }

  /** The scheduled jobs (reconcile, expiry, ...) on their cron schedules while this process holds the lease, until close. */
  startJobs(): void {
    this.scheduler ??= startScheduler(this.ops, this.lease, (run) => this.track(run, 'job'));
  }

  private gatewayService: GatewayService | undefined;

  /** The SSH gateway (config `gateway`), listening until close; undefined when not configured. */
  async startGateway(): Promise<GatewayService | undefined> {
    const settings = this.options.config.gateway;
    if (!settings || this.gatewayService) return this.gatewayService;
    const gateway = new GatewayService(this.ops, settings);
    await gateway.start();
    this.gatewayService = gateway;
    this.ops.gateway = gateway;
    return gateway;
  }

  private track<T>(work: Promise<T>, kind: 'command' | 'job' = 'command'): Promise<T> {
    this.inFlight.set(work, kind);
    const done = () => this.inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  /** Commands and job rounds running now. */
  get busy(): { commands: number; jobs: number } {
    const kinds = [...this.inFlight.values()];
    return { commands: kinds.filter((k) => k === 'command').length, jobs: kinds.filter((k) => k === 'job').length };
  }

  /**
   * The first step of a graceful shutdown: new commands get "gpubot is restarting", no job round
   * starts, and this waits (at most `timeoutMs`) for the commands and rounds in flight.
   * Returns how many were still running when it gave up (0: all finished).
   */
  async drain(timeoutMs = 30_000): Promise<number> {
    this.accepting = false;
    this.scheduler?.stop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight.keys()]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    return this.inFlight.size;
  }

  async reconcile(): Promise<ReconcileReport> {
    await this.pool.settled();
    return reconcile(this.ops);
  }

  /**
   * The gpubot user behind a chat identity; admins by handle or by chat id in the config
   * ("slack:U024BE7LH", "discord:8035...", or the bare id), through any identity linked to the user.
   */
  async actor(externalId: string, platform: Platform = 'console', displayName: string | (() => Promise<string>) = externalId): Promise<Actor> {
    const { admins, quotas } = this.options.config;
    const reserved = new Set([...admins, ...Object.keys(quotas.users)]);
    const user = await ensureUser(this.db, platform, externalId, displayName, reserved);
    const identities = await this.db.chatIdentity.findMany({ where: { userId: user.id } });
    const keys = [user.handle, ...identities.flatMap((i) => chatIdKeys(i.platform, i.externalId))];
    return { userId: user.id, handle: user.handle, isAdmin: keys.some((k) => admins.includes(k)) };
  }

  /** ChatPort: who may use the bot from each chat (config `discord:` and `slack:`). */
  accessPolicy(): AccessPolicy {
    const { discord, slack } = this.options.config;
    return { discord, slack };
  }

  /** ChatPort: whether this person already is a gpubot user (never creates one). */
  async knows(who: ChatIdentity): Promise<boolean> {
    return (await this.db.chatIdentity.count({ where: { platform: who.platform, externalId: who.id } })) > 0;
  }

  /** ChatPort: a refusal at the door (foreign server, DM, guest, missing role): audited, nothing else. */
  refusedAtTheDoor(who: ChatIdentity, reason: string): void {
    const actor = `${who.platform}:${who.id}`;
    this.options.log.info({ actor, reason }, 'refused at the door');
    audit(this.db, { actor, action: 'access', result: 'refused', detail: reason.slice(0, 500) }).catch((err) =>
      this.options.log.warn({ err: errorMessage(err) }, 'could not write an audit event'),
    );
  }

  /** ChatPort: a chat user's input, answered; never throws. */
  handle(who: ChatIdentity, input: string | string[], progress?: ProgressSink): Promise<Reply> {
    return this.engine.handleFrom(who, input, progress);
  }

  /** ChatPort: values for autocomplete and forms. */
  async choices(source: ChoiceSource, who?: ChatIdentity, budgetMs = 1500): Promise<Choice[]> {
    // Only whose containers depends on who asks.
    const actor = who && source === 'container' ? await this.actor(who.id, who.platform, who.name ?? who.id) : undefined;
    return choicesFor(this.ops, source, actor, budgetMs);
  }

  /** ChatPort: the launch form's defaults. */
  launchDefaults(): { image: string; hours: number } {
    const { images, quotas } = this.options.config;
    return { image: images.default, hours: defaultHours(quotas.default) };
  }

  private readonly notifiers = new Map<Platform, (externalId: string, reply: Reply) => Promise<void>>();

  /** An adapter that can reach people privately (DMs) registers here. */
  registerNotifier(platform: Platform, send: (externalId: string, reply: Reply) => Promise<void>): void {
    this.notifiers.set(platform, send);
  }

  /** Tells one person something through every chat they use that can reach them. */
  async notifyUser(userId: number, message: Reply): Promise<void> {
    const identities = await this.db.chatIdentity.findMany({ where: { userId } });
    await Promise.all(
      identities.map(async (i) => {
        const send = this.notifiers.get(i.platform as Platform);
        if (!send) return;
        try {
          await send(i.externalId, message);
        } catch (err) {
          this.options.log.warn({ user: userId, platform: i.platform, err: errorMessage(err) }, 'could not notify');
        }
      }),
    );
  }

  async close(): Promise<void> {
    this.scheduler?.stop();
    this.exits?.close();
    await this.gatewayService?.stop();
    await this.reconciling;
    await this.inventoryWrite;
    await this.lease.release().catch(() => {});
    this.pool.close();
    this.ops.slurm?.close();
    await Promise.all([this.db.$disconnect(), this.txDb.$disconnect()]);
  }
}
