import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { containerSpec } from '../../src/hosts/container-spec.js';

const spec = (raw: Record<string, unknown>, uid: number | undefined, gpus = [0, 1]) => {
  const config = parseConfig(raw);
  return containerSpec(config, {
    name: 'exp1',
    owner: 'alice',
    image: 'img',
    gpus,
    allocationId: 7,
    shmSize: '8g',
    host: config.hosts[0]!,
    instanceId: 'abc',
    endsAt: new Date('2026-12-02T10:00:00Z'),
    uid,
    network: 'gpubot-u-alice',
  });
};

describe('the container gpubot creates', () => {
  it('by default: runAs user from uidBase 20000, pids 4096, unlimited memlock, 64 MiB stack, NET_RAW dropped, no memory or CPU limit', () => {
    const config = parseConfig({});
    expect(config.storage.runAs).toBe('user');
    expect(config.storage.uidBase).toBe(20000);
    expect(config.limits).toEqual({ pids: 4096, memlock: -1 });
    const c = spec({}, 20001);
    expect(c.User).toBe('20001:20001');
    expect(c.Env).toContain('HOME=/workspace');
    expect(c.HostConfig).toMatchObject({
      PidsLimit: 4096,
      CapDrop: ['NET_RAW'],
      NetworkMode: 'gpubot-u-alice',
      Ulimits: [
        { Name: 'memlock', Soft: -1, Hard: -1 },
        { Name: 'stack', Soft: 67108864, Hard: 67108864 },
      ],
    });
    expect(c.HostConfig!.Memory).toBeUndefined();
    expect(c.HostConfig!.NanoCpus).toBeUndefined();
    expect(c.Labels).toMatchObject({ 'gpubot.instance': 'abc', 'gpubot.ends': '2026-12-02T10:00:00.000Z', 'gpubot.uid': '20001' });
  });

  it('scales memory and CPUs with the GPUs; shared dirs read-only under runAs user whatever the config says', () => {
    const raw = { limits: { memoryPerGpu: '64g', cpusPerGpu: 8 }, storage: { shared: [{ hostPath: '/data', containerPath: '/data', readOnly: false }] } };
    const c = spec(raw, 20001);
    expect(c.HostConfig!.Memory).toBe(2 * 64 * 1024 ** 3);
    expect(c.HostConfig!.NanoCpus).toBe(16e9);
    expect(c.HostConfig!.Mounts![1]).toMatchObject({ Source: '/data', ReadOnly: true });
    // runAs root: as before, and the config's readOnly holds.
    const root = spec({ ...raw, storage: { ...raw.storage, runAs: 'root' } }, undefined);
    expect(root.User).toBeUndefined();
    expect(root.HostConfig!.Mounts![1]).toMatchObject({ ReadOnly: false });
  });

  it('refuses bad limits by name', () => {
    expect(() => parseConfig({ limits: { pids: 0 } })).toThrow(/limits\.pids/);
    expect(() => parseConfig({ limits: { memoryPerGpu: 'lots' } })).toThrow(/limits\.memoryPerGpu/);
    expect(() => parseConfig({ storage: { runAs: 'nobody' } })).toThrow(/storage\.runAs/);
  });
});
