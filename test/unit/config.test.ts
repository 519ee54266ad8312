import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

describe('config validation', () => {
  it('gives one local host when the config is empty', () => {
    const c = parseConfig({});
    expect(c.hosts).toEqual([{ name: 'local', dockerSocket: '/var/run/docker.sock', gpuMode: 'device-requests' }]);
    expect(c.quotas.default).toEqual({ maxGpus: 4, gpuHoursPerWeek: 168, maxHours: 72 });
    expect(c.storage.mountPath).toBe('/workspace');
  });

  it('accepts the documented example', () => {
    const c = parseConfig({
      hosts: [
        {
          name: 'gpu1',
          ssh: { host: '10.0.0.11', port: 22, user: 'gpubot', privateKeyPath: '/etc/gpubot/id_ed25519', hostKey: `${key} root@gpu1` },
          dockerSocket: '/var/run/docker.sock',
          gpuMode: 'device-requests',
        },
        { name: 'local' },
      ],
      storage: { userRoot: '/srv/gpubot/users', mountPath: '/workspace', shared: [{ hostPath: '/srv/datasets', containerPath: '/datasets', readOnly: true }] },
      images: { default: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', allowed: ['pytorch/pytorch:*', 'nvcr.io/nvidia/pytorch:*'] },
      quotas: { default: { maxGpus: 4, gpuHoursPerWeek: 168, maxHours: 72 }, users: { alice: { maxGpus: 8 } } },
      admins: ['alice'],
    });
    expect(c.hosts[0]!.ssh!.hostKey).toBe(key); // the comment is dropped
    expect(c.hosts[1]!.ssh).toBeUndefined();
    expect(c.quotas.users.alice).toEqual({ maxGpus: 8 });
  });

  it('accepts a SHA256 fingerprint as the pinned key', () => {
    const c = parseConfig({ hosts: [{ name: 'g', ssh: { host: 'h', user: 'u', privateKeyPath: '/k', hostKey: 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s' } }] });
    expect(c.hosts[0]!.ssh!.port).toBe(22);
  });

  const bad: [string, unknown, RegExp][] = [
    ['an upper-case host name', { hosts: [{ name: 'GPU1' }] }, /hosts\[0\]\.name: must match \[a-z0-9-\]\+/],
    ['a host name with a shell character', { hosts: [{ name: 'g;rm' }] }, /hosts\[0\]\.name/],
    ['duplicate host names', { hosts: [{ name: 'a' }, { name: 'a' }] }, /hosts\[1\]\.name: duplicate host name "a"/],
    ['an ssh block without a host key', { hosts: [{ name: 'a', ssh: { host: 'h', user: 'u', privateKeyPath: '/k' } }] }, /hosts\[0\]\.ssh\.hostKey/],
    [
      'a garbage host key',
      { hosts: [{ name: 'a', ssh: { host: 'h', user: 'u', privateKeyPath: '/k', hostKey: 'trust me' } }] },
      /hosts\[0\]\.ssh\.hostKey: must be a public key line/,
    ],
    ['a port out of range', { hosts: [{ name: 'a', ssh: { host: 'h', port: 70000, user: 'u', privateKeyPath: '/k', hostKey: key } }] }, /hosts\[0\]\.ssh\.port/],
    ['an unknown gpuMode', { hosts: [{ name: 'a', gpuMode: 'cuda' }] }, /hosts\[0\]\.gpuMode/],
    ['a relative userRoot', { storage: { userRoot: 'users' } }, /storage\.userRoot: must be an absolute path/],
    ['a misspelt key', { hostz: [] }, /hostz/],
    ['a negative quota', { quotas: { default: { maxGpus: -1 } } }, /quotas\.default\.maxGpus/],
    ['no hosts', { hosts: [] }, /hosts: at least one host/],
  ];
  it.each(bad)('rejects %s and names the field', (_what, raw, message) => {
    expect(() => parseConfig(raw, 'gpubot.yaml')).toThrow(ConfigError);
    expect(() => parseConfig(raw, 'gpubot.yaml')).toThrow(message);
  });
});

describe('the shipped example config', () => {
  it('is valid', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    const { config, path } = await loadConfig({ GPUBOT_CONFIG: 'gpubot.example.yaml' });
    expect(path).toBe('gpubot.example.yaml');
    expect(config.hosts.map((h) => h.name)).toEqual(['gpu1', 'local']);
    expect(config.storage.shared[0]).toEqual({ hostPath: '/srv/datasets', containerPath: '/datasets', readOnly: true });
  });

  it('a missing explicit config file is an error, a missing default one is not', async () => {
    const { loadConfig } = await import('../../src/config/load.js');
    await expect(loadConfig({ GPUBOT_CONFIG: '/nonexistent/gpubot.yaml' })).rejects.toThrow(/cannot read config file/);
  });
});
