import type { CommandContext } from '../core/engine.js';
import { percent } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { parseIndexes } from '../db/allocations.js';
import { minutesOf } from '../db/telemetry.js';
import { clusterJobsHeld } from '../db/cluster-jobs.js';
import type { OpsDeps } from './deps.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

const dayOf = (t: number): string => new Date(t).toISOString().slice(0, 10);
const round1 = (n: number): string => (Math.round(n * 10) / 10).toString();

interface DayUsage {
  gpuMs: number;
  utilSum: number;
  utilCount: number;
}

/**
 * usage [USER] [--days N]: GPU-hours per day (containers, reservations and Slurm jobs) and the
 * mean utilization of the GPUs while held (on the hosts), from the 1-minute means the live monitor keeps.
 */
export async function showUsage(deps: OpsDeps, req: Extract<Request, { command: 'usage' }>, { actor }: CommandContext): Promise<Reply> {
  const handle = req.user ?? actor.handle;
  if (handle !== actor.handle && !actor.isAdmin) return refuse('not-admin', 'Only admins can see someone else’s usage', 'Say "usage" for your own.');
  const user = await deps.db.user.findUnique({ where: { handle } });
  if (!user) return refuse('not-found', `There is no user "${handle}"`);
  const now = deps.now().getTime();
  const from = now - req.days * DAY_MS;
  const allocations = await deps.db.allocation.findMany({
    where: { userId: user.id, createdAt: { lt: new Date(now) }, OR: [{ releasedAt: null }, { releasedAt: { gt: new Date(from) } }] },
  });

  const days = new Map<string, DayUsage>();
  const day = (key: string) => days.get(key) ?? days.set(key, { gpuMs: 0, utilSum: 0, utilCount: 0 }).get(key)!;
  const held: [number, number][] = [];
  const addGpuTime = (start: number, end: number, gpus: number) => {
    held.push([start, end]);
    // GPU-hours split at UTC midnight.
    for (let t = start; t < end;) {
      const next = Math.min(end, (Math.floor(t / DAY_MS) + 1) * DAY_MS);
      day(dayOf(t)).gpuMs += (next - t) * gpus;
      t = next;
    }
  };
  // Slurm jobs: their GPU time counts; Slurm's nodes are not sampled, so no utilization.
  for (const j of await clusterJobsHeld(deps.db, handle, new Date(from), new Date(now))) {
    const start = Math.max(j.from.getTime(), from);
    const end = Math.min(j.until?.getTime() ?? now, now);
    if (end > start && j.gpus > 0) addGpuTime(start, end, j.gpus);
  }
  for (const a of allocations) {
    const gpus = parseIndexes(a.gpuIndexes);
    const start = Math.max(a.createdAt.getTime(), from);
    const end = Math.min(a.state === 'active' ? now : (a.releasedAt?.getTime() ?? now), now);
    if (end <= start || gpus.length === 0) continue;
    addGpuTime(start, end, gpus.length);
    for (const m of await minutesOf(deps.db, a.hostName, gpus, new Date(Math.floor(start / 60_000) * 60_000), new Date(end))) {
      if (m.utilization === null) continue;
      const d = day(dayOf(m.at.getTime()));
      d.utilSum += m.utilization;
      d.utilCount++;
    }
  }

  const who = handle === actor.handle ? 'You' : handle;
  const window = `the last ${req.days} day${req.days === 1 ? '' : 's'}`;
  const gpuMs = [...days.values()].reduce((n, d) => n + d.gpuMs, 0);
  if (gpuMs === 0) return reply('info', `${who} held no GPUs in ${window}`);
  const utilSum = [...days.values()].reduce((n, d) => n + d.utilSum, 0);
  const utilCount = [...days.values()].reduce((n, d) => n + d.utilCount, 0);
  const wallMs = unionLength(held);
  const meanGpus = gpuMs / wallMs;
  const utilText = utilCount ? `at ${percent(utilSum / utilCount)} mean utilization` : 'utilization not measured';
  const title = `${who} held ${round1(meanGpus)} GPU${round1(meanGpus) === '1' ? '' : 's'} for ${round1(wallMs / HOUR_MS)} h ${utilText} (${window})`;
  return reply('info', title, [
    {
      type: 'table',
      columns: ['Day (UTC)', 'GPU-hours', 'Mean utilization'],
      rows: [...days.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([d, u]) => [d, round1(u.gpuMs / HOUR_MS), u.utilCount ? percent(u.utilSum / u.utilCount) : 'not measured']),
    },
    { type: 'text', text: `${round1(gpuMs / HOUR_MS)} GPU-hours in all. Utilization is the mean of the 1-minute means of the GPUs while held.` },
  ]);
}

/** Total length of a set of intervals, overlaps counted once. */
function unionLength(intervals: [number, number][]): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [curStart, curEnd] = [-Infinity, -Infinity];
  for (const [s, e] of sorted) {
    if (s > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      [curStart, curEnd] = [s, e];
    } else curEnd = Math.max(curEnd, e);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}
