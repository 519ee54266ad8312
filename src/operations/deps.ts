import type { Config } from '../config/schema.js';
import type { PrismaClient } from '../db/client.js';
import type { HostPool } from '../hosts/host-pool.js';
import type { Logger } from '../log.js';

/** What the command handlers work with. */
export interface OpsDeps {
  config: Config;
  db: PrismaClient;
  pool: HostPool;
  log: Logger;
  now: () => Date;
  /** Container names being launched by this process right now; reconciliation leaves them alone. */
  launching: Set<string>;
  /** Test-only fault injection (GPUBOT_FAILPOINT): kill the process at a named point. */
  failpoint?: string;
}

export const DOCKER_TIMEOUT_MS = 30_000;
