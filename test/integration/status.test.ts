import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Block, Reply } from '../../src/core/reply.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';

const sections = (blocks: Block[]) => blocks.filter((b): b is Extract<Block, { type: 'section' }> => b.type === 'section');
const tableOf = (section: Extract<Block, { type: 'section' }>) => section.blocks.find((b): b is Extract<Block, { type: 'table' }> => b.type === 'table');

describe('status against three real hosts', () => {
  let bed: Bed;
  let app: App;
  let hostProcess: ChildProcess;
  let containerPid: number;

  /** The first status of HOST that passes `check`: the live feed shows a change within an interval. */
  const nextStatus = (host: string, check: (r: Reply) => boolean) =>
    waitFor(
      async () => {
        const { reply } = await chat(app, 'bob', `status ${host}`);
        return check(reply) ? reply : null;
      },
      { what: `status of ${host}` },
    );

  beforeAll(async () => {
    bed = await startBed({ hosts: 3, gpusPerHost: 4 });
    // A gpubot container on h1 holding GPU 1, whose process nvidia-smi reports.
    const created = await bed.dockerCli('h1', [
      'run',
      '-d',
      '--name',
      'alice-exp1',
      '--label',
      'gpubot.managed=true',
      '--label',
      'gpubot.owner=alice',
      '--label',
      'gpubot.gpus=1',
      '--label',
      'gpubot.name=exp1',
      'gpubot-test/busybox:latest',
      'sleep',
      '600',
    ]);
    expect(created.code, created.stderr).toBe(0);
    containerPid = Number((await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Pid}}', 'alice-exp1'])).stdout.trim());
    // A process on h2 that gpubot did not start, in no container.
    hostProcess = spawn('sleep', ['600'], { stdio: 'ignore' });
    await bed.updateGpuState('h1', (s) => {
      s.gpus[1]!.utilization = 87;
      s.gpus[1]!.memoryUsedMiB = 40_000;
      s.processes.push({ gpuIndex: 1, pid: containerPid, name: 'python', usedMemoryMiB: 39_000 });
    });
    await bed.updateGpuState('h2', (s) => {
      s.gpus[2]!.utilization = 55;
      s.processes.push({ gpuIndex: 2, pid: hostProcess.pid!, name: 'python3', usedMemoryMiB: 2000 });
    });
    // Containers planted by hand here are not in the database: keep reconciliation from removing them.
    // A short sampling interval: a change on a host shows in status within it.
    app = await appFor(bed, { telemetry: { intervalMs: 1000 } }, undefined, { reconcileOnStart: false });
  });

  afterAll(async () => {
    hostProcess?.kill();
    await app?.close();
    await bed?.teardown();
  });

  it('shows every GPU with model, memory, utilization, holder and unmanaged processes', async () => {
    const { text, reply } = await chat(app, 'bob', 'status');
    expect(reply.tone).toBe('info');
    expect(reply.title).toBe('10/12 GPUs free on 3 hosts');
    const [h1, h2, h3] = sections(reply.blocks);
    expect(h1!.heading).toBe('h1: 3/4 GPUs free');
    const h1Rows = tableOf(h1!)!.rows;
    expect(h1Rows).toHaveLength(4);
    expect(h1Rows[1]).toEqual(['1', 'NVIDIA A100-SXM4-80GB', '39.1 GiB / 80.0 GiB', '87 %', 'alice (exp1)', '']);
    expect(h1Rows[0]).toEqual(['0', 'NVIDIA A100-SXM4-80GB', '0 MiB / 80.0 GiB', '0 %', 'free', '']);
    const h2Rows = tableOf(h2!)!.rows;
    expect(h2Rows[2]![4]).toBe('free');
    expect(h2Rows[2]![5]).toBe(`pid ${hostProcess.pid} python3 (not gpubot)`);
    expect(h2!.heading).toBe('h2: 3/4 GPUs free');
    expect(h3!.heading).toBe('h3: 4/4 GPUs free');
    // The terminal rendering carries the same facts.
    expect(text).toContain('alice (exp1)');
    expect(text).toMatch(/pid \d+ python3 \(not gpubot\)/);
  });

  it('maps a GPU process in the container to its owner via its cgroup', async () => {
    const [h1] = await app.pool.snapshot(['h1']);
    expect(h1!.gpus![1]!.managed).toEqual([{ pid: containerPid, name: 'python', usedMemoryMiB: 39_000, owner: 'alice', container: 'exp1' }]);
    expect(h1!.gpus![1]!.unmanaged).toEqual([]);
  });

  it('flags a process in a container gpubot did not start', async () => {
    const other = await bed.dockerCli('h3', ['run', '-d', '--name', 'someones-own', 'gpubot-test/busybox:latest', 'sleep', '600']);
    expect(other.code, other.stderr).toBe(0);
    const pid = Number((await bed.dockerCli('h3', ['inspect', '-f', '{{.State.Pid}}', 'someones-own'])).stdout.trim());
    await bed.updateGpuState('h3', (s) => s.processes.push({ gpuIndex: 0, pid, name: 'jupyter', usedMemoryMiB: 500 }));
    const reply = await nextStatus('h3', (r) => sections(r.blocks)[0]!.heading === 'h3: 3/4 GPUs free');
    const h3 = sections(reply.blocks)[0]!;
    expect(h3.heading).toBe('h3: 3/4 GPUs free');
    expect(tableOf(h3)!.rows[0]![5]).toBe(`pid ${pid} jupyter in container someones-own (not gpubot)`);
    await bed.updateGpuState('h3', (s) => (s.processes = []));
    await nextStatus('h3', (r) => sections(r.blocks)[0]!.heading === 'h3: 4/4 GPUs free');
  });

  it('reports a failing nvidia-smi as unknown, never as idle', async () => {
    await bed.updateGpuState('h3', (s) => (s.fail = 'driver'));
    const reply = await nextStatus('h3', (r) => sections(r.blocks)[0]!.heading.startsWith('h3: GPUs unknown'));
    const { text } = await chat(app, 'bob', 'status h3');
    const h3 = sections(reply.blocks)[0]!;
    expect(h3.heading).toBe('h3: GPUs unknown');
    expect(text).toContain("couldn't communicate with the NVIDIA driver");
    expect(text).not.toMatch(/0 %/);
    await bed.updateGpuState('h3', (s) => (s.fail = null));
    await nextStatus('h3', (r) => sections(r.blocks)[0]!.heading === 'h3: 4/4 GPUs free');
  });

  it('refuses an unknown host by name', async () => {
    const { reply, text } = await chat(app, 'bob', 'status nosuch');
    expect(reply.tone).toBe('error');
    expect(text).toContain('Known hosts: h1, h2, h3');
  });

  it('marks a host whose sshd died as down while the others answer in time, and sees it come back', async () => {
    await bed.stopSshd('h2');
    // Down once the connection has been failing for timeouts.hostMs (a reconnect before that is "connecting").
    await waitFor(() => app.pool.get('h2')!.connection().down, { what: 'h2 to be down' });
    const started = performance.now();
    const { reply } = await chat(app, 'bob', 'status');
    const elapsed = performance.now() - started;
    const [h1, h2, h3] = sections(reply.blocks);
    expect(h2!.heading).toBe('h2: down');
    expect(h2!.tone).toBe('error');
    expect(h1!.heading).toBe('h1: 3/4 GPUs free');
    expect(h3!.heading).toBe('h3: 4/4 GPUs free');
    expect(reply.title).toBe('7/8 GPUs free on 2 hosts, 1 down');
    // A down host is answered from its known state, not waited for.
    expect(elapsed).toBeLessThan(app.options.config.timeouts.hostMs);

    await bed.startSshd('h2');
    await waitFor(async () => sections((await chat(app, 'bob', 'status h2')).reply.blocks)[0]!.heading === 'h2: 3/4 GPUs free', {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: 'h2 back',
    });
  });
});

