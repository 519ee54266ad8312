import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Reply } from '../../src/core/reply.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { testDatabaseUrl } from '../support/database.js';

const IDLE = `-- sh -c "trap 'exit 0' TERM; sleep 9999 & wait"`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Real time, short durations: the live monitor samples every 0.5 s; idle means every sample over
 * idle.warnAfter (6 s) below the threshold with memory not growing, and no gap.
 */
describe('idle GPU reclaim over the sample window', () => {
  let bed: Bed;
  let app: App;
  const inbox: { to: string; reply: Reply }[] = [];
  const runJob = async () => (await chat(app, 'boss', 'admin run-job idle')).reply.blocks[0];
  const running = async (name: string) => (await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Running}}', name])).stdout.trim();
  const idleFresh = () => waitFor(() => (app.pool.monitor('h1')!.sampleAge() ?? Infinity) < 1000, { what: 'a fresh sample' });

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    const config = parseConfig(bed.config({ admins: ['boss'], telemetry: { intervalMs: 500 }, idle: { threshold: 5, warnAfter: '6s', stopAfter: '12s', keepFor: '4h' } }));
    app = await App.create({ config, log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'idle'), reconcileOnStart: false });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    app.registerNotifier('console', async (to, reply) => void inbox.push({ to, reply }));
    // GPU 0 works hard; 1 works until the first test, then sits idle; 2 idles at 0 % while its memory grows; GPU 3's driver cannot say.
    await bed.updateGpuState('h1', (s) => {
      s.gpus[0]!.utilization = 90;
      s.gpus[1]!.utilization = 60;
      s.gpus[2]!.utilization = 0;
      s.gpus[2]!.memoryUsedMiB = 1000;
      s.gpus[3]!.utilization = '[N/A]';
    });
    for (const [user, name] of [
      ['alice', 'busy1'],
      ['bob', 'idle1'],
      ['carol', 'grow1'],
      ['dave', 'blind1'],
    ] as const) {
      const r = await chat(app, user, `run --name ${name} --hours 12 ${IDLE}`);
      expect(r.reply.title, JSON.stringify(r.reply.blocks)).toMatch(new RegExp(`^${name} is running on h1`));
    }
    await idleFresh();
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('asks only the owner of a container idle for warnAfter: never a busy, growing or unmeasured one', async () => {
    await bed.updateGpuState('h1', (s) => (s.gpus[1]!.utilization = 0));
    await waitFor(() => app.pool.monitor('h1')!.history().at(-1)?.gpus?.get(1)?.utilization === 0, { what: 'GPU 1 idle' });
    // One rewrite of the fake's answers mid-way (each rewrite risks a torn read, which is rightly "unknown").
    await sleep(4000);
    await bed.updateGpuState('h1', (s) => (s.gpus[2]!.memoryUsedMiB = 30_000));
    await sleep(4000);
    expect(await runJob()).toEqual({ type: 'text', text: '1 owner(s) asked, 0 idle container(s) stopped' });
    expect(await runJob()).toEqual({ type: 'text', text: '0 owner(s) asked, 0 idle container(s) stopped' });
    expect(inbox.map((m) => `${m.to}: ${m.reply.title}`)).toEqual([expect.stringMatching(/^bob: h1:1 \(idle1\) idle for \d+ min$/)]);
    await bed.updateGpuState('h1', (s) => (s.gpus[2]!.utilization = 50)); // grow1 gets to work
    const actions = inbox[0]!.reply.blocks.find((b) => b.type === 'actions');
    expect(actions).toMatchObject({
      actions: [
        { label: 'Keep 4 h', command: 'keep idle1' },
        { label: 'Stop now', command: 'stop idle1' },
      ],
    });
  }, 60_000);

  it('stops an unanswered one at stopAfter (never removes it)', async () => {
    await waitFor(async () => (await runJob()) && (await app.db.container.findUnique({ where: { name: 'idle1' } }))?.state === 'stopped', {
      timeoutMs: 20_000,
      intervalMs: 1000,
      what: 'idle1 stopped',
    });
    expect(await running('idle1')).toBe('false');
    await waitFor(() => inbox.some((m) => m.to === 'bob' && m.reply.title.startsWith('idle1 was stopped: its GPUs were idle for')), { what: 'stop notice' });
    expect(await running('busy1')).toBe('true');
    expect(await running('blind1')).toBe('true');
  }, 60_000);

  it('takes a gap in the samples (the connection and its sampling channel gone) as unknown: the idle clock restarts', async () => {
    expect((await chat(app, 'erin', `run --name idle2 --hours 12 ${IDLE}`)).reply.title).toMatch(/^idle2 is running on h1/);
    await sleep(4000);
    await bed.stopSshd('h1');
    await sleep(2500);
    await bed.startSshd('h1');
    await waitFor(() => app.pool.monitor('h1')!.fresh(1000), { timeoutMs: 30_000, what: 'samples again' });
    // 4 s idle before the gap and ~3 s after it: idle for 7 s of the last 9, but not without a break.
    await sleep(3000);
    expect(await runJob()).toEqual({ type: 'text', text: '0 owner(s) asked, 0 idle container(s) stopped' });
    expect(inbox.filter((m) => m.to === 'erin')).toEqual([]);
    // Unbroken for warnAfter after the gap: now it is idle.
    await sleep(4000);
    expect(await runJob()).toEqual({ type: 'text', text: '1 owner(s) asked, 0 idle container(s) stopped' });
  }, 90_000);

  it('takes a gap from a killed sampling channel as unknown: restarted, and the idle clock restarts', async () => {
    await chat(app, 'erin', 'stop idle2');
    expect((await chat(app, 'frank', `run --name idle3 --hours 12 ${IDLE}`)).reply.title).toMatch(/^idle3 is running on h1/);
    await sleep(4000);
    // Every sampling loop (the first and each restart) is killed by its first nvidia-smi, before it gives a sample.
    const monitor = app.pool.monitor('h1')!;
    const restarts = monitor.restarts.sampler;
    const bin = path.join(bed.host('h1').dir, 'bin');
    await rename(path.join(bin, 'nvidia-smi'), path.join(bin, 'nvidia-smi.real'));
    await writeFile(path.join(bin, 'nvidia-smi'), '#!/bin/sh\nkill -9 $PPID\nexit 1\n', { mode: 0o755 });
    try {
      await sleep(2500);
    } finally {
      await rename(path.join(bin, 'nvidia-smi.real'), path.join(bin, 'nvidia-smi'));
    }
    expect(monitor.restarts.sampler).toBeGreaterThan(restarts);
    await waitFor(() => monitor.fresh(1000), { timeoutMs: 30_000, what: 'samples again' });
    // 4 s idle before the gap and ~3 s after it: not idle for warnAfter (6 s) without a break.
    await sleep(3000);
    await runJob();
    expect(inbox.filter((m) => m.to === 'frank')).toEqual([]);
    // Unbroken for warnAfter after the gap: now it is idle.
    await sleep(4000);
    await runJob();
    expect(inbox.filter((m) => m.to === 'frank')).toHaveLength(1);
  }, 90_000);
});
