import { cleanupJob } from './cleanup.js';
import { expiryJob } from './expiry.js';
import { quotaJob } from './quota.js';
import { idleJob } from './idle.js';
import { queueJob } from './queue.js';
import { unmanagedJob } from './unmanaged.js';
import type { Job } from './job.js';
import { reconcileJob } from './reconcile-job.js';
import { telemetryJob } from './telemetry.js';
import { slurmJob } from './slurm.js';

/** Every scheduled job; its schedule is `schedule.<name>` in the config. */
export const jobs: Job[] = [reconcileJob, expiryJob, cleanupJob, quotaJob, idleJob, queueJob, unmanagedJob, telemetryJob, slurmJob];

export const jobNamed = (name: string): Job | undefined => jobs.find((j) => j.name === name);