describe('host key pinning', () => {
  let bed: Bed;
  beforeAll(async () => {
    bed = await startBed({ hosts: 2, docker: false });
  });
  afterAll(async () => bed?.teardown());

  it('refuses a host whose key does not match the pinned one', async () => {
    const raw = bed.config() as { hosts: { ssh: { hostKey: string } }[] };
    raw.hosts[0]!.ssh.hostKey = bed.host('h2').hostKeyLine; // h1 pinned to h2's key
    const app = await appFor(bed, {}, raw);
    try {
      expect(app.pool.get('h1')!.connection().state).not.toBe('up');
      // Down once it has failed for timeouts.hostMs; "connecting" (with the error) before that.
      await waitFor(() => app.pool.get('h1')!.connection().down, { what: 'h1 down' });
      const { reply, text } = await chat(app, 'bob', 'status');
      expect(sections(reply.blocks)[0]!.heading).toBe('h1: down');
      expect(text).toMatch(/host key SHA256:\S+ does not match the key pinned in the config; refusing to connect/);
      // This bed runs no Docker: the GPUs still show, with holders marked unknown.
      expect(sections(reply.blocks)[1]!.heading).toBe('h2: 4/4 GPUs free');
      expect(text).toContain('Holders unknown: Docker is unreachable');
    } finally {
      await app.close();
    }
  });

  it('accepts a SHA256 fingerprint as the pin', async () => {
    const raw = bed.config() as { hosts: { ssh: { hostKey: string } }[] };
    raw.hosts[0]!.ssh.hostKey = bed.host('h1').hostKeyFingerprint;
    const app = await appFor(bed, {}, raw);
    try {
      // Up, if not at the first attempt then at a retry: on a loaded machine a handshake can
      // outlast connectTimeoutMs once. A refused key never comes up (the test above).
      await waitFor(() => app.pool.get('h1')!.connection().state === 'up', { what: 'h1 up', timeoutMs: 30_000 });
      expect(app.pool.get('h1')!.connection().lastError ?? '').not.toMatch(/does not match/);
    } finally {
      await app.close();
    }
  });
});
