// The container runtime behind src/hosts/ (ContainerRuntime), against a real dockerd: reached
// over SSH (RemoteHost) and over its own socket (LocalHost), the same answers and typed errors.
import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { AlreadyStopped, ContainerNotFound, HostUnavailable, Timeout } from '../../src/hosts/errors.js';
import { HostPool } from '../../src/hosts/host-pool.js';
import type { LaunchSpec } from '../../src/hosts/container-spec.js';
import { ensureStopped, type RuntimeEvent } from '../../src/hosts/runtime.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { waitFor } from '../support/wait.js';

const IMAGE = 'gpubot-test/busybox:latest';

describe('ContainerRuntime', () => {
  let bed: Bed;
  let pool: HostPool;
  let n = 0;

  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    const raw = bed.config();
    const [h1, h2] = raw.hosts as Record<string, unknown>[];
    // h2's daemon through its socket, as a host without `ssh` (LocalHost) is reached.
    const config = parseConfig({ ...raw, hosts: [h1, { ...h2, name: 'local', ssh: undefined }] });
    await mkdir(`${bed.baseDir}/users/rt`, { recursive: true });
    pool = new HostPool(config, silentLogger());
    await waitFor(() => pool.get('h1')!.connection().state === 'up', { what: 'h1' });
  }, 120_000);

  afterAll(async () => {
    pool?.close();
    await bed?.teardown();
  });

  const spec = (host: string, cmd?: string[]): LaunchSpec => ({
    name: `rt-${++n}`,
    owner: 'rt',
    image: IMAGE,
    gpus: [0],
    allocationId: 1000 + n,
    shmSize: '64m',
    cmd,
    host: pool.get(host)!.config,
    instanceId: 'rt',
    endsAt: new Date(),
    network: 'bridge',
  });

  for (const hostName of ['h1', 'local']) {
    it(`${hostName}: creates, starts, lists, logs, execs, stops, removes, with typed errors`, async () => {
      const rt = pool.get(hostName)!.runtime;
      const s = spec(hostName, ['sh', '-c', 'echo hello-out; sleep 0.3; echo hello-err >&2; trap "exit 0" TERM; sleep 3600 & wait']);
      const id = await rt.create(s);
      await rt.start(id);
      await rt.start(id); // already running counts as started

      const listed = (await rt.listManaged()).find((c) => c.id === id);
      expect(listed).toMatchObject({ name: s.name, state: 'running', labels: { 'gpubot.managed': 'true', 'gpubot.name': s.name, 'gpubot.owner': 'rt' } });
      expect((await rt.listRunning()).map((c) => c.id)).toContain(id);
      expect(await rt.inspect(s.name)).toMatchObject({ id, name: s.name, running: true });

      await waitFor(async () => (await rt.logs(id, 10)).includes('hello-err'), { what: 'logs' });
      expect(await rt.logs(id, 10)).toBe('hello-out\nhello-err\n');

      expect(await rt.exec(s.name, ['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
      expect((await rt.exec(s.name, ['pwd'])).stdout).toBe('/workspace\n');

      await rt.stop(id);
      expect((await rt.inspect(id)).running).toBe(false);
      await expect(rt.stop(id)).rejects.toBeInstanceOf(AlreadyStopped);
      expect(await ensureStopped(rt, id)).toBe('stopped');

      await rt.remove(id, { force: false });
      for (const call of [() => rt.inspect(id), () => rt.stop(id), () => rt.start(id), () => rt.remove(id, { force: true }), () => rt.logs(id, 5), () => rt.exec(id, ['true'])]) {
        await expect(call()).rejects.toBeInstanceOf(ContainerNotFound);
      }
      expect(await ensureStopped(rt, id)).toBe('gone');
      expect((await rt.listManaged()).map((c) => c.id)).not.toContain(id);
    });
  }

  it('removes a running container only when forced', async () => {
    const rt = pool.get('h1')!.runtime;
    const id = await rt.create(spec('h1'));
    await rt.start(id);
    await expect(rt.remove(id, { force: false })).rejects.toThrow(/running/i);
    await rt.remove(id, { force: true });
    await expect(rt.inspect(id)).rejects.toBeInstanceOf(ContainerNotFound);
  });

  it('reports the state changes of managed containers, and only theirs', async () => {
    const rt = pool.get('h1')!.runtime;
    const seen: RuntimeEvent[] = [];
    const stop = await rt.events((e) => seen.push(e));
    try {
      const s = spec('h1');
      const id = await rt.create(s);
      await rt.start(id);
      const other = await bed.dockerCli('h1', ['run', '-d', '--name', 'rt-unmanaged', IMAGE, 'sleep', '3600']);
      expect(other.code, other.stderr).toBe(0);
      await rt.stop(id);
      await rt.remove(id, { force: false });
      await waitFor(() => seen.some((e) => e.action === 'destroy' && e.containerId === id), { what: 'destroy event' });
      const mine = seen.filter((e) => e.containerId === id).map((e) => e.action);
      expect(mine).toEqual(expect.arrayContaining(['create', 'start', 'die', 'destroy']));
      expect(seen.find((e) => e.action === 'start')).toMatchObject({ name: s.name, attributes: { 'gpubot.owner': 'rt' } });
      expect(seen.filter((e) => e.name === 'rt-unmanaged')).toEqual([]);
    } finally {
      stop();
      await bed.dockerCli('h1', ['rm', '-f', 'rt-unmanaged']);
    }
  });

  it('knows which images are there, and says why a pull fails', async () => {
    const rt = pool.get('h1')!.runtime;
    expect(await rt.hasImage(IMAGE)).toBe(true);
    expect(await rt.hasImage('gpubot-test/absent:1')).toBe(false);
    expect((await rt.listImages()).flatMap((i) => i.tags)).toContain(IMAGE);
    await expect(rt.pull('127.0.0.1:1/gpubot-test/absent:1', () => {})).rejects.toThrow(/pulling 127\.0\.0\.1:1\/gpubot-test\/absent:1 failed/);
  });

  it('holds every call to the timeout policy', async () => {
    const tight = new HostPool(parseConfig(bed.config({ timeouts: { hostMs: 1 } })), silentLogger());
    try {
      await waitFor(() => tight.get('h1')!.connection().state === 'up', { what: 'h1' });
      await expect(tight.get('h1')!.runtime.listManaged()).rejects.toThrow(Timeout);
      await expect(tight.get('h1')!.runtime.listManaged()).rejects.toThrow('listing took longer than 1 ms');
    } finally {
      tight.close();
    }
  });

  it('says a host is unavailable, from a lost SSH connection or a missing socket', async () => {
    const broken = parseConfig({ ...bed.config(), hosts: [{ name: 'nosocket', dockerSocket: `${bed.baseDir}/missing.sock`, gpuMode: 'device-requests' }] });
    const local = new HostPool(broken, silentLogger());
    const err = await local
      .get('nosocket')!
      .runtime.listManaged()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostUnavailable);
    expect((err as Error).message).toContain('missing.sock');
    local.close();

    await bed.stopSshd('h1');
    try {
      await waitFor(() => pool.get('h1')!.connection().state !== 'up', { what: 'h1 down' });
      const down = await pool
        .get('h1')!
        .runtime.stop('rt-anything')
        .catch((e: unknown) => e);
      expect(down).toBeInstanceOf(HostUnavailable);
      expect((down as Error).message).toMatch(/^h1 is down: /);
    } finally {
      await bed.startSshd('h1');
    }
  });
});
