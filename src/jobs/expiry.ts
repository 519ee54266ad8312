import { duration, isoMinute } from '../core/format.js';
import { reply } from '../core/reply.js';
import { release } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import { sendOnce } from '../db/notices.js';
import { stopOnHost } from '../operations/launch.js';
import type { Job } from './job.js';

/** The nearest reminder threshold already reached, if any (only that one is sent). */
function dueReminder(remainingMs: number, thresholds: number[]): number | undefined {
  return [...thresholds].sort((a, b) => a - b).find((t) => remainingMs <= t);
}

/**
 * Containers and reservations past their end time: containers are stopped (never removed) and
 * their GPUs freed, reservations released; owners are reminded before (with an Extend button) and
 * told after. A reminder goes out once per threshold and end time, also across restarts; an
 * extension moves the end time and so re-arms them.
 */
export const expiryJob: Job = {
  name: 'expiry',
  description: 'Remind before the end time; at the end stop containers and release reservations.',
  async run(deps) {
    const { db } = deps;
    const now = deps.now();
    const thresholds = deps.config.expiry.remindBefore;
    let stopped = 0;
    let released = 0;
    let reminded = 0;

    const containers = await db.container.findMany({ where: { state: 'running', endsAt: { not: null } } });
    for (const c of containers) {
      if (deps.launching.has(c.name)) continue;
      const remaining = c.endsAt!.getTime() - now.getTime();
      if (remaining > 0) {
        const t = dueReminder(remaining, thresholds);
        if (t === undefined) continue;
        const sent = await sendOnce(db, `expiry:container:${c.id}:${c.endsAt!.toISOString()}:${t}`, c.userId, () =>
          deps.notify(
            c.userId,
            reply('warning', `${c.name} ends in ${duration(remaining)}`, [
              { type: 'text', text: `At ${isoMinute(c.endsAt!)} it is stopped (not removed) and its GPUs go back to the pool.` },
              { type: 'actions', actions: [{ id: 'extend', label: 'Extend 4h', command: `extend ${c.name} --hours 4`, style: 'primary' }] },
            ]),
          ),
        );
        if (sent) reminded++;
        continue;
      }
      if (!(await stopOnHost(deps, c, 'ended', now))) continue; // try again next round
      stopped++;
      await audit(db, { actor: 'gpubot', action: 'expire', target: c.name, result: 'ok', detail: `ended ${c.endsAt!.toISOString()}` });
      void deps
        .notify(
          c.userId,
          reply('info', `${c.name} reached its end time and was stopped`, [
            { type: 'text', text: `Its GPUs (${c.gpuIndexes} on ${c.hostName}) went back to the pool. Its files stay; "start ${c.name}" runs it again if the GPUs are free.` },
          ]),
        )
        .catch(() => {});
    }

    const reservations = await db.allocation.findMany({ where: { kind: 'reservation', state: 'active', endsAt: { not: null } } });
    for (const a of reservations) {
      const remaining = a.endsAt!.getTime() - now.getTime();
      if (remaining > 0) {
        const t = dueReminder(remaining, thresholds);
        if (t === undefined) continue;
        const sent = await sendOnce(db, `expiry:reservation:${a.id}:${a.endsAt!.toISOString()}:${t}`, a.userId, () =>
          deps.notify(
            a.userId,
            reply('warning', `Reservation ${a.id} ends in ${duration(remaining)}`, [
              { type: 'text', text: `GPUs ${a.gpuIndexes} on ${a.hostName} go back to the pool at ${isoMinute(a.endsAt!)}.` },
            ]),
          ),
        );
        if (sent) reminded++;
        continue;
      }
      if (!(await release(deps.txDb, a.id, 'ended', deps.now()))) continue;
      released++;
      await audit(db, { actor: 'gpubot', action: 'expire', target: String(a.id), result: 'ok', detail: `reservation ended ${a.endsAt!.toISOString()}` });
      void deps
        .notify(a.userId, reply('info', `Reservation ${a.id} has ended`, [{ type: 'text', text: `GPUs ${a.gpuIndexes} on ${a.hostName} went back to the pool.` }]))
        .catch(() => {});
    }
    return `${stopped} container(s) stopped, ${released} reservation(s) released, ${reminded} reminder(s) sent`;
  },
};
