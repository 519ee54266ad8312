import { release } from './allocations.js';
import type { Container, PrismaClient } from './client.js';

export interface DbPair {
  db: PrismaClient;
  txDb: PrismaClient;
}

/**
 * Marks a container gone, frees its GPUs and renames its row so the name can be used again
 * ("#id:name" cannot collide with a user's name). With `ifUnchanged`, only when nobody changed the
 * row since it was read (reconciliation racing a command): returns whether it did.
 */
export async function markRemoved({ db, txDb }: DbPair, c: Container, reason: string, now: Date, ifUnchanged = false): Promise<boolean> {
  const where = ifUnchanged ? { id: c.id, state: c.state, updatedAt: c.updatedAt } : { id: c.id };
  const { count } = await db.container.updateMany({ where, data: { state: 'removed', removedAt: now, name: `#${c.id}:${c.name}` } });
  if (count && c.allocationId) await release(txDb, c.allocationId, reason, now);
  return count > 0;
}

/** Marks a running container stopped and frees its GPUs (same `ifUnchanged` rule). */
export async function markStopped({ db, txDb }: DbPair, c: Container, reason: string, now: Date, ifUnchanged = false): Promise<boolean> {
  const where = ifUnchanged ? { id: c.id, state: c.state, updatedAt: c.updatedAt } : { id: c.id };
  const { count } = await db.container.updateMany({ where, data: { state: 'stopped', stoppedAt: now, allocationId: null } });
  if (count && c.allocationId) await release(txDb, c.allocationId, reason, now);
  return count > 0;
}
