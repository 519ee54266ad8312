import { Cron } from 'croner';
import type { OpsDeps } from '../operations/deps.js';
import { withLogContext } from '../log-context.js';
import { errorMessage } from '../util/errors.js';
import { jobs } from './index.js';

/**
 * Runs every job on its cron schedule; a round still running when the next is due is skipped.
 * `track` sees each round (shutdown waits for them); their log lines carry `job`.
 */
export function startScheduler(deps: OpsDeps, track: (round: Promise<void>) => void = () => {}): { stop(): void } {
  const schedule = deps.config.schedule as Record<string, string>;
  const timers = jobs.map(
    (job) =>
      new Cron(schedule[job.name] ?? '* * * * *', { protect: true, name: job.name }, async () => {
        const round = withLogContext({ job: job.name }, async () => {
          const started = performance.now();
          try {
            const summary = await job.run(deps);
            deps.log.info({ ms: Math.round(performance.now() - started), summary }, 'job done');
          } catch (err) {
            deps.log.error({ err: errorMessage(err) }, 'job failed');
          }
        });
        track(round);
        await round;
      }),
  );
  return { stop: () => timers.forEach((t) => t.stop()) };
}
