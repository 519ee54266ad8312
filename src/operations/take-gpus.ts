import { HOUR_MS } from '../core/format.js';
import { placeGpus } from '../core/policy/allocation.js';
import { checkRequest, defaultHours, quotaCode } from '../core/policy/quota.js';
import { usageOf } from '../db/usage.js';
import { refuse, type Reply } from '../core/reply.js';
import type { Actor } from '../core/requests.js';
import { allocate, type AllocationKind } from '../db/allocations.js';
import type { Allocation } from '../db/client.js';
import { drainedHosts } from '../db/hosts.js';
import { setLogHost } from '../log-context.js';
import { candidates } from './cluster-state.js';
import { SNAPSHOT_MAX_AGE_MS, type OpsDeps } from './deps.js';
import { NO_GPUS } from './queue.js';

export interface Taken {
  allocation: Allocation;
  host: string;
  indexes: number[];
  endsAt: Date;
}

/** Quota, placement and the allocating transaction, shared by `run` and `reserve`. */
export async function takeGpus(deps: OpsDeps, actor: Actor, kind: AllocationKind, req: { gpus: number; host?: string; hours?: number }): Promise<Taken | Reply> {
  if (req.host && !deps.pool.get(req.host)) return refuse('not-found', `There is no host "${req.host}"`, `Known hosts: ${deps.pool.hostNames().join(', ')}`);
  const [usage, snapshots, drained] = await Promise.all([
    usageOf(deps.db, deps.config, actor.userId, actor.handle, deps.now()),
    deps.pool.recentSnapshot(SNAPSHOT_MAX_AGE_MS, req.host ? [req.host] : undefined),
    drainedHosts(deps.db),
  ]);
  const limits = usage.limits;
  const hours = req.hours ?? defaultHours(limits);
  const endsAt = new Date(deps.now().getTime() + hours * HOUR_MS);
  const taken = await allocate(deps.txDb, {
    userId: actor.userId,
    now: deps.now(),
    kind,
    endsAt,
    quota: (held) => checkRequest(limits, held + usage.heldOnCluster, req.gpus, hours, usage.used),
    place: (leased) => placeGpus(candidates(snapshots, drained, leased, deps.instanceId), req.gpus, req.host),
  });
  if (!taken.ok) {
    if (taken.limit) return refuse(quotaCode(taken.limit), 'Over your quota', `${taken.reason}.`);
    return refuse('no-gpus', NO_GPUS, `${taken.reason}.${kind === 'container' ? ' Add --queue to wait for GPUs instead.' : ''}`);
  }
  setLogHost(taken.host);
  return { allocation: taken.allocation, host: taken.host, indexes: taken.indexes, endsAt };
}

export const isReply = (x: Taken | Reply): x is Reply => 'tone' in x;
