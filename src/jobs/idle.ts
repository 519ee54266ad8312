import { duration } from '../core/format.js';
import { reply } from '../core/reply.js';
import { parseIndexes } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import { sendOnce } from '../db/notices.js';
import { stopOnHost } from '../operations/launch.js';
import type { Job } from './job.js';

/**
 * Idle GPU reclaim that asks first. Each run samples utilization: a running container whose GPUs
 * are all below idle.threshold stays "idle since" the first such sample; any busy GPU, and any
 * missing or failed measurement, resets it (unknown is never idle). Idle for idle.warnAfter: the
 * owner is asked [Keep] [Stop now]; idle for idle.stopAfter with no Keep: stopped, never removed.
 */
export const idleJob: Job = {
  name: 'idle',
  description: 'Ask owners of containers whose GPUs sit idle, then stop them if nobody answers.',
  async run(deps) {
    const { db } = deps;
    const { threshold, warnAfter, stopAfter } = deps.config.idle;
    const now = deps.now();
    let asked = 0;
    let stopped = 0;
    const running = await db.container.findMany({ where: { state: 'running' } });
    if (running.length === 0) return '0 owner(s) asked, 0 idle container(s) stopped';
    const snapshots = await deps.pool.snapshot([...new Set(running.map((c) => c.hostName))]);
    // Someone typing in a container through the gateway is using it, whatever its GPUs show.
    const inSession = deps.config.idle.countSessions ? (deps.gateway?.activeContainers() ?? new Set<string>()) : new Set<string>();
    for (const c of running) {
      const s = snapshots.find((x) => x.name === c.hostName);
      const gpus = parseIndexes(c.gpuIndexes).map((i) => s?.gpus?.find((g) => g.index === i));
      const idle = !inSession.has(c.name) && s?.state === 'up' && gpus.length > 0 && gpus.every((g) => g && g.utilization !== null && g.utilization < threshold);
      if (!idle) {
        if (c.idleSince) await db.container.update({ where: { id: c.id }, data: { idleSince: null } });
        continue;
      }
      const since = c.idleSince ?? now;
      if (!c.idleSince) await db.container.update({ where: { id: c.id }, data: { idleSince: since } });
      const idleFor = now.getTime() - since.getTime();
      if (c.keepUntil && c.keepUntil > now) continue;
      if (idleFor >= stopAfter) {
        if (!(await stopOnHost(deps, c, 'idle', now))) continue;
        stopped++;
        await audit(db, { actor: 'gpubot', action: 'idle-stop', target: c.name, result: 'ok', detail: `idle since ${since.toISOString()}` });
        void deps
          .notify(c.userId, reply('info', `${c.name} was stopped: its GPUs were idle for ${duration(idleFor)}`, [{ type: 'text', text: `GPUs ${c.gpuIndexes} on ${c.hostName} went back to the pool. Its files stay; "start ${c.name}" runs it again.` }]))
          .catch(() => {});
      } else if (idleFor >= warnAfter) {
        const ok = await sendOnce(db, `idle:${c.id}:${since.toISOString()}`, c.userId, () =>
          deps.notify(
            c.userId,
            reply('warning', `${c.hostName}:${c.gpuIndexes} (${c.name}) idle for ${duration(idleFor)}`, [
              { type: 'text', text: `Without an answer it is stopped (not removed) in ${duration(stopAfter - idleFor)}.` },
              {
                type: 'actions',
                actions: [
                  { id: 'keep', label: `Keep ${duration(deps.config.idle.keepFor)}`, command: `keep ${c.name}`, style: 'primary' },
                  { id: 'stop', label: 'Stop now', command: `stop ${c.name}`, style: 'danger', confirm: `Stop ${c.name}? Its GPUs go back to the pool; files stay.` },
                ],
              },
            ]),
          ),
        );
        if (ok) asked++;
      }
    }
    return `${asked} owner(s) asked, ${stopped} idle container(s) stopped`;
  },
};
