import { reply } from '../core/reply.js';
import { sendOnce } from '../db/notices.js';
import { usageOf } from '../db/usage.js';
import { usageBlocks } from '../operations/quota.js';
import type { Job } from './job.js';

const THRESHOLDS = [100, 80];

/** Tells people at 80 % and at 100 % of their weekly GPU-hours: once per threshold and window. */
export const quotaJob: Job = {
  name: 'quota',
  description: 'Account GPU-hours and tell users at 80 % and 100 % of gpuHoursPerWeek.',
  async run(deps) {
    const now = deps.now();
    let sent = 0;
    const users = await deps.db.user.findMany({ where: { allocations: { some: {} } } });
    for (const user of users) {
      const usage = await usageOf(deps.db, deps.config, user.id, user.handle, now);
      const pct = (100 * usage.used) / Math.max(usage.limits.gpuHoursPerWeek, 1e-9);
      // Only the highest threshold reached is sent; a lower one not yet sent is then moot.
      const reached = THRESHOLDS.find((t) => pct >= t);
      if (reached === undefined) continue;
      const title =
        reached === 100
          ? `You have used all ${usage.limits.gpuHoursPerWeek} of your GPU-hours this week`
          : `You have used ${Math.floor(pct)} % of your ${usage.limits.gpuHoursPerWeek} GPU-hours this week`;
      const text = reached === 100 ? 'New requests are refused until the window moves on; what runs now keeps running until its end time.' : 'At 100 % new requests are refused.';
      const ok = await sendOnce(deps.db, `quota:${user.id}:${usage.window.key}:${reached}`, user.id, () =>
        deps.notify(user.id, reply(reached === 100 ? 'error' : 'warning', title, [{ type: 'text', text }, ...usageBlocks(usage)])),
      );
      if (ok) {
        sent++;
        // Reaching 100 % first means 80 % need not be said afterwards.
        if (reached === 100) await sendOnce(deps.db, `quota:${user.id}:${usage.window.key}:80`, user.id, async () => {});
      }
    }
    return `${sent} quota notice(s) sent`;
  },
};
