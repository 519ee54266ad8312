import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Reply } from '../../src/core/reply.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { testDatabaseUrl } from '../support/database.js';

const HOUR = 3_600_000;

describe('GPU-hour quota: accounting, notices once per threshold and window, refusal, admin change', () => {
  let bed: Bed;
  let app: App;
  let clock = new Date('2026-11-23T10:00:00Z').getTime(); // a Monday
  const inbox: { to: string; reply: Reply }[] = [];
  let dbUrl: string;
  const open = async () => {
    const config = parseConfig(bed.config({ admins: ['boss'], quotas: { default: { maxGpus: 4, gpuHoursPerWeek: 10, maxHours: 72 }, window: 'calendar' } }));
    const a = await App.create({ config, log: silentLogger(), databaseUrl: dbUrl, now: () => new Date(clock), reconcileOnStart: false });
    await waitFor(() => a.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    a.registerNotifier('console', async (to, reply) => void inbox.push({ to, reply }));
    return a;
  };
  const runJob = async () => (await chat(app, 'boss', 'admin run-job quota')).reply.blocks[0];

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    dbUrl = await testDatabaseUrl(bed.baseDir, 'quota');
    app = await open();
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('notifies at 80 % once, also across a restart', async () => {
    expect((await chat(app, 'alice', 'reserve 2 --hours 48')).reply.tone).toBe('success');
    clock += 4 * HOUR; // 2 GPUs x 4 h = 8 of 10 GPU-hours
    expect(await runJob()).toEqual({ type: 'text', text: '1 quota notice(s) sent' });
    expect(inbox.map((m) => `${m.to}: ${m.reply.title}`)).toEqual(['alice: You have used 80 % of your 10 GPU-hours this week']);
    expect(await runJob()).toEqual({ type: 'text', text: '0 quota notice(s) sent' });
    await app.close();
    app = await open();
    expect(await runJob()).toEqual({ type: 'text', text: '0 quota notice(s) sent' });
  });

  it('at 100 % notifies once and refuses new requests, naming the limit and the numbers', async () => {
    clock += 1 * HOUR; // 10 GPU-hours
    expect(await runJob()).toEqual({ type: 'text', text: '1 quota notice(s) sent' });
    expect(inbox.at(-1)!.reply.title).toBe('You have used all 10 of your GPU-hours this week');
    const r = await chat(app, 'alice', 'run --gpus 1');
    expect(r.reply.title).toBe('Over your quota');
    expect(r.text).toContain('quota gpuHoursPerWeek: you have used 10.0 of your 10 GPU-hours this week');
    const q = await chat(app, 'alice', 'quota');
    expect(q.text).toContain('GPU-hours this week: 10.0 / 10 (100 %)');
    expect(q.text).toContain('ends 2026-11-30 00:00 UTC');
    expect(q.text).toContain('GPUs held now: 2 of at most 4');
    expect((await chat(app, 'bob', 'quota alice')).reply.title).toBe('Only admins can see someone else’s quota');
    expect((await chat(app, 'boss', 'quota alice')).text).toContain('10.0 / 10');
  });

  it('an admin’s change takes effect at once and is audited; non-admins cannot change limits', async () => {
    expect((await chat(app, 'bob', 'admin quota alice --gpu-hours 100')).reply.title).toBe('Only admins can do that');
    const set = await chat(app, 'boss', 'admin quota alice --gpu-hours 100 --max-gpus 3');
    expect(set.reply.title).toBe('New limits for alice: maxGpus 3, gpuHoursPerWeek 100');
    expect(await app.db.auditEvent.findFirst({ where: { action: 'admin quota', target: 'alice' } })).toMatchObject({ actor: 'boss', result: 'ok' });
    expect((await chat(app, 'alice', 'reserve 1')).reply.tone).toBe('success');
    expect((await chat(app, 'alice', 'reserve 1')).text).toContain('quota maxGpus: you hold 3 GPUs and asked for 1 more; your limit is 3 at a time');
  });

  it('a new calendar week starts from zero for what was held before it', async () => {
    await chat(app, 'alice', 'release all');
    clock = new Date('2026-11-30T01:00:00Z').getTime();
    expect((await chat(app, 'alice', 'quota')).text).toContain('GPU-hours this week: 0.0 / 100');
  });
});

describe('quotas.atLimit: queue', () => {
  let bed: Bed;
  let app: App;
  let clock = new Date('2026-11-23T10:00:00Z').getTime();
  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    const config = parseConfig(bed.config({ admins: ['boss'], quotas: { default: { maxGpus: 4, gpuHoursPerWeek: 2, maxHours: 72 }, atLimit: 'queue' } }));
    app = await App.create({ config, log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'q'), now: () => new Date(clock), reconcileOnStart: false });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('queues a run --queue over the GPU-hours and launches it once the limit allows', async () => {
    expect((await chat(app, 'zed', 'reserve 2')).reply.tone).toBe('success');
    clock += 1 * HOUR; // 2 of 2 GPU-hours
    const over = await chat(app, 'zed', 'run --name late');
    expect(over.reply.title).toBe('Over your quota');
    expect(over.reply.code).toBe('over-gpu-hours');
    // Over the GPU-hours with atLimit: queue, the refusal offers to queue the same run.
    const queueIt = over.reply.blocks.flatMap((b) => (b.type === 'actions' ? b.actions : [])).find((a) => a.label === 'Queue it')!;
    expect(queueIt.command).toBe('run --gpus 1 --name late --queue');
    const q = await chat(app, 'zed', queueIt.command);
    expect(q.reply.title).toBe('Queued as #1, position 1');
    expect(q.text).toContain('You are at your weekly GPU-hours.');
    expect((await chat(app, 'boss', 'admin run-job queue')).reply.blocks[0]).toEqual({ type: 'text', text: '0 queued run(s) launched, 0 failed' });
    await chat(app, 'boss', 'admin quota zed --gpu-hours 10');
    expect((await chat(app, 'boss', 'admin run-job queue')).reply.blocks[0]).toEqual({ type: 'text', text: '1 queued run(s) launched, 0 failed' });
    expect(await app.db.container.findUnique({ where: { name: 'late' } })).toMatchObject({ state: 'running' });
  });
});
