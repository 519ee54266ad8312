import { duration } from '../core/format.js';
import { idleRunStart, type UtilPoint } from '../core/policy/idle.js';
import { reply } from '../core/reply.js';
import { parseIndexes } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import { sendOnce } from '../db/notices.js';
import { minutesOf } from '../db/telemetry.js';
import type { OpsDeps } from '../operations/deps.js';
import { stopOnHost } from '../operations/launch.js';
import type { Job } from './job.js';

const MINUTE = 60_000;
/** Memory growing by more than this counts as work (a job loading data), not idle. */
const MEMORY_TOLERANCE_MIB = 256;

/**
 * One GPU's samples since `from`: the 1-minute means (their peak) for the part older than the
 * monitor's in-memory window, then the full-rate samples.
 */
async function pointsOf(deps: OpsDeps, host: string, index: number, from: number): Promise<UtilPoint[]> {
  const frames = deps.pool.monitor(host)?.history() ?? [];
  const memoryFrom = frames[0]?.at ?? Date.now();
  const points: UtilPoint[] = [];
  if (from < memoryFrom) {
    for (const m of await minutesOf(deps.db, host, [index], new Date(from), new Date(memoryFrom))) {
      // A minute row stands at its end, so the full-rate part joins it without a gap.
      points.push({ at: m.at.getTime() + MINUTE, utilization: m.utilizationMax ?? m.utilization, memoryUsedMiB: m.memoryUsedMiB, spanMs: MINUTE });
    }
  }
  for (const f of frames) {
    if (f.at < from) continue;
    const g = f.gpus?.get(index);
    // A failed sample is unknown: it breaks the run like a gap.
    points.push({ at: f.at, utilization: g ? g.utilization : null, memoryUsedMiB: g ? g.memoryUsedMiB : null });
  }
  return points;
}

/**
 * Idle GPU reclaim that asks first. Idle means every sample of every GPU of a running container
 * over idle.warnAfter below idle.threshold, with memory use not growing; a gap in the samples or
 * a failed measurement is unknown, never idle, and restarts the clock. Idle for idle.warnAfter:
 * the owner is asked [Keep] [Stop now]; idle for idle.stopAfter with no Keep: stopped, never removed.
 */
export const idleJob: Job = {
  name: 'idle',
  description: 'Ask owners of containers whose GPUs sit idle, then stop them if nobody answers.',
  async run(deps) {
    const { db } = deps;
    const { threshold, warnAfter, stopAfter } = deps.config.idle;
    const now = deps.now();
    const intervalMs = deps.config.telemetry.intervalMs;
    // Full-rate samples may be 3 intervals apart (a minute mean one minute more): a longer gap is unknown.
    const maxGapMs = 3 * intervalMs;
    const horizon = now.getTime() - Math.max(warnAfter, stopAfter) - 2 * MINUTE;
    let asked = 0;
    let stopped = 0;
    const running = await db.container.findMany({ where: { state: 'running' } });
    // Someone typing in a container through the gateway is using it, whatever its GPUs show.
    const inSession = deps.config.idle.countSessions ? (deps.gateway?.activeContainers() ?? new Set<string>()) : new Set<string>();
    for (const c of running) {
      const indexes = parseIndexes(c.gpuIndexes);
      let runStart: number | null = indexes.length ? horizon : null;
      for (const i of indexes) {
        const start = idleRunStart(await pointsOf(deps, c.hostName, i, horizon), { threshold, now: now.getTime(), maxGapMs, memoryToleranceMiB: MEMORY_TOLERANCE_MIB });
        runStart = start === null || runStart === null ? null : Math.max(runStart, start);
      }
      if (runStart === null || inSession.has(c.name)) {
        if (c.idleSince) await db.container.update({ where: { id: c.id }, data: { idleSince: null } });
        continue;
      }
      // The same run keeps its start (and so its one warning); a run reaching the horizon began earlier still.
      const stored = c.idleSince?.getTime();
      const sameRun = stored !== undefined && (Math.abs(stored - runStart) <= 2 * MINUTE || (stored < runStart && runStart <= horizon + MINUTE));
      const since = sameRun ? c.idleSince! : new Date(runStart);
      if (!sameRun) await db.container.update({ where: { id: c.id }, data: { idleSince: since } });
      const idleFor = now.getTime() - since.getTime();
      if (c.keepUntil && c.keepUntil > now) continue;
      if (idleFor >= stopAfter) {
        if (!(await stopOnHost(deps, c, 'idle', now))) continue;
        stopped++;
        await audit(db, { actor: 'gpubot', action: 'idle-stop', target: c.name, result: 'ok', detail: `idle since ${since.toISOString()}` });
        void deps
          .notify(
            c.userId,
            reply('info', `${c.name} was stopped: its GPUs were idle for ${duration(idleFor)}`, [
              { type: 'text', text: `GPUs ${c.gpuIndexes} on ${c.hostName} went back to the pool. Its files stay; "start ${c.name}" runs it again.` },
            ]),
          )
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
