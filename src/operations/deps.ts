import type { Config } from '../config/schema.js';
import type { PrismaClient } from '../db/client.js';
import type { HostPool } from '../hosts/host-pool.js';
import type { Logger } from '../log.js';
import type { Reply } from '../core/reply.js';
import type { RateLimiter } from '../core/policy/rate-limit.js';
import type { GatewayInfo } from '../gateway/service.js';
import type { SlurmCluster } from '../hosts/slurm.js';

/** What the command handlers work with. */
export interface OpsDeps {
  config: Config;
  /** This installation's id (database-kept; label gpubot.instance on every container it starts). */
  instanceId: string;
  db: PrismaClient;
  /** A second client (its own SQLite connection) for the GPU transactions: allocate and release. */
  txDb: PrismaClient;
  pool: HostPool;
  log: Logger;
  now: () => Date;
  /** Container names being launched or started by this process right now; reconciliation leaves them alone. */
  launching: Set<string>;
  /** Allocation ids taken by this process and not yet tied to a container row. */
  pendingAllocations: Set<number>;
  /** "host:handle" whose user directory this process has made or seen: an SSH exec saved per run. */
  userDirs: Set<string>;
  /** Tells a user something privately (DM), through whichever chats they use. */
  notify: (userId: number, message: Reply) => Promise<void>;
  /** True once shutdown began: long job rounds stop between items. */
  stopping: () => boolean;
  /** Per-user token buckets (config rateLimits) for the commands that hand out or add something. */
  limiters: { linkCodes: RateLimiter; keyAdditions: RateLimiter };
  /** Test-only fault injection (GPUBOT_FAILPOINT): kill the process at a named point. */
  failpoint?: string;
  /** The SSH gateway, when it runs in this process. */
  gateway?: GatewayInfo;
  /** The Slurm cluster (config slurm:), when there is one. */
  slurm?: SlurmCluster;
}

/**
 * How old a host probe may be for an allocation decision. Only inventory and processes gpubot did
 * not start come from it; who holds what is read from the database in the allocating transaction.
 */
export const SNAPSHOT_MAX_AGE_MS = 5_000;
