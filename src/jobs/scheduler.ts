import { Cron } from 'croner';
import type { OpsDeps } from '../operations/deps.js';
import { withLogContext } from '../log-context.js';
import { errorMessage } from '../util/errors.js';
import { jobs } from './index.js';
import type { SchedulerLease } from '../db/scheduler-lease.js';

/**
 * Runs every job on its cron schedule; a round still running when the next is due is skipped.
 * Only while this process holds the scheduler lease: with two bot processes on one database, one
 * runs the jobs and the other serves commands only, taking over once the lease lapses.
 * `track` sees each round (shutdown waits for them); their log lines carry `job`.
 */
export function startScheduler(deps: OpsDeps, lease: SchedulerLease, track: (round: Promise<void>) => void = () => {}): { stop(): void } {
  const schedule = deps.config.schedule as Record<string, string>;
  let holding = false;
  const heartbeat = async () => {
    try {
      const now = await lease.renew();
      if (now !== holding)
        deps.log.info({ holder: lease.holder }, now ? 'took the scheduler lease: this process runs the jobs' : 'lost the scheduler lease: another process runs the jobs');
      holding = now;
    } catch (err) {
      deps.log.warn({ err: errorMessage(err) }, 'could not renew the scheduler lease');
    }
  };
  const beat = setInterval(() => void heartbeat(), lease.timing.heartbeatMs);
  void heartbeat();
  const timers = jobs.map(
    (job) =>
      new Cron(schedule[job.name] ?? '* * * * *', { protect: true }, async () => {
        if (!lease.held()) return;
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
  return {
    stop: () => {
      clearInterval(beat);
      timers.forEach((t) => t.stop());
    },
  };
}
