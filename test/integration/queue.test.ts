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

describe('queue: waiting runs launch in the promised order as GPUs free up', () => {
  let bed: Bed;
  let app: App;
  const inbox: { to: string; reply: Reply }[] = [];
  const runJob = async () => (await chat(app, 'boss', 'admin run-job queue')).reply.blocks[0];
  const names = async () => (await bed.dockerCli('h1', ['ps', '--format', '{{.Names}}'])).stdout.trim().split('\n').sort();

  beforeAll(async () => {
    bed = await startBed({ hosts: 1, gpusPerHost: 2 });
    app = await App.create({
      config: parseConfig(bed.config({ admins: ['boss'] })),
      log: silentLogger(),
      databaseUrl: await testDatabaseUrl(bed.baseDir, 'queue'),
      reconcileOnStart: false,
    });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    app.registerNotifier('console', async (to, reply) => void inbox.push({ to, reply }));
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('queues only on request, shows positions, and a cancelled one never launches', async () => {
    expect((await chat(app, 'alice', `run --name a1 ${IDLE}`)).reply.tone).toBe('success');
    expect((await chat(app, 'alice', `run --name a2 ${IDLE}`)).reply.tone).toBe('success');
    const plain = await chat(app, 'bob', `run --name b1 ${IDLE}`);
    expect(plain.reply.title).toBe('No GPUs for you right now');
    expect(plain.reply.code).toBe('no-gpus');
    expect(plain.text).toContain('Add --queue to wait for GPUs instead.');
    expect(await app.db.queuedRun.count()).toBe(0);
    // The refusal offers to queue the very same run.
    const queueIt = plain.reply.blocks.flatMap((b) => (b.type === 'actions' ? b.actions : [])).find((a) => a.label === 'Queue it')!;
    expect(queueIt.command).toBe(`run --gpus 1 --name b1 --queue -- sh -c "trap 'exit 0' TERM; sleep 9999 & wait"`);
    expect(plain.text).toContain(`Next: "${queueIt.command}"`);
    // Another refusal (the name is taken) offers nothing to queue.
    const taken = await chat(app, 'bob', 'run --name a1');
    expect(taken.reply.code).toBe('conflict');
    expect(taken.reply.blocks.some((b) => b.type === 'actions')).toBe(false);

    const queued = [(await chat(app, 'bob', queueIt.command)).reply.title];
    for (const [user, name] of [
      ['carol', 'c1'],
      ['dave', 'd1'],
      ['erin', 'e1'],
    ] as const) {
      queued.push((await chat(app, user, `run --queue --name ${name} ${IDLE}`)).reply.title);
    }
    expect(queued).toEqual(['Queued as #1, position 1', 'Queued as #2, position 2', 'Queued as #3, position 3', 'Queued as #4, position 4']);
    expect((await chat(app, 'bob', 'queue cancel 4')).reply.title).toBe('#4 is not yours');
    expect((await chat(app, 'erin', 'queue cancel 4')).reply.title).toBe('Cancelled #4');
    const list = await chat(app, 'bob', 'queue');
    expect(list.reply.title).toBe('3 run(s) waiting');
    expect(list.text).toMatch(/1\s+#1\s+bob[\s\S]*2\s+#2\s+carol[\s\S]*3\s+#3\s+dave/);
    expect(await runJob()).toEqual({ type: 'text', text: '0 queued run(s) launched, 0 failed' });
  });

  it('launches them one by one as GPUs free, each owner told', async () => {
    await chat(app, 'alice', 'stop a1');
    expect(await runJob()).toEqual({ type: 'text', text: '1 queued run(s) launched, 0 failed' });
    expect(await names()).toEqual(['a2', 'b1']);
    await waitFor(() => inbox.some((m) => m.to === 'bob' && m.reply.title === 'Queued run #1: b1 is running on h1 with GPU 0'), { what: 'bob told' });

    await chat(app, 'alice', 'rm a2');
    await runJob();
    expect(await names()).toEqual(['b1', 'c1']);
    await waitFor(() => inbox.some((m) => m.to === 'carol' && m.reply.title.startsWith('Queued run #2: c1 is running')), { what: 'carol told' });

    await chat(app, 'bob', 'stop b1');
    await runJob();
    expect(await names()).toEqual(['c1', 'd1']);
    await runJob();
    expect(await names()).toEqual(['c1', 'd1']);
    expect((await app.db.queuedRun.findMany({ orderBy: { id: 'asc' } })).map((q) => q.state)).toEqual(['launched', 'launched', 'launched', 'cancelled']);
    expect(inbox.some((m) => m.to === 'erin')).toBe(false);
  });
});
