import type { GpuProcess } from '../core/cluster.js';
import { mib } from '../core/format.js';
import { reply } from '../core/reply.js';
import { sendOnce } from '../db/notices.js';
import { namedUsersWhere } from '../db/users.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import type { Job } from './job.js';

/** One process gpubot did not start, with every GPU of the host it shows up on. */
interface Sighting {
  process: GpuProcess;
  gpus: number[];
  memoryMiB: number | null;
}

/**
 * Host PID -> start time (clock ticks since boot, field 22 of /proc/<pid>/stat), in one exec for
 * all PIDs. A PID that is gone or unreadable is missing from the map; undefined if the exec failed.
 */
async function startTimes(host: GpuHost, pids: number[], timeoutMs: number): Promise<Map<number, string> | undefined> {
  let out;
  try {
    // -H prefixes each line with its file; missing PIDs only make grep exit 2, the rest still prints.
    out = await host.run(['grep', '-H', '', ...pids.map((p) => `/proc/${p}/stat`)], timeoutMs);
  } catch {
    return undefined;
  }
  const map = new Map<number, string>();
  for (const line of out.stdout.split('\n')) {
    const m = /^\/proc\/(\d+)\/stat:/.exec(line);
    if (!m) continue;
    // The command name in parentheses may hold spaces: count fields from after its last ')'.
    const start = line.slice(line.lastIndexOf(')') + 2).split(' ')[19];
    if (start && /^\d+$/.test(start)) map.set(Number(m[1]), start);
  }
  return map;
}

/**
 * Tells every admin, once per process, about processes on a GPU that gpubot did not start (such
 * GPUs are never handed out, see candidates in operations/cluster-state). A host that is down or
 * whose nvidia-smi fails is skipped: its GPUs are unknown, not busy.
 */
export const unmanagedJob: Job = {
  name: 'unmanaged',
  description: 'Tell admins about processes on a GPU that gpubot did not start (once per process).',
  async run(deps) {
    const { db, log } = deps;
    const names = deps.config.admins;
    // Admins as app.actor decides them: by handle, or by a chat identity named in the config.
    const admins = names.length ? await db.user.findMany({ where: namedUsersWhere(names), orderBy: { id: 'asc' } }) : [];
    if (admins.length === 0) return '0 unmanaged process(es) reported to 0 admin(s)';
    const told = new Set<number>();
    let reported = 0;

    for (const s of await deps.pool.snapshot()) {
      if (s.state !== 'up' || !s.gpus) continue;
      const sightings = new Map<number, Sighting>();
      for (const g of s.gpus) {
        for (const p of g.unmanaged) {
          // Docker unreachable: a gpubot container's process looks foreign too, so only processes
          // in no container at all are surely not gpubot's.
          if (s.dockerError && p.foreignContainer) continue;
          const seen = sightings.get(p.pid) ?? { process: p, gpus: [], memoryMiB: null };
          seen.gpus.push(g.index);
          if (p.usedMemoryMiB !== null) seen.memoryMiB = (seen.memoryMiB ?? 0) + p.usedMemoryMiB;
          sightings.set(p.pid, seen);
        }
      }
      if (sightings.size === 0) continue;
      const host = deps.pool.get(s.name);
      const starts = host ? await startTimes(host, [...sightings.keys()], deps.config.timeouts.hostMs) : undefined;
      if (!starts) {
        log.warn({ host: s.name }, 'could not read start times of unmanaged GPU processes');
        continue; // the host stopped answering after the probe: try again next round
      }

      for (const { process: p, gpus, memoryMiB } of sightings.values()) {
        // Once per process: host, PID and start time tell a reused PID apart (one grep per host,
        // and only when there is something to report). A start time that cannot be read (process
        // just gone, /proc hidden) falls back to the name, which still tells most reuses apart.
        const processKey = `${s.name}:${p.pid}:${starts.get(p.pid) ?? '?'}:${p.name}`;
        const gpuText = `GPU${gpus.length === 1 ? '' : 's'} ${gpus.join(', ')}`;
        const where = p.foreignContainer ? ` in container ${p.foreignContainer}, which gpubot did not start` : ' outside any container';
        const message = reply('warning', `Unmanaged process on ${s.name} ${gpuText}: pid ${p.pid} ${p.name}`, [
          {
            type: 'fields',
            fields: [
              { label: 'Host', value: s.name },
              { label: gpus.length === 1 ? 'GPU' : 'GPUs', value: gpus.join(', ') },
              { label: 'PID', value: String(p.pid) },
              { label: 'Process', value: p.name },
              { label: 'Memory', value: mib(memoryMiB) },
              ...(p.foreignContainer ? [{ label: 'Container', value: `${p.foreignContainer} (not gpubot)` }] : []),
            ],
          },
          { type: 'text', text: `gpubot did not start this process; it runs${where}. ${gpuText} on ${s.name} will not be handed out while it runs.` },
        ]);
        let any = false;
        for (const admin of admins) {
          if (!(await sendOnce(db, `unmanaged:${processKey}:${admin.id}`, admin.id, () => deps.notify(admin.id, message)))) continue;
          any = true;
          told.add(admin.id);
        }
        if (any) reported++;
      }
    }
    return `${reported} unmanaged process(es) reported to ${told.size} admin(s)`;
  },
};
