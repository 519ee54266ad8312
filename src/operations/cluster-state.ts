import type { HostSnapshot } from '../core/cluster.js';
import type { CandidateHost } from '../core/policy/allocation.js';
import { drainedHosts } from '../db/hosts.js';
import { gpuKey, leaseHolders } from '../db/allocations.js';
import type { OpsDeps } from './deps.js';

/** Status snapshots with holders from the database (reservations included) and drained flags. */
export async function snapshotWithHolders(deps: Pick<OpsDeps, 'db' | 'pool' | 'instanceId'>, hosts?: string[]): Promise<HostSnapshot[]> {
  const [probed, holders, drained] = await Promise.all([deps.pool.live(hosts), leaseHolders(deps.db), drainedHosts(deps.db)]);
  const snapshots = structuredClone(probed); // probes are shared; this view adds to them
  for (const s of snapshots) {
    s.drained = drained.has(s.name);
    for (const g of s.gpus ?? []) {
      for (const x of g.holders) if (x.instance && x.instance !== deps.instanceId) x.otherGpubot = true;
      const h = holders.get(gpuKey(s.name, g.index));
      if (h && !g.holders.some((x) => x.owner === h.owner && x.container === h.container)) g.holders.push({ owner: h.owner, container: h.container });
    }
  }
  return snapshots;
}

/**
 * Hosts as the allocator sees them. A GPU is free when no lease holds it, no running container of
 * another gpubot installation (or one without an installation label, not adopted yet) has it, and
 * nvidia-smi shows no process on it; a host whose GPUs are unknown takes no work. This
 * installation's own containers count through their leases only: a probe may be seconds old.
 */
export function candidates(snapshots: HostSnapshot[], drained: Set<string>, leased: Set<string>, instanceId: string): CandidateHost[] {
  return snapshots.map((s) => {
    const usable = s.state === 'up' && s.gpus !== null && !s.gpuError && !drained.has(s.name);
    const reason =
      s.state !== 'up'
        ? `${s.state} (${s.error ?? s.gpuError ?? 'unreachable'})`
        : !s.gpus || s.gpuError
          ? 'its GPUs are unknown (nvidia-smi failed)'
          : drained.has(s.name)
            ? 'drained by an admin'
            : undefined;
    return {
      name: s.name,
      usable,
      reason,
      gpus: (s.gpus ?? []).map((g) => ({
        index: g.index,
        free: !leased.has(gpuKey(s.name, g.index)) && !g.holders.some((h) => h.instance !== instanceId) && g.unmanaged.length === 0 && g.managed.length === 0,
      })),
    };
  });
}
