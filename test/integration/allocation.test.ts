import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { App } from '../../src/app.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { hostileInputs } from '../fixtures/hostile-inputs.js';
import { appFor, chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { CREATING_GRACE_MS } from '../../src/jobs/reconcile.js';
import { testDatabaseUrl } from '../support/database.js';

const containersOn = async (bed: Bed, host: string) =>
  (await bed.dockerCli(host, ['ps', '-a', '--format', '{{.Names}} {{.Label "gpubot.gpus"}}'])).stdout.trim().split('\n').filter(Boolean).sort();

describe('allocation under contention and failure', () => {
  let bed: Bed;
  let app: App;

  beforeAll(async () => {
    bed = await startBed({ hosts: 3, gpusPerHost: 4 });
    app = await appFor(bed);
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('30 concurrent runs from 10 users on 12 GPUs: exactly 12 succeed, no GPU twice, nothing leaks', async () => {
    const users = Array.from({ length: 10 }, (_, i) => `user${i}`);
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => chat(app, users[i % 10]!, `run --gpus 1 --name job${i}`)));
    const ok = results.filter((r) => r.reply.tone === 'success');
    const refused = results.filter((r) => r.reply.tone === 'error');
    expect(ok).toHaveLength(12);
    expect(refused).toHaveLength(18);
    for (const r of refused) expect(r.text).toMatch(/No GPUs for you right now|no host has 1 free GPUs/);

    // In the database: 12 leases, each (host, GPU) once, 12 active allocations.
    const leases = await app.db.gpuLease.findMany();
    expect(leases).toHaveLength(12);
    expect(new Set(leases.map((l) => `${l.hostName}:${l.gpuIndex}`)).size).toBe(12);
    expect(await app.db.allocation.count({ where: { state: 'active' } })).toBe(12);
    expect(await app.db.container.count({ where: { state: 'running' } })).toBe(12);

    // On the hosts: 12 containers, 4 per host, GPUs 0-3 each once.
    for (const h of ['h1', 'h2', 'h3']) {
      const list = await containersOn(bed, h);
      expect(list).toHaveLength(4);
      expect(list.map((l) => l.split(' ')[1]).sort()).toEqual(['0', '1', '2', '3']);
    }
    expect((await app.reconcile()).removedOrphans).toEqual([]);
  }, 90_000); // 30 launches on a shared 2-core machine: correctness, not speed (that is bench/engine-two.ts)

  it('a host that goes down keeps its allocations until it says the container is gone', async () => {
    const h2 = await app.db.container.findFirst({ where: { hostName: 'h2', state: 'running' }, include: { user: true } });
    const owner = h2!.user.handle;
    await bed.stopSshd('h2');
    await waitFor(() => app.pool.get('h2')!.connection().state !== 'up', { what: 'h2 down' });

    const ls = await chat(app, owner, 'ls');
    expect(ls.reply.tone).toBe('info');
    expect(ls.text).toMatch(new RegExp(`${h2!.name}\\s+h2\\s+\\d\\s+unknown \\(host down\\)`));
    // Reconciliation does not touch it, and its GPU is not handed out.
    const report = await app.reconcile();
    expect(report.skippedHosts).toEqual(['h2']);
    expect(await app.db.gpuLease.count({ where: { hostName: 'h2' } })).toBe(4);
    const stop = await chat(app, owner, `stop ${h2!.name}`);
    expect(stop.text).toContain('h2 is down');
    expect(await app.db.container.findUnique({ where: { id: h2!.id } })).toMatchObject({ state: 'running' });

    // While down, its container disappears; once back, the host says so and the GPU is freed.
    await bed.dockerCli('h2', ['rm', '-f', h2!.name]);
    await bed.startSshd('h2');
    await waitFor(() => app.pool.get('h2')!.connection().state === 'up', { timeoutMs: 30_000, what: 'h2 back' });
    const back = await app.reconcile();
    expect(back.goneContainers).toEqual([`h2/${h2!.name}`]);
    expect(await app.db.gpuLease.count({ where: { hostName: 'h2' } })).toBe(3);
  });

  it(`refuses ${hostileInputs.length} hostile inputs through the console, and the hosts do not change`, async () => {
    const before = await Promise.all(['h1', 'h2', 'h3'].map((h) => containersOn(bed, h)));
    const leasesBefore = await app.db.gpuLease.count();
    for (const input of hostileInputs) {
      const { reply, text } = await chat(app, 'mallory', input);
      expect(reply.tone, input).toBe('error');
      expect(text.length, input).toBeGreaterThan(20);
    }
    expect(await Promise.all(['h1', 'h2', 'h3'].map((h) => containersOn(bed, h)))).toEqual(before);
    expect(await app.db.gpuLease.count()).toBe(leasesBefore);
    expect(await app.db.container.count({ where: { user: { handle: 'mallory' } } })).toBe(0);
  });
});

describe('a bot killed between container create and database commit', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
  });
  afterAll(async () => bed?.teardown());

  it('leaves no GPU held by nothing and no managed container unknown, after a restart', async () => {
    const configPath = join(bed.baseDir, 'gpubot.yaml');
    await writeFile(configPath, stringify(bed.config()));
    const env = { ...process.env, GPUBOT_CONFIG: configPath, DATABASE_URL: await testDatabaseUrl(bed.baseDir, 'crash'), GPUBOT_FAILPOINT: 'after-container-create' };
    const signal = await new Promise<string | null>((resolve) => {
      const child = execFile('node', ['--import', 'tsx', 'src/cli/main.ts', 'chat', '--user', 'alice', 'run --gpus 2 --name crashy'], { env });
      child.on('exit', (_code, sig) => resolve(sig));
    });
    expect(signal).toBe('SIGKILL');
    // The container exists on the host, the allocation holds two GPUs, the row says "creating".
    expect(await containersOn(bed, 'h1')).toEqual(['crashy 0,1']);

    // Start the bot again on the same database.
    const again = await (
      await import('../../src/app.js')
    ).App.create({
      config: (await import('../../src/config/load.js')).parseConfig(bed.config()),
      log: (await import('../../src/log.js')).silentLogger(),
      databaseUrl: env.DATABASE_URL,
      reconcileOnStart: false,
      // A "creating" row counts as abandoned only past the grace period (another process may own it).
      now: () => new Date(Date.now() + CREATING_GRACE_MS + 60_000),
    });
    try {
      expect(await again.db.gpuLease.count()).toBe(2);
      expect(await again.db.container.findUnique({ where: { name: 'crashy' } })).toMatchObject({ state: 'creating' });
      const report = await again.reconcile();
      expect(report.removedOrphans).toEqual(['h1/crashy']);
      expect(await again.db.gpuLease.count()).toBe(0);
      expect(await again.db.allocation.count({ where: { state: 'active' } })).toBe(0);
      expect(await containersOn(bed, 'h1')).toEqual([]);
      // And the GPUs are usable again, under the same name.
      const r = await chat(again, 'alice', 'run --gpus 2 --name crashy');
      expect(r.reply.tone, r.text).toBe('success');
    } finally {
      await again.close();
    }
  });
});
