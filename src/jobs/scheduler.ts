import { Cron } from 'croner';
import type { OpsDeps } from '../operations/deps.js';
import { errorMessage } from '../util/errors.js';
import { jobs } from './index.js';

/** Runs every job on its cron schedule; a round still running when the next is due is skipped. */
export function startScheduler(deps: OpsDeps): { stop(): void } {
  const schedule = deps.config.schedule as Record<string, string>;
  const timers = jobs.map(
    (job) =>
      new Cron(schedule[job.name] ?? '* * * * *', { protect: true, name: job.name }, async () => {
        const started = performance.now();
        try {
          const summary = await job.run(deps);
          deps.log.info({ job: job.name, ms: Math.round(performance.now() - started), summary }, 'job done');
        } catch (err) {
          deps.log.error({ job: job.name, err: errorMessage(err) }, 'job failed');
        }
      }),
  );
  return { stop: () => timers.forEach((t) => t.stop()) };
}
