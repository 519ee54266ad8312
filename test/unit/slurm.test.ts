import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { gpuCount, scontrolFields } from '../../src/hosts/slurm.js';
import { batchScript } from '../../src/operations/slurm.js';

const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const ssh = { host: 'login.example.org', user: 'root', privateKeyPath: '/etc/gpubot/id', hostKey: key };

describe('slurm: config', () => {
  it('takes the documented section with its defaults', () => {
    const c = parseConfig({ slurm: { ssh, partition: 'gpu', users: { alice: { unixUser: 'asmith' } }, unixUser: 'lab-{handle}' } });
    expect(c.slurm).toMatchObject({ name: 'slurm', partition: 'gpu', defaultHours: 24, maxHours: 72, default: false, workspace: '/home/{unixUser}', containers: 'none' });
    expect(c.hosts.map((h) => h.name)).toEqual(['local']);
  });

  it.each([
    [{ ssh, partition: 'gpu;id' }, 'slurm.partition'],
    [{ ssh, partition: 'gpu', account: '$(id)' }, 'slurm.account'],
    [{ ssh, partition: 'gpu', unixUser: 'root' }, 'slurm.unixUser'],
    [{ ssh, partition: 'gpu', unixUser: '{handle};id' }, 'slurm.unixUser'],
    [{ ssh, partition: 'gpu', users: { alice: { unixUser: 'a b' } } }, 'slurm.users.alice.unixUser'],
    [{ ssh, partition: 'gpu', workspace: 'home/{unixUser}' }, 'slurm.workspace'],
    [{ ssh, partition: 'gpu', workspace: '/home/$USER' }, 'slurm.workspace'],
    [{ ssh, partition: 'gpu', containers: 'podman' }, 'slurm.containers'],
    [{ ssh, partition: 'gpu', dockerSocket: '/run/$(id).sock' }, 'slurm.dockerSocket'],
    [{ ssh: { ...ssh, user: 'root;id' }, partition: 'gpu' }, 'slurm.ssh.user'],
    [{ ssh, partition: 'gpu', name: 'local' }, 'slurm.name'],
  ])('refuses %j at %s', (slurm, where) => {
    expect(() => parseConfig({ slurm })).toThrow(ConfigError);
    expect(() => parseConfig({ slurm })).toThrow(where);
  });
});

describe('slurm: reading its output', () => {
  it('counts GPUs in the gres forms Slurm prints', () => {
    expect(gpuCount('gres:gpu:2')).toBe(2);
    expect(gpuCount('gres/gpu:4')).toBe(4);
    expect(gpuCount('gpu:a100:4(S:0-1)')).toBe(4);
    expect(gpuCount('gpu:a100:2(IDX:0-1),gpu:v100:1(IDX:3)')).toBe(3);
    expect(gpuCount('(null)')).toBe(0);
    expect(gpuCount('N/A')).toBe(0);
  });

  it('splits scontrol one-liners, values with spaces included', () => {
    const f = scontrolFields('NodeName=node1 Arch=x86_64 Gres=gpu:2 GresUsed=gpu:1 OS=Linux 6.1 #1 SMP  State=MIXED+DRAIN Reason=fan broken [root@2026-12-02T06:55:03]');
    expect(f).toMatchObject({ NodeName: 'node1', Gres: 'gpu:2', GresUsed: 'gpu:1', OS: 'Linux 6.1 #1 SMP', State: 'MIXED+DRAIN', Reason: 'fan broken [root@2026-12-02T06:55:03]' });
  });
});

describe('slurm: the batch script', () => {
  it('gives bash the command words back verbatim, shell text included', () => {
    const words = ['printf', '%s\\n', "it's", '$(id)', '`id`', 'a;b', '"q"', 'x\ny', '*'];
    const script = batchScript('exp1', 'alice', '/shared/home/alice', { cmd: words });
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    // Run the script's exec line with printf in place: each word comes back alone and unchanged.
    const out = execFileSync('bash', ['-c', script.replace('export HOME=', 'true ').replace('#!/bin/bash', ''), 'x'], { encoding: 'utf8' });
    expect(out.split('\n').slice(0, -1)).toEqual(words.slice(2).flatMap((w) => w.split('\n')));
  });

  it('holds the allocation when no command is given', () => {
    expect(batchScript('exp1', 'alice', '/w', {})).toContain('\nexec sleep infinity\n');
  });
});
