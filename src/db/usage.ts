import type { QuotaLimits } from '../config/schema.js';
import { limitsFor } from '../core/policy/quota.js';
import { gpuHours, usageWindow, type UsageWindow } from '../core/policy/usage.js';
import type { Config } from '../config/schema.js';
import type { PrismaClient } from './client.js';

export interface Usage {
  used: number;
  limits: QuotaLimits;
  window: UsageWindow;
  /** GPUs held right now. */
  heldGpus: number;
}

/** A user's limits: config defaults, then the config's entry, then an admin's override from chat. */
export async function effectiveLimits(db: PrismaClient, config: Config, handle: string): Promise<QuotaLimits> {
  const base = limitsFor(handle, config.quotas.default, config.quotas.users);
  const o = await db.quotaOverride.findUnique({ where: { handle } });
  return { maxGpus: o?.maxGpus ?? base.maxGpus, gpuHoursPerWeek: o?.gpuHoursPerWeek ?? base.gpuHoursPerWeek, maxHours: o?.maxHours ?? base.maxHours };
}

/** GPU-hours a user held in the current window (containers and reservations alike). */
export async function usageOf(db: PrismaClient, config: Config, userId: number, handle: string, now: Date): Promise<Usage> {
  const window = usageWindow(config.quotas.window, now);
  const allocations = await db.allocation.findMany({
    where: { userId, createdAt: { lt: now }, OR: [{ releasedAt: null }, { releasedAt: { gt: window.start } }] },
    include: { _count: { select: { leases: true } } },
  });
  const used = gpuHours(
    allocations.map((a) => ({ gpus: a.gpuIndexes ? a.gpuIndexes.split(',').length : 0, from: a.createdAt, until: a.state === 'active' ? null : a.releasedAt })),
    window,
    now,
  );
  const heldGpus = allocations.reduce((n, a) => n + a._count.leases, 0);
  return { used, limits: await effectiveLimits(db, config, handle), window, heldGpus };
}
