import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Reply } from '../../src/core/reply.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { testDatabaseUrl } from '../support/database.js';

const MIN = 60_000;

describe('expiry: reminders, then stop at the end time (time injected, not slept)', () => {
  let bed: Bed;
  let app: App;
  let clock = new Date('2026-11-23T10:00:00Z').getTime();
  const inbox: { to: string; reply: Reply }[] = [];
  let dbUrl: string;

  const open = async () => {
    const a = await App.create({
      config: parseConfig(bed.config({ admins: ['boss'] })),
      log: silentLogger(),
      databaseUrl: dbUrl,
      now: () => new Date(clock),
      reconcileOnStart: false,
    });
    await waitFor(() => a.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    a.registerNotifier('console', async (to, reply) => void inbox.push({ to, reply }));
    return a;
  };
  const runJob = async () => (await chat(app, 'boss', 'admin run-job expiry')).reply;
  const titles = () => inbox.map((m) => `${m.to}: ${m.reply.title}`);

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    dbUrl = await testDatabaseUrl(bed.baseDir, 'expiry');
    app = await open();
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  const told = (line: string) => waitFor(() => titles().includes(line), { timeoutMs: 5000, what: line });

  it('reminds once per threshold, also across a restart', async () => {
    // e1 ends at 12:00, the reservation at 11:00.
    expect((await chat(app, 'alice', 'run --name e1 --hours 2 -- sh -c "trap \'exit 0\' TERM; sleep 9999 & wait"')).reply.tone).toBe('success');
    expect((await chat(app, 'bob', 'reserve 1 --hours 1')).reply.tone).toBe('success');

    clock += 30 * MIN; // 10:30
    expect((await runJob()).blocks).toEqual([{ type: 'text', text: '0 container(s) stopped, 0 reservation(s) released, 1 reminder(s) sent' }]);
    expect(titles()).toEqual(['bob: Reservation 2 ends in 30 min']);

    clock += 25 * MIN; // 10:55: the 10-minute threshold, once however often the job runs
    await runJob();
    await runJob();
    expect(titles()).toEqual(['bob: Reservation 2 ends in 30 min', 'bob: Reservation 2 ends in 5 min']);

    // A restart does not repeat them.
    await app.close();
    app = await open();
    await runJob();
    expect(inbox).toHaveLength(2);
  });

  it('releases a reservation at its end and tells its owner; reminds with an Extend button', async () => {
    clock += 10 * MIN; // 11:05
    const r = await runJob();
    expect(r.blocks[0]).toEqual({ type: 'text', text: '0 container(s) stopped, 1 reservation(s) released, 1 reminder(s) sent' });
    await told('bob: Reservation 2 has ended');
    await told('alice: e1 ends in 55 min');
    const reminder = inbox.find((m) => m.reply.title === 'e1 ends in 55 min')!;
    expect(reminder.reply.blocks.find((b) => b.type === 'actions')).toEqual({
      type: 'actions',
      actions: [{ id: 'extend', label: 'Extend 4h', command: 'extend e1 --hours 4', style: 'primary' }],
    });
    expect(await app.db.gpuLease.count()).toBe(1); // e1's GPU only
  });

  it('an extension moves the end time and re-arms the reminders', async () => {
    expect((await chat(app, 'alice', 'extend e1 --hours 1')).reply.tone).toBe('success'); // now ends 13:00
    clock += 60 * MIN; // 12:05: past the old end
    const r = await runJob();
    expect(r.blocks[0]).toEqual({ type: 'text', text: '0 container(s) stopped, 0 reservation(s) released, 1 reminder(s) sent' });
    expect(titles().filter((t) => t === 'alice: e1 ends in 55 min')).toHaveLength(2);
    expect((await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Running}}', 'e1'])).stdout.trim()).toBe('true');
  });

  it('stops (never removes) a container at its end, frees its GPUs and tells the owner', async () => {
    clock += 60 * MIN; // 13:05
    const r = await runJob();
    expect(r.blocks[0]).toEqual({ type: 'text', text: '1 container(s) stopped, 0 reservation(s) released, 0 reminder(s) sent' });
    await told('alice: e1 reached its end time and was stopped');
    expect((await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Running}}', 'e1'])).stdout.trim()).toBe('false');
    expect(await app.db.gpuLease.count()).toBe(0);
    expect(await app.db.container.findUnique({ where: { name: 'e1' } })).toMatchObject({ state: 'stopped' });
    // Run again: nothing more happens.
    expect((await runJob()).blocks[0]).toEqual({ type: 'text', text: '0 container(s) stopped, 0 reservation(s) released, 0 reminder(s) sent' });
  });

  it('lets only admins run jobs', async () => {
    const { reply } = await chat(app, 'alice', 'admin run-job expiry');
    expect(reply.title).toBe('Only admins can do that');
    expect((await chat(app, 'boss', 'admin run-job nosuch')).reply.title).toBe('There is no job "nosuch"');
  });
});
