import type { Held } from '../core/policy/usage.js';
import type { PrismaClient } from './client.js';

/** One of gpubot's jobs as the cluster lists it now. */
export interface ClusterJobSeen {
  jobId: string;
  handle: string;
  gpus: number;
  submittedAt?: Date;
  /** Set once it has started (not for a pending job's estimate). */
  startedAt?: Date;
  /** Set once it has ended. */
  endedAt?: Date;
}

const isUniqueViolation = (err: unknown): boolean => (err as { code?: string }).code === 'P2002';

/** A job just submitted: it counts from its start, which squeue tells later. */
export async function recordClusterJob(db: PrismaClient, cluster: string, job: ClusterJobSeen & { submittedAt: Date }): Promise<void> {
  try {
    await db.clusterJob.create({ data: { cluster, jobId: job.jobId, handle: job.handle, gpus: job.gpus, submittedAt: job.submittedAt } });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
  }
}

/**
 * Brings the records in line with a full listing of gpubot's jobs taken at `listedAt`: new ones
 * are added (reserve's allocations too), starts and ends are set. A record Slurm no longer lists
 * ended by then at the latest (it forgets ended jobs after MinJobAge).
 */
export async function syncClusterJobs(db: PrismaClient, cluster: string, seen: ClusterJobSeen[], listedAt: Date): Promise<void> {
  const known = new Map((await db.clusterJob.findMany({ where: { cluster, OR: [{ endedAt: null }, { jobId: { in: seen.map((j) => j.jobId) } }] } })).map((r) => [r.jobId, r]));
  for (const job of seen) {
    const row = known.get(job.jobId);
    if (!row) {
      try {
        await db.clusterJob.create({
          data: {
            cluster,
            jobId: job.jobId,
            handle: job.handle,
            gpus: job.gpus,
            submittedAt: job.submittedAt ?? job.startedAt ?? listedAt,
            startedAt: job.startedAt ?? null,
            endedAt: job.endedAt ?? null,
          },
        });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      continue;
    }
    const startedAt = row.startedAt ?? job.startedAt;
    const endedAt = row.endedAt ?? job.endedAt;
    if (startedAt?.getTime() !== row.startedAt?.getTime() || endedAt?.getTime() !== row.endedAt?.getTime())
      await db.clusterJob.update({ where: { id: row.id }, data: { startedAt: startedAt ?? null, endedAt: endedAt ?? null } });
  }
  const listed = new Set(seen.map((j) => j.jobId));
  // Only records older than the listing: one submitted meanwhile is not in it yet.
  const gone = [...known.values()].filter((r) => r.endedAt === null && !listed.has(r.jobId) && r.submittedAt < listedAt);
  for (const r of gone) await db.clusterJob.update({ where: { id: r.id }, data: { endedAt: listedAt } });
}

/** The GPUs a user's cluster jobs held from their start, for jobs that overlap [from, now). */
export async function clusterJobsHeld(db: PrismaClient, handle: string, from: Date, now: Date): Promise<Held[]> {
  const rows = await db.clusterJob.findMany({ where: { handle, startedAt: { not: null, lt: now }, OR: [{ endedAt: null }, { endedAt: { gt: from } }] } });
  return rows.map((r) => ({ gpus: r.gpus, from: r.startedAt!, until: r.endedAt }));
}
