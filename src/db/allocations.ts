import type { Placement } from '../core/policy/allocation.js';
import type { QuotaCheck, QuotaLimit } from '../core/policy/quota.js';
import { isPostgres, type Allocation, type PrismaClient } from './client.js';
import { holdersChanged } from './shared-read.js';

export type AllocationKind = 'container' | 'reservation';

/** Who holds each leased GPU: "host:index" -> holder. */
export interface LeaseHolder {
  allocationId: number;
  owner: string;
  kind: AllocationKind;
  container: string | null;
}

export const gpuKey = (host: string, index: number): string => `${host}:${index}`;
export const formatIndexes = (indexes: number[]): string => indexes.join(',');
export const parseIndexes = (text: string): number[] => (text ? text.split(',').map(Number) : []);

export async function leaseHolders(db: PrismaClient): Promise<Map<string, LeaseHolder>> {
  const leases = await db.gpuLease.findMany({ include: { allocation: { include: { user: true, container: true } } } });
  return new Map(
    leases.map((l) => [
      gpuKey(l.hostName, l.gpuIndex),
      { allocationId: l.allocationId, owner: l.allocation.user.handle, kind: l.allocation.kind as AllocationKind, container: l.allocation.container?.name ?? null },
    ]),
  );
}

export interface AllocateRequest {
  userId: number;
  /** The bot's clock (injected in tests): GPU-hours are counted from here. */
  now: Date;
  kind: AllocationKind;
  endsAt: Date;
  /** Quota check against the GPUs the user holds right now (read in the same transaction). */
  quota: (heldGpus: number) => QuotaCheck;
  /** Placement given the GPUs leased right now (read in the same transaction). */
  place: (leased: Set<string>) => Placement;
}

export type AllocateResult = { ok: true; allocation: Allocation; host: string; indexes: number[] } | { ok: false; reason: string; limit?: QuotaLimit };

const isConflict = (err: unknown): boolean => {
  const e = (err ?? {}) as { code?: string; message?: string; cause?: { kind?: string; originalCode?: string } };
  // A conflict PostgreSQL finds at COMMIT reaches us as the adapter's own error (no P2034).
  // SQLite's busy timeout running out under load reaches us as "Operation has timed out": another writer held on.
  const atCommit = e.cause?.kind === 'TransactionWriteConflict' || e.cause?.originalCode === '40001' || e.cause?.originalCode === '40P01';
  return (
    e.code === 'P2002' ||
    e.code === 'P2034' ||
    atCommit ||
    /SQLITE_BUSY|database is locked|Operation has timed out|could not serialize|deadlock|TransactionWriteConflict/i.test(e.message ?? '')
  );
};

/** Runs a transaction again when SQLite or a unique key says another writer got there first. */
async function retrying<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isConflict(err) || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
    }
  }
}

/**
 * Callers pass the transaction client (OpsDeps.txDb): with one SQLite connection, a query sent
 * while an interactive transaction is open would run inside it, and be rolled back with it.
 *
 * Takes GPUs in one transaction. A GpuLease row per held GPU with a unique (host, index) means
 * two requests can never both get a GPU, whatever the timing: the loser's insert fails, and it
 * decides again from the new state. On PostgreSQL the transaction is SERIALIZABLE, so the quota
 * read (GPUs the user holds) cannot go stale either: a conflicting commit makes it fail (P2034)
 * and retry. SQLite transactions are serializable already (one writer at a time).
 */
export async function allocate(db: PrismaClient, req: AllocateRequest): Promise<AllocateResult> {
  const result = await retrying(() =>
    db.$transaction(
      async (tx): Promise<AllocateResult> => {
        const held = await tx.gpuLease.count({ where: { allocation: { userId: req.userId } } });
        const quota = req.quota(held);
        if (!quota.ok) return quota;
        const leased = new Set((await tx.gpuLease.findMany({ select: { hostName: true, gpuIndex: true } })).map((l) => gpuKey(l.hostName, l.gpuIndex)));
        const placement = req.place(leased);
        if (!placement.ok) return placement;
        const allocation = await tx.allocation.create({
          data: {
            userId: req.userId,
            kind: req.kind,
            hostName: placement.host,
            gpuIndexes: formatIndexes(placement.indexes),
            state: 'active',
            createdAt: req.now,
            endsAt: req.endsAt,
            leases: { create: placement.indexes.map((gpuIndex) => ({ hostName: placement.host, gpuIndex })) },
          },
        });
        return { ok: true, allocation, host: placement.host, indexes: placement.indexes };
      },
      { maxWait: 20_000, timeout: 20_000, ...(isPostgres(db) ? { isolationLevel: 'Serializable' as const } : {}) },
    ),
  );
  if (result.ok) holdersChanged();
  return result;
}

/** Frees the GPUs of an allocation; a no-op when already released. */
export async function release(db: PrismaClient, allocationId: number, reason: string, at: Date = new Date()): Promise<boolean> {
  const released = await retrying(() =>
    db.$transaction(async (tx) => {
      await tx.gpuLease.deleteMany({ where: { allocationId } });
      const { count } = await tx.allocation.updateMany({ where: { id: allocationId, state: 'active' }, data: { state: 'released', releasedAt: at, releaseReason: reason } });
      return count > 0;
    }),
  );
  holdersChanged();
  return released;
}
