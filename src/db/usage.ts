import type { QuotaLimits } from '../config/schema.js';
import { limitsFor } from '../core/policy/quota.js';
import { gpuHours, usageWindow, type UsageWindow } from '../core/policy/usage.js';
import type { Config } from '../config/schema.js';
import type { PrismaClient } from './client.js';
import { chatIdKeys } from './users.js';
import { clusterJobsHeld } from './cluster-jobs.js';

export interface Usage {
  used: number;
  limits: QuotaLimits;
  window: UsageWindow;
  /** GPUs held right now on the hosts. */
  heldGpus: number;
  /** GPUs of the user's Slurm jobs not yet seen ended (as last listed): they count towards maxGpus too. */
  heldOnCluster: number;
}

/** A user's limits: config defaults, then the config's entry, then an admin's override from chat. */
export async function effectiveLimits(db: PrismaClient, config: Config, handle: string): Promise<QuotaLimits> {
  // quotas.users may name the person by handle or by chat id ("slack:U024BE7LH"); the handle's entry comes last and wins.
  // Reads that do not depend on each other go together: each is a round trip on PostgreSQL.
  const [identities, o] = await Promise.all([
    db.chatIdentity.findMany({ where: { user: { handle } }, orderBy: { id: 'asc' } }),
    db.quotaOverride.findUnique({ where: { handle } }),
  ]);
  const keys = [...identities.flatMap((i) => chatIdKeys(i.platform, i.externalId).reverse()), handle];
  const base = keys.reduce((limits, key) => limitsFor(key, limits, config.quotas.users), config.quotas.default);
  return {
    maxGpus: o?.maxGpus ?? base.maxGpus,
    gpuHoursPerWeek: o?.gpuHoursPerWeek ?? base.gpuHoursPerWeek,
    maxHours: Math.min(o?.maxHours ?? base.maxHours, config.quotas.maxLifetimeHours),
  };
}

/** GPU-hours a user held in the current window (containers, reservations and Slurm jobs alike). */
export async function usageOf(db: PrismaClient, config: Config, userId: number, handle: string, now: Date): Promise<Usage> {
  const window = usageWindow(config.quotas.window, now);
  const [allocations, jobs, limits, onCluster] = await Promise.all([
    db.allocation.findMany({
      where: { userId, createdAt: { lt: now }, OR: [{ releasedAt: null }, { releasedAt: { gt: window.start } }] },
      include: { _count: { select: { leases: true } } },
    }),
    clusterJobsHeld(db, handle, window.start, now),
    effectiveLimits(db, config, handle),
    db.clusterJob.aggregate({ where: { handle, endedAt: null }, _sum: { gpus: true } }),
  ]);
  const used = gpuHours(
    [...allocations.map((a) => ({ gpus: a.gpuIndexes ? a.gpuIndexes.split(',').length : 0, from: a.createdAt, until: a.state === 'active' ? null : a.releasedAt })), ...jobs],
    window,
    now,
  );
  const heldGpus = allocations.reduce((n, a) => n + a._count.leases, 0);
  return { used, limits, window, heldGpus, heldOnCluster: onCluster._sum.gpus ?? 0 };
}
