import type { HostSnapshot } from '../core/cluster.js';
import type { CandidateHost } from '../core/policy/allocation.js';
import { drainedHosts } from '../db/hosts.js';
import { gpuKey, leaseHolders, type LeaseHolder } from '../db/allocations.js';
import { sharedRead } from '../db/shared-read.js';
import type { OpsDeps } from './deps.js';

type Ledger = [Map<string, LeaseHolder>, Set<string>];
const ledgers = new WeakMap<object, () => Promise<Ledger>>();

/** Who holds what and which hosts are drained: one read shared by concurrent callers (db/shared-read.ts). */
function ledger(db: OpsDeps['db']): Promise<Ledger> {
  let read = ledgers.get(db);
  if (!read) ledgers.set(db, (read = sharedRead(() => Promise.all([leaseHolders(db), drainedHosts(db)]))));
  return read();
}

/** Status snapshots with holders from the database (reservations included) and drained flags. */
export async function snapshotWithHolders(deps: Pick<OpsDeps, 'db' | 'pool' | 'instanceId'>, hosts?: string[]): Promise<HostSnapshot[]> {
  const [probed, ledgerRead] = await Promise.all([deps.pool.live(hosts), ledger(deps.db)]);
  // The same live snapshots and the same shared read as the last caller: the same view (read-only).
  const last = views.get(deps.db);
  if (last && last.ledger === ledgerRead && last.instanceId === deps.instanceId && sameItems(last.probed, probed)) return last.view;
  const [leases, drained] = ledgerRead;
  // The probes are shared (read-only): copy only what this view adds to (holders, drained), not all.
  const snapshots = probed.map((s) => ({
    ...s,
    drained: drained.has(s.name),
    gpus:
      s.gpus?.map((g) => {
        const holders = g.holders.map((x) => (x.instance && x.instance !== deps.instanceId ? { ...x, otherGpubot: true } : x));
        const h = leases.get(gpuKey(s.name, g.index));
        if (h && !holders.some((x) => x.owner === h.owner && x.container === h.container)) holders.push({ owner: h.owner, container: h.container });
        return { ...g, holders };
      }) ?? null,
  }));
  views.set(deps.db, { probed, ledger: ledgerRead, instanceId: deps.instanceId, view: snapshots });
  return snapshots;
}

const views = new WeakMap<object, { probed: HostSnapshot[]; ledger: Ledger; instanceId: string; view: HostSnapshot[] }>();
const sameItems = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((x, i) => x === b[i]);

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
