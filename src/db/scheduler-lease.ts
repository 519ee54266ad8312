import { randomBytes } from 'node:crypto';
import type { PrismaClient } from './client.js';

export interface LeaseTiming {
  /** How long a lease lasts without a heartbeat: a holder that died is replaced after this. */
  ttlMs: number;
  /** How often the holder renews it (and a waiting process tries to take it). */
  heartbeatMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { ttlMs: 30_000, heartbeatMs: 10_000 };

/**
 * The one row that says which bot process runs the scheduled jobs. Taken or renewed by one
 * conditional UPDATE (holder is me, or the lease has lapsed), so two processes on one database,
 * SQLite or PostgreSQL, never both hold it; the first take creates the row (a unique key).
 */
export class SchedulerLease {
  readonly holder = `${process.pid}-${randomBytes(6).toString('hex')}`;
  /** Until when this process may act as the holder (its own clock, a heartbeat short of the row's end). */
  private validUntil = 0;

  constructor(
    private readonly db: PrismaClient,
    readonly timing: LeaseTiming = DEFAULT_LEASE_TIMING,
    private readonly name = 'scheduler',
  ) {}

  /** Takes or renews the lease; true while this process holds it. */
  async renew(): Promise<boolean> {
    const started = Date.now();
    const now = new Date(started);
    const expiresAt = new Date(started + this.timing.ttlMs);
    const { count } = await this.db.schedulerLease.updateMany({
      where: { name: this.name, OR: [{ holder: this.holder }, { expiresAt: { lt: now } }] },
      data: { holder: this.holder, expiresAt, heartbeatAt: now },
    });
    let ok = count > 0;
    if (!ok) {
      try {
        await this.db.schedulerLease.create({ data: { name: this.name, holder: this.holder, expiresAt, heartbeatAt: now } });
        ok = true;
      } catch (err) {
        if ((err as { code?: string }).code !== 'P2002') throw err;
      }
    }
    // Valid a heartbeat less than the row says, counted from before the write: a slow write or a
    // paused process stops acting before another can take over.
    this.validUntil = ok ? started + this.timing.ttlMs - this.timing.heartbeatMs : 0;
    return ok;
  }

  /** Whether this process may run a job round now. */
  held(): boolean {
    return Date.now() < this.validUntil;
  }

  /** Gives the lease up at once (a clean shutdown), so another process takes over without waiting. */
  async release(): Promise<void> {
    this.validUntil = 0;
    await this.db.schedulerLease.updateMany({ where: { name: this.name, holder: this.holder }, data: { expiresAt: new Date(0) } });
  }

  /** Who holds it now, if anyone (for admins). */
  async current(): Promise<{ holder: string; expiresAt: Date } | null> {
    const row = await this.db.schedulerLease.findUnique({ where: { name: this.name } });
    return row && row.expiresAt.getTime() > Date.now() ? { holder: row.holder, expiresAt: row.expiresAt } : null;
  }
}
