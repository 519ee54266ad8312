import type { Request } from '../core/requests.js';
import { fairOrder, queueableRefusal } from '../operations/queue.js';
import { runContainer } from '../operations/run.js';
import { withLogContext } from '../log-context.js';
import type { Job } from './job.js';

/** Launches waiting runs that fit now, in fair order; each owner is told how it went. */
export const queueJob: Job = {
  name: 'queue',
  description: 'Launch queued runs as GPUs free up (less-used users first, then the oldest).',
  async run(deps) {
    let launched = 0;
    let failed = 0;
    for (const w of await fairOrder(deps)) {
      // Shutting down: the rest stay waiting for the next start.
      if (deps.stopping()) break;
      const request = JSON.parse(w.request) as Extract<Request, { command: 'run' }>;
      // Claimed first, so two rounds never launch the same entry.
      const { count } = await deps.db.queuedRun.updateMany({ where: { id: w.id, state: 'waiting' }, data: { state: 'launching' } });
      if (!count) continue;
      // Each launch logs as its owner's run, on its own host.
      const result = await withLogContext({ user: w.handle, command: 'run' }, () =>
        runContainer(deps, request, { actor: { userId: w.userId, handle: w.handle, isAdmin: false }, progress: () => {} }),
      );
      // Still waiting: no GPUs fit yet, or (quotas.atLimit: queue) the owner is over their GPU-hours.
      if (queueableRefusal(result, deps.config.quotas.atLimit)) {
        await deps.db.queuedRun.update({ where: { id: w.id }, data: { state: 'waiting' } });
        continue; // a later, smaller request may still fit
      }
      const ok = result.tone === 'success';
      ok ? launched++ : failed++;
      await deps.db.queuedRun.update({ where: { id: w.id }, data: { state: ok ? 'launched' : 'failed', doneAt: deps.now(), result: result.title } });
      void deps.notify(w.userId, { ...result, title: `Queued run #${w.id}: ${result.title}` }).catch(() => {});
    }
    return `${launched} queued run(s) launched, ${failed} failed`;
  },
};
