// Reconciliation never destroys what it does not own: a new database, a restored backup and
// another installation all leave users' running containers alone.
import { copyFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { createPostgresDatabase, testDatabaseKind, testDatabaseUrl } from '../support/database.js';
import { waitFor } from '../support/wait.js';

const running = async (bed: Bed, host: string) =>
  (await bed.dockerCli(host, ['ps', '--format', '{{.Names}} {{.Label "gpubot.owner"}} {{.Label "gpubot.gpus"}}'])).stdout.trim().split('\n').filter(Boolean).sort();

async function open(bed: Bed, url: string): Promise<App> {
  const app = await App.create({ config: parseConfig(bed.config({ admins: ['boss'] })), log: silentLogger(), databaseUrl: url, reconcileOnStart: false });
  await waitFor(() => app.pool.all().every((h) => h.connection().state !== 'connecting'), { what: 'SSH connections' });
  return app;
}

/** A copy of a closed database, as a backup restored later would be. */
async function copyDatabase(bed: Bed, url: string, name: string): Promise<string> {
  if (testDatabaseKind() === 'sqlite') {
    const target = `${bed.baseDir}/${name}.db`;
    await copyFile(url.slice('file:'.length), target);
    return `file:${target}`;
  }
  const copy = new URL(await createPostgresDatabase(name));
  const admin = new pg.Client({ connectionString: process.env.GPUBOT_TEST_POSTGRES_URL });
  await admin.connect();
  try {
    const db = copy.pathname.slice(1);
    await admin.query(`DROP DATABASE "${db}"`);
    await admin.query(`CREATE DATABASE "${db}" TEMPLATE "${new URL(url).pathname.slice(1)}"`);
  } finally {
    await admin.end();
  }
  return copy.toString();
}

describe('reconciliation adopts, it does not destroy', () => {
  let bed: Bed;
  let first: App;
  let firstUrl: string;

  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    firstUrl = await testDatabaseUrl(bed.baseDir, 'first');
    first = await open(bed, firstUrl);
    for (const [user, args] of [
      ['alice', '--host h1 --gpus 2 --name exp1'],
      ['bob', '--host h2 --name bobs'],
    ] as const) {
      const r = await chat(first, user, `run ${args}`);
      expect(r.reply.tone, r.text).toBe('success');
    }
  });
  afterAll(async () => {
    await first?.close();
    await bed?.teardown();
  });

  it('labels every container with the installation id, made once and kept in the database', async () => {
    expect(first.instanceId).toMatch(/^[0-9a-f]{32}$/);
    const label = (await bed.dockerCli('h1', ['inspect', '-f', '{{index .Config.Labels "gpubot.instance"}}', 'exp1'])).stdout.trim();
    expect(label).toBe(first.instanceId);
    expect((await first.db.installation.findMany()).map((i) => i.instanceId)).toEqual([first.instanceId]);
  });

  it('a fresh database removes nothing, and shows every container held by its owner', async () => {
    const before = [...(await running(bed, 'h1')), ...(await running(bed, 'h2'))];
    expect(before).toEqual(['exp1 alice 0,1', 'bobs bob 0']);
    const fresh = await open(bed, await testDatabaseUrl(bed.baseDir, 'fresh'));
    try {
      expect(fresh.instanceId).not.toBe(first.instanceId);
      const report = await fresh.reconcile();
      expect(report.removedOrphans).toEqual([]);
      expect(report.otherInstallations.sort()).toEqual(['h1/exp1', 'h2/bobs']);
      expect([...(await running(bed, 'h1')), ...(await running(bed, 'h2'))]).toEqual(before);
      const status = await chat(fresh, 'carol', 'status');
      expect(status.text).toContain('alice (exp1, other gpubot)');
      expect(status.text).toContain('bob (bobs, other gpubot)');
      expect(status.reply.title).toMatch(/^5\/8 GPUs free/);
      // Their GPUs are not handed out: h1 has only 2 free.
      expect((await chat(fresh, 'carol', 'run --host h1 --gpus 3')).text).toContain('h1 has 2 free GPUs of 4');
      // And a second round, as the scheduler would do every minute, still touches nothing.
      expect((await fresh.reconcile()).removedOrphans).toEqual([]);
      expect([...(await running(bed, 'h1')), ...(await running(bed, 'h2'))]).toEqual(before);
    } finally {
      await fresh.close();
    }
  });

  it('an older backup restored adopts what was made after it: owner, GPUs, image, end time; admins told', async () => {
    await first.close();
    const backupUrl = await copyDatabase(bed, firstUrl, 'backup');
    first = await open(bed, firstUrl);
    const late = await chat(first, 'dave', 'run --host h2 --gpus 2 --hours 5 --name late --image gpubot-test/busybox:latest');
    expect(late.reply.tone, late.text).toBe('success');
    const endsAt = (await first.db.container.findUniqueOrThrow({ where: { name: 'late' } })).endsAt!;
    await first.close();

    const restored = await open(bed, backupUrl);
    try {
      expect(restored.instanceId).toBe(first.instanceId);
      const told: string[] = [];
      restored.registerNotifier('console', async (who, reply) => void told.push(`${who}: ${reply.title}`));
      await restored.actor('boss');
      const report = await restored.reconcile();
      expect(report.removedOrphans).toEqual([]);
      expect(report.adopted).toEqual(['h2/late']);
      expect(await running(bed, 'h2')).toEqual(['bobs bob 0', 'late dave 1,2']);
      const row = await restored.db.container.findUniqueOrThrow({ where: { name: 'late' }, include: { user: true, allocation: { include: { leases: true } } } });
      expect(row).toMatchObject({ state: 'running', hostName: 'h2', gpuIndexes: '1,2', image: 'gpubot-test/busybox:latest', endsAt });
      expect(row.user.handle).toBe('dave');
      expect(row.allocation!.leases.map((l) => l.gpuIndex).sort()).toEqual([1, 2]);
      await waitFor(() => told.length > 0, { what: 'the admins told' });
      expect(told[0]).toBe('boss: Adopted late on h2: a container the database did not know');
      expect(await restored.db.auditEvent.findFirst({ where: { action: 'adopt', target: 'late' } })).toMatchObject({ actor: 'gpubot', result: 'ok' });
      // Now it is dave's as if he had started it: status, ls, and stop all work.
      expect((await chat(restored, 'carol', 'status h2')).text).toContain('dave (late)');
      expect((await chat(restored, 'dave', 'ls')).text).toMatch(/late\s+h2\s+1,2\s+running/);
      expect((await chat(restored, 'carol', 'run --host h2 --gpus 2')).text).toContain('h2 has 1 free GPU');
      expect((await chat(restored, 'dave', 'stop late')).reply.tone).toBe('success');
      // Adopted once: the next round finds nothing new.
      expect((await restored.reconcile()).adopted).toEqual([]);
    } finally {
      await restored.close();
    }
    first = await open(bed, firstUrl);
  });
});
