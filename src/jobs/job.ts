import type { OpsDeps } from '../operations/deps.js';

/** A scheduled job: idempotent, safe to run at any time, on its cron schedule or by an admin. */
export interface Job {
  name: string;
  description: string;
  /** Does one round of the job and says what it did, in a line. */
  run(deps: OpsDeps): Promise<string>;
}
