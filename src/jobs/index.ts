import { cleanupJob } from './cleanup.js';
import { expiryJob } from './expiry.js';
import type { Job } from './job.js';
import { reconcileJob } from './reconcile-job.js';

/** Every scheduled job; its schedule is `schedule.<name>` in the config. */
export const jobs: Job[] = [reconcileJob, expiryJob, cleanupJob];

export const jobNamed = (name: string): Job | undefined => jobs.find((j) => j.name === name);
