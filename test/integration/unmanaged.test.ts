import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Block, Reply } from '../../src/core/reply.js';
import { unmanagedJob } from '../../src/jobs/unmanaged.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { testDatabaseUrl } from '../support/database.js';

const fieldsOf = (r: Reply) => Object.fromEntries(r.blocks.flatMap((b: Block) => (b.type === 'fields' ? b.fields.map((f) => [f.label, f.value]) : [])));
const textOf = (r: Reply) => r.blocks.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n');

describe('unmanaged: admins hear once about GPU processes gpubot did not start', () => {
  let bed: Bed;
  let app: App;
  const inbox: { to: string; reply: Reply }[] = [];
  const sleepers: ChildProcess[] = [];
  let containerPid: number;

  /** A real process (so its /proc entry exists), killed after the tests. */
  const sleeper = () => {
    const p = spawn('sleep', ['600'], { stdio: 'ignore' });
    sleepers.push(p);
    return p.pid!;
  };
  const runJob = () => unmanagedJob.run(app.ops);

  beforeAll(async () => {
    bed = await startBed({ hosts: 3, gpusPerHost: 4 });
    // A container someone started by hand on h2, not labelled as gpubot's.
    const other = await bed.dockerCli('h2', ['run', '-d', '--name', 'someones-own', 'gpubot-test/busybox:latest', 'sleep', '600']);
    expect(other.code, other.stderr).toBe(0);
    containerPid = Number((await bed.dockerCli('h2', ['inspect', '-f', '{{.State.Pid}}', 'someones-own'])).stdout.trim());

    app = await App.create({
      config: parseConfig(bed.config({ admins: ['boss'] })),
      log: silentLogger(),
      databaseUrl: await testDatabaseUrl(bed.baseDir, 'unmanaged'),
      reconcileOnStart: false,
    });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    app.registerNotifier('console', async (to, reply) => void inbox.push({ to, reply }));
    // Both have a console identity, so either could be told; only boss is an admin.
    expect((await app.actor('boss')).isAdmin).toBe(true);
    expect((await app.actor('alice')).isAdmin).toBe(false);
  });

  afterAll(async () => {
    for (const p of sleepers) p.kill();
    await app?.close();
    await bed?.teardown();
  });

  it('reports a host process and a process in a foreign container, once each, to admins only', async () => {
    const hostPid = sleeper();
    await bed.updateGpuState('h1', (s) => s.processes.push({ gpuIndex: 2, pid: hostPid, name: 'python3', usedMemoryMiB: 2048 }));
    await bed.updateGpuState('h2', (s) => s.processes.push({ gpuIndex: 0, pid: containerPid, name: 'jupyter', usedMemoryMiB: 500 }));

    expect(await runJob()).toBe('2 unmanaged process(es) reported to 1 admin(s)');
    expect(inbox.map((m) => m.to)).toEqual(['boss', 'boss']);

    const h1 = inbox.find((m) => fieldsOf(m.reply).Host === 'h1')!.reply;
    expect(h1.tone).toBe('warning');
    expect(h1.title).toBe(`Unmanaged process on h1 GPU 2: pid ${hostPid} python3`);
    expect(fieldsOf(h1)).toEqual({ Host: 'h1', GPU: '2', PID: String(hostPid), Process: 'python3', Memory: '2.0 GiB' });
    expect(textOf(h1)).toContain('outside any container');
    expect(textOf(h1)).toContain('GPU 2 on h1 will not be handed out while it runs');

    const h2 = inbox.find((m) => fieldsOf(m.reply).Host === 'h2')!.reply;
    expect(fieldsOf(h2)).toEqual({ Host: 'h2', GPU: '0', PID: String(containerPid), Process: 'jupyter', Memory: '500 MiB', Container: 'someones-own (not gpubot)' });
    expect(textOf(h2)).toContain('in container someones-own, which gpubot did not start');
    expect(textOf(h2)).toContain('GPU 0 on h2 will not be handed out while it runs');

    // The once-only key carries the process start time read from the host's /proc (a reused PID is a new process).
    const keys = (await app.db.notice.findMany({ orderBy: { id: 'asc' } })).map((n) => n.key);
    expect(keys).toHaveLength(2);
    expect(keys).toContainEqual(expect.stringMatching(new RegExp(`^unmanaged:h1:${hostPid}:\\d+:python3:\\d+$`)));
    expect(keys).toContainEqual(expect.stringMatching(new RegExp(`^unmanaged:h2:${containerPid}:\\d+:jupyter:\\d+$`)));
  });

  it('sends nothing new when run again', async () => {
    expect(await runJob()).toBe('0 unmanaged process(es) reported to 0 admin(s)');
    expect(await runJob()).toBe('0 unmanaged process(es) reported to 0 admin(s)');
    expect(inbox).toHaveLength(2);
  });

  it('reports a new process on the same GPU', async () => {
    const pid = sleeper();
    await bed.updateGpuState('h1', (s) => s.processes.push({ gpuIndex: 2, pid, name: 'python3', usedMemoryMiB: 1000 }));
    expect(await runJob()).toBe('1 unmanaged process(es) reported to 1 admin(s)');
    expect(inbox).toHaveLength(3);
    expect(inbox[2]!.to).toBe('boss');
    expect(fieldsOf(inbox[2]!.reply)).toMatchObject({ Host: 'h1', GPU: '2', PID: String(pid) });
    expect(inbox.some((m) => m.to === 'alice')).toBe(false);
  });

  it('never hands out a GPU with an unmanaged process', async () => {
    const { reply, text } = await chat(app, 'alice', 'run --gpus 4 --host h1');
    expect(reply.tone).toBe('error');
    expect(text).toContain('h1 has 3 free GPUs of 4');
    expect(await app.db.gpuLease.count()).toBe(0);
  });

  it('skips a host whose nvidia-smi fails, and reports once it answers again', async () => {
    const pid = sleeper();
    await bed.updateGpuState('h3', (s) => {
      s.processes.push({ gpuIndex: 1, pid, name: 'train', usedMemoryMiB: 100 });
      s.fail = 'driver';
    });
    expect(await runJob()).toBe('0 unmanaged process(es) reported to 0 admin(s)');
    expect(inbox).toHaveLength(3);

    await bed.updateGpuState('h3', (s) => (s.fail = null));
    expect(await runJob()).toBe('1 unmanaged process(es) reported to 1 admin(s)');
    expect(fieldsOf(inbox[3]!.reply)).toMatchObject({ Host: 'h3', GPU: '1', PID: String(pid), Process: 'train' });
  });
});
