import type { GpuHolder, GpuProcess, GpuView, HostSnapshot } from '../core/cluster.js';
import type { GpuHost } from './gpu-host.js';
import { LABEL, parseGpuList } from './labels.js';
import { GPU_AND_APPS_QUERY, containerIdFromCgroup, parseGpus, parseProcesses, splitCombined, type SmiProcess } from './nvidia-smi.js';
import type { ContainerSummary } from './runtime.js';

interface RunningContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
}

/** Host PID -> container id, read from /proc/<pid>/cgroup in one exec for all PIDs. */
async function containersOfPids(host: GpuHost, pids: number[], timeoutMs: number): Promise<Map<number, string>> {
  const map = new Map<number, string>();
  if (pids.length === 0) return map;
  // -H prefixes each line with its file; missing PIDs only make grep exit 2, the rest still prints.
  const out = await host.run(['grep', '-H', '', ...pids.map((p) => `/proc/${p}/cgroup`)], timeoutMs);
  const byPid = new Map<number, string[]>();
  for (const line of out.stdout.split('\n')) {
    const m = /^\/proc\/(\d+)\/cgroup:(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    byPid.set(pid, [...(byPid.get(pid) ?? []), m[2]!]);
  }
  for (const [pid, lines] of byPid) {
    const id = containerIdFromCgroup(lines.join('\n'));
    if (id) map.set(pid, id);
  }
  return map;
}

/** One host's GPUs, holders and processes: one exec and one Docker call in parallel, plus one exec when GPU processes need mapping. */
export async function probeHost(host: GpuHost, timeoutMs: number): Promise<HostSnapshot> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  const conn = host.connection();
  if (conn.state === 'down' || conn.state === 'closed') return { name: host.name, state: 'down', error: conn.lastError ?? 'not connected', gpus: null, tookMs: took() };

  const [smiOut, containers] = await Promise.all([
    host.run(GPU_AND_APPS_QUERY, timeoutMs),
    // Docker being unreachable must not hide the GPUs: holders are then unknown, not absent.
    host.runtime.listRunning().then(
      (list) => ({ list }),
      (err: Error) => ({ list: [] as ContainerSummary[], error: `Docker is unreachable: ${err.message}` }),
    ),
  ]);
  const listed = containers.list;
  const [gpuOut, appsOut] = splitCombined(smiOut);
  const running = new Map<string, RunningContainer>(listed.map((c) => [c.id, c]));

  const gpus = parseGpus(gpuOut);
  if (!gpus.ok) return { name: host.name, state: 'up', gpus: null, gpuError: gpus.error, tookMs: took() };
  const procs = parseProcesses(appsOut);
  const procList: SmiProcess[] = procs.ok ? procs.value : [];
  const pidContainers = await containersOfPids(host, [...new Set(procList.map((p) => p.pid))], timeoutMs);

  const holders = new Map<number, GpuHolder[]>();
  for (const c of running.values()) {
    if (c.labels[LABEL.managed] !== 'true') continue;
    for (const index of parseGpuList(c.labels[LABEL.gpus])) {
      holders.set(index, [...(holders.get(index) ?? []), { owner: c.labels[LABEL.owner] ?? '?', container: c.labels[LABEL.name] ?? c.name }]);
    }
  }

  const views: GpuView[] = gpus.value.map((g) => {
    const managed: GpuProcess[] = [];
    const unmanaged: GpuProcess[] = [];
    for (const p of procList.filter((p) => p.gpuUuid === g.uuid)) {
      const base = { pid: p.pid, name: p.name, usedMemoryMiB: p.usedMemoryMiB };
      const id = pidContainers.get(p.pid);
      const c = id ? running.get(id) : undefined;
      if (c && c.labels[LABEL.managed] === 'true') managed.push({ ...base, owner: c.labels[LABEL.owner], container: c.labels[LABEL.name] ?? c.name });
      else unmanaged.push(id ? { ...base, foreignContainer: c?.name ?? id.slice(0, 12) } : base);
    }
    return { ...g, holders: holders.get(g.index) ?? [], managed, unmanaged };
  });
  return {
    name: host.name,
    state: 'up',
    gpus: views,
    gpuError: procs.ok ? undefined : procs.error,
    dockerError: 'error' in containers ? containers.error : undefined,
    tookMs: took(),
  };
}
