import { pruneMinutes } from '../db/telemetry.js';
import type { Job } from './job.js';

const DAY_MS = 86_400_000;

/** Drops GPU minute means older than telemetry.retentionDays. */
export const telemetryJob: Job = {
  name: 'telemetry',
  description: 'Prune GPU minute means older than telemetry.retentionDays.',
  async run(deps) {
    const before = new Date(deps.now().getTime() - deps.config.telemetry.retentionDays * DAY_MS);
    const count = await pruneMinutes(deps.db, before);
    return `${count} GPU minute mean(s) older than ${deps.config.telemetry.retentionDays} days pruned`;
  },
};
