// Two bot processes on one database (a rolling deploy, a second start by mistake): only the
// holder of the scheduler lease runs job rounds; the other takes over when the holder dies.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { testDatabaseUrl } from '../support/database.js';
import { waitFor } from '../support/wait.js';

interface Round {
  app: string;
  job: string;
  at: number;
}

describe('one scheduler, whatever the number of bot processes', () => {
  let dir: string;
  const rounds: Round[] = [];
  const apps: App[] = [];

  async function start(name: string, url: string): Promise<App> {
    const log = createLogger(
      'info',
      new Writable({
        write(chunk, _enc, cb) {
          for (const line of String(chunk).split('\n').filter(Boolean)) {
            const e = JSON.parse(line) as { msg: string; job?: string; time: number };
            if (e.msg === 'job done' && e.job) rounds.push({ app: name, job: e.job, at: e.time });
          }
          cb();
        },
      }),
    );
    // Every job every second; hosts that do not answer, so each round is quick.
    const schedule = Object.fromEntries(['reconcile', 'expiry', 'cleanup', 'quota', 'unmanaged', 'idle', 'queue'].map((j) => [j, '* * * * * *']));
    const config = parseConfig({ hosts: [{ name: 'nowhere', dockerSocket: join(dir, 'no-docker.sock') }], schedule });
    const app = await App.create({ config, log, databaseUrl: url, reconcileOnStart: false, leaseTiming: { ttlMs: 3000, heartbeatMs: 1000 } });
    apps.push(app);
    return app;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpb-lease-'));
  });
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  it('each round runs once while two processes share a database, and the other takes over when the holder dies', async () => {
    const url = await testDatabaseUrl(dir, 'lease');
    const a = await start('a', url);
    const b = await start('b', url);
    a.startJobs();
    await waitFor(() => rounds.some((r) => r.app === 'a'), { what: 'a first round' });
    b.startJobs();
    await new Promise((r) => setTimeout(r, 15_000));

    const queueRounds = rounds.filter((r) => r.job === 'queue');
    expect(queueRounds.length).toBeGreaterThanOrEqual(8);
    expect(new Set(rounds.map((r) => r.app))).toEqual(new Set(['a']));
    // Each second's round once: no two rounds of a job in the same tick.
    const ticks = queueRounds.map((r) => Math.floor(r.at / 1000));
    expect(new Set(ticks).size).toBe(ticks.length);

    // a dies as kill -9 would have it: no release, its timers simply stop.
    (a as unknown as { scheduler: { stop(): void } }).scheduler.stop();
    const diedAt = Date.now();
    const takeover = await waitFor(() => rounds.find((r) => r.app === 'b'), { what: 'b takes over', timeoutMs: 15_000 });
    // Not before a's lease ran out; no round of a after b began.
    expect(takeover.at - diedAt).toBeGreaterThanOrEqual(1000);
    expect(takeover.at - diedAt).toBeLessThan(3000 + 2 * 1000 + 2000);
    await new Promise((r) => setTimeout(r, 4000));
    expect(rounds.filter((r) => r.app === 'a' && r.at >= takeover.at)).toEqual([]);
    const after = rounds.filter((r) => r.job === 'queue' && r.app === 'b').map((r) => Math.floor(r.at / 1000));
    expect(after.length).toBeGreaterThanOrEqual(3);
    expect(new Set(after).size).toBe(after.length);
    expect((await b.lease.current())?.holder).toBe(b.lease.holder);
  });
});
