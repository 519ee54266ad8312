import type { PrismaClient } from './client.js';

export interface MinuteRow {
  host: string;
  gpuIndex: number;
  at: Date;
  utilization: number | null;
  utilizationMax: number | null;
  memoryUsedMiB: number | null;
  samples: number;
}

/** Keeps GPU minute means; a minute already recorded (another process, a restart) is merged, not duplicated. */
export async function recordMinutes(db: PrismaClient, rows: MinuteRow[]): Promise<void> {
  for (const r of rows) {
    const key = { hostName_gpuIndex_at: { hostName: r.host, gpuIndex: r.gpuIndex, at: r.at } };
    const data = { utilization: r.utilization, utilizationMax: r.utilizationMax, memoryUsedMiB: r.memoryUsedMiB, samples: r.samples };
    await db.gpuSample.upsert({ where: key, create: { hostName: r.host, gpuIndex: r.gpuIndex, at: r.at, ...data }, update: data });
  }
}

/** Minute means of some GPUs over [from, to), oldest first. */
export function minutesOf(db: PrismaClient, hostName: string, gpuIndexes: number[], from: Date, to: Date) {
  return db.gpuSample.findMany({ where: { hostName, gpuIndex: { in: gpuIndexes }, at: { gte: from, lt: to } }, orderBy: { at: 'asc' } });
}

/** Drops minute means older than the retention; returns how many went. */
export async function pruneMinutes(db: PrismaClient, before: Date): Promise<number> {
  const { count } = await db.gpuSample.deleteMany({ where: { at: { lt: before } } });
  return count;
}
