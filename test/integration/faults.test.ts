// Faults: kill -9 of the bot during a launch, a stop and a reconciliation; a dockerd restart; an
// sshd restart. After each, once reconciled: no orphan container, no leaked GPU lease, and no
// running user container removed.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { CREATING_GRACE_MS } from '../../src/jobs/reconcile.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { testDatabaseUrl } from '../support/database.js';
import { waitFor } from '../support/wait.js';

const BUSYBOX = 'gpubot-test/busybox:latest';

describe('faults leave no orphan, no leaked lease, and remove no running container', () => {
  let bed: Bed;
  let app: App;
  let env: NodeJS.ProcessEnv;
  let keeperId: string;

  /** One gpubot chat command in its own process, killed at a failpoint. */
  const killedAt = (user: string, message: string, failpoint: string) =>
    new Promise<string | null>((resolve) => {
      execFile('node', ['--import', 'tsx', 'src/cli/main.ts', 'chat', '--user', user, message], { env: { ...env, GPUBOT_FAILPOINT: failpoint } }, (err, stdout) => {
        const sig = (err as { signal?: string } | null)?.signal ?? null;
        resolve(sig ?? `exited without being killed: ${stdout}`);
      });
    });

  const managed = async (host: string) =>
    (await bed.dockerCli(host, ['ps', '-a', '--no-trunc', '--filter', 'label=gpubot.managed=true', '--format', '{{.ID}} {{.State}} {{.Names}}'])).stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [id, state, name] = l.split(' ');
        return { id: id!, running: state === 'running', name: name! };
      });

  /** What must hold after every fault, once reconciled. */
  async function consistent(): Promise<void> {
    const rows = await app.db.container.findMany({ where: { state: { not: 'removed' } }, include: { allocation: { include: { leases: true } } } });
    for (const host of ['h1', 'h2']) {
      const live = await managed(host);
      const mine = rows.filter((r) => r.hostName === host);
      // No orphan: every managed container is some row's, and every row's container exists.
      expect(live.map((c) => c.id).sort(), host).toEqual(mine.map((r) => r.dockerId!).sort());
      for (const r of mine) {
        const c = live.find((x) => x.id === r.dockerId)!;
        expect(r.state, r.name).toBe(c.running ? 'running' : 'stopped');
        // A running one holds its GPUs; a stopped one holds none.
        expect(r.allocation?.leases.map((l) => l.gpuIndex).sort() ?? [], r.name).toEqual(c.running ? r.gpuIndexes.split(',').map(Number).sort() : []);
      }
    }
    // No leaked lease: every lease belongs to a running container's allocation (or a reservation).
    const leases = await app.db.gpuLease.findMany({ include: { allocation: { include: { container: true } } } });
    for (const l of leases) expect(l.allocation.kind === 'reservation' || l.allocation.container?.state === 'running', `${l.hostName}:${l.gpuIndex}`).toBe(true);
    expect(await app.db.allocation.count({ where: { state: 'active', kind: 'container', container: null } })).toBe(0);
  }

  const keeperRunning = async () => {
    const c = (await managed('h1')).find((x) => x.id === keeperId);
    return c?.running ?? false;
  };

  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    const raw = bed.config({ admins: ['boss'] });
    const configPath = join(bed.baseDir, 'gpubot.yaml');
    await writeFile(configPath, stringify(raw));
    const url = await testDatabaseUrl(bed.baseDir, 'faults');
    env = { ...process.env, GPUBOT_CONFIG: configPath, DATABASE_URL: url };
    // The bot after the crash, its clock past the launch grace period (an unfinished launch elsewhere looks abandoned only then).
    app = await App.create({
      config: parseConfig(raw),
      log: silentLogger(),
      databaseUrl: url,
      reconcileOnStart: false,
      now: () => new Date(Date.now() + CREATING_GRACE_MS + 60_000),
    });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'SSH connections' });
    const r = await chat(app, 'bob', `run --host h1 --name keeper --image ${BUSYBOX}`);
    expect(r.reply.tone, r.text).toBe('success');
    keeperId = (await app.db.container.findUniqueOrThrow({ where: { name: 'keeper' } })).dockerId!;
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it("kill -9 during a launch (container made, not recorded): its container goes, its GPUs come back; nobody else's is touched", async () => {
    expect(await killedAt('alice', `run --host h1 --name crashy --image ${BUSYBOX}`, 'after-container-create')).toBe('SIGKILL');
    expect((await managed('h1')).map((c) => c.name).sort()).toEqual(['crashy', 'keeper']);
    const report = await app.reconcile();
    expect(report.removedOrphans).toEqual(['h1/crashy']);
    expect(report.adopted).toEqual([]);
    expect(await keeperRunning()).toBe(true);
    await consistent();
  });

  it('kill -9 during a stop (stopped on the host, not recorded): the GPUs come back, the container stays', async () => {
    expect((await chat(app, 'alice', `run --host h1 --name stopper --image ${BUSYBOX}`)).reply.tone).toBe('success');
    expect(await killedAt('alice', 'stop stopper', 'after-container-stop')).toBe('SIGKILL');
    expect(await app.db.container.findUniqueOrThrow({ where: { name: 'stopper' } })).toMatchObject({ state: 'running' });
    const report = await app.reconcile();
    expect(report.exitedContainers).toEqual(['h1/stopper']);
    expect(report.removedOrphans).toEqual([]);
    expect((await managed('h1')).find((c) => c.name === 'stopper')).toMatchObject({ running: false });
    expect(await keeperRunning()).toBe(true);
    await consistent();
  });

  it('kill -9 during a reconciliation that adopts: the next one finishes it, each container adopted once', async () => {
    // Two containers from before installations had ids, unknown to this database.
    for (const [name, gpu] of [
      ['legacy1', '2'],
      ['legacy2', '3'],
    ] as const) {
      const made = await bed.dockerCli('h2', [
        'run',
        '-d',
        '--name',
        name,
        '--label',
        'gpubot.managed=true',
        '--label',
        'gpubot.owner=carol',
        '--label',
        `gpubot.gpus=${gpu}`,
        '--label',
        `gpubot.name=${name}`,
        BUSYBOX,
        'sleep',
        '3600',
      ]);
      expect(made.code, made.stderr).toBe(0);
    }
    expect(await killedAt('boss', 'admin run-job reconcile', 'during-reconcile')).toBe('SIGKILL');
    expect(await app.db.container.count({ where: { name: { in: ['legacy1', 'legacy2'] } } })).toBe(1);
    const report = await app.reconcile();
    expect(report.adopted).toHaveLength(1);
    expect(report.removedOrphans).toEqual([]);
    expect(
      (await managed('h2'))
        .filter((c) => c.running)
        .map((c) => c.name)
        .sort(),
    ).toEqual(['legacy1', 'legacy2']);
    expect(await app.db.container.count({ where: { name: { in: ['legacy1', 'legacy2'] } } })).toBe(2);
    expect(await keeperRunning()).toBe(true);
    await consistent();
  });

  it('a dockerd restart: containers it stopped are recorded stopped (GPUs back), none removed, and start again', async () => {
    await bed.restartDockerd('h1');
    await waitFor(
      async () =>
        await app.pool
          .get('h1')!
          .runtime.listManaged()
          .then(
            () => true,
            () => false,
          ),
      { what: 'dockerd back', timeoutMs: 60_000 },
    );
    const report = await app.reconcile();
    expect(report.exitedContainers).toContain('h1/keeper');
    expect(report.removedOrphans).toEqual([]);
    expect(report.goneContainers).toEqual([]);
    expect((await managed('h1')).map((c) => c.name).sort()).toEqual(['keeper', 'stopper']);
    await consistent();
    const again = await chat(app, 'bob', 'start keeper');
    expect(again.reply.tone, again.text).toBe('success');
    expect(await keeperRunning()).toBe(true);
    await consistent();
  });

  it('an sshd restart: nothing is decided while the host cannot answer, and nothing changes after', async () => {
    const leases = await app.db.gpuLease.count();
    await bed.stopSshd('h1');
    await waitFor(() => app.pool.get('h1')!.connection().state !== 'up', { what: 'h1 down' });
    const during = await app.reconcile();
    expect(during.skippedHosts).toContain('h1');
    expect(await app.db.gpuLease.count()).toBe(leases);
    await bed.startSshd('h1');
    await waitFor(() => app.pool.get('h1')!.connection().state === 'up', { what: 'h1 back', timeoutMs: 60_000 });
    const after = await app.reconcile();
    expect(after.removedOrphans).toEqual([]);
    expect(after.exitedContainers).toEqual([]);
    expect(after.goneContainers).toEqual([]);
    expect(await app.db.gpuLease.count()).toBe(leases);
    expect(await keeperRunning()).toBe(true);
    await consistent();
  });
});
