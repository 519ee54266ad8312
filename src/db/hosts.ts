import type { HostSnapshot } from '../core/cluster.js';
import type { PrismaClient } from './client.js';

/** Makes sure every configured host has its row; hosts removed from the config keep theirs (history). */
export async function syncHosts(db: PrismaClient, names: string[]): Promise<void> {
  for (const name of names) await db.host.upsert({ where: { name }, create: { name }, update: {} });
}

export async function drainedHosts(db: PrismaClient): Promise<Set<string>> {
  return new Set((await db.host.findMany({ where: { drained: true }, select: { name: true } })).map((h) => h.name));
}

/** Records GPU inventory when it changed since the last time this process saw it. */
export class InventoryRecorder {
  private readonly seen = new Map<string, string>();

  constructor(private readonly db: PrismaClient) {}

  async record(snapshots: HostSnapshot[]): Promise<void> {
    // Marked seen before writing, all at once: 100 concurrent `status` write a change once, not 100 times.
    const changed: { h: HostSnapshot & { gpus: NonNullable<HostSnapshot['gpus']> }; signature: string }[] = [];
    for (const h of snapshots) {
      if (!h.gpus) continue;
      const signature = h.gpus.map((g) => `${g.index}:${g.uuid}:${g.model}:${g.memoryTotalMiB}`).join('|');
      if (this.seen.get(h.name) === signature) continue;
      this.seen.set(h.name, signature);
      changed.push({ h: { ...h, gpus: h.gpus }, signature });
    }
    for (const { h, signature } of changed) {
      try {
        const host = await this.db.host.upsert({ where: { name: h.name }, create: { name: h.name }, update: {} });
        const now = new Date();
        await this.db.$transaction([
          this.db.gpu.deleteMany({ where: { hostId: host.id, index: { notIn: h.gpus.map((g) => g.index) } } }),
          ...h.gpus.map((g) => {
            const data = { uuid: g.uuid, model: g.model, memoryTotalMiB: g.memoryTotalMiB ?? 0, lastSeenAt: now };
            return this.db.gpu.upsert({ where: { hostId_index: { hostId: host.id, index: g.index } }, create: { hostId: host.id, index: g.index, ...data }, update: data });
          }),
        ]);
      } catch (err) {
        // Written next time.
        if (this.seen.get(h.name) === signature) this.seen.delete(h.name);
        throw err;
      }
    }
  }
}
