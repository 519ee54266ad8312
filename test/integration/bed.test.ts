// The test bed itself: two fake GPU hosts, driven through the real ssh client, the docker CLI and ssh2.
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import Docker from 'dockerode';
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBed, type Bed, type BedHost } from '../bed/testbed.js';

const GPU_QUERY = '--query-gpu=index,uuid,name,memory.used,memory.total,utilization.gpu,temperature.gpu';
const APPS_QUERY = '--query-compute-apps=gpu_uuid,pid,process_name,used_memory';
const CSV = '--format=csv,noheader,nounits';
const DRIVER_GONE = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.";

interface Out {
  stdout: string;
  stderr: string;
  code: number;
}

function exec(cmd: string, args: string[], timeoutMs = 20_000): Promise<Out> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const c = (err as { code?: unknown } | null)?.code;
      resolve({ stdout, stderr, code: err ? (typeof c === 'number' ? c : 255) : 0 });
    });
  });
}

let bed: Bed;
let knownHosts: string;

function sshArgs(h: BedHost): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    bed.clientKeyPath,
    '-p',
    String(h.sshPort),
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
    'root@127.0.0.1',
  ];
}
const ssh = (name: string, ...remote: string[]) => exec('ssh', [...sshArgs(bed.host(name)), ...remote]);

function portState(port: number): Promise<'open' | 'refused' | 'other'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'other'));
  });
}

async function processesMentioning(dir: string): Promise<string[]> {
  const hits: string[] = [];
  for (const e of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = await fs.readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir + '/')) hits.push(`${e}: ${cmd.split('\0').join(' ')}`);
  }
  return hits;
}

beforeAll(async () => {
  bed = await startBed({ hosts: 2 });
  // Our own known_hosts, built from the API, so the test also checks hostKeyLine.
  knownHosts = path.join(bed.baseDir, 'test_known_hosts');
  await fs.writeFile(knownHosts, bed.hosts.map((h) => `[127.0.0.1]:${h.sshPort} ${h.hostKeyLine}\n`).join(''));
}, 60_000);

afterAll(async () => {
  if (!bed) return;
  await bed.teardown();
  expect(await processesMentioning(bed.baseDir)).toEqual([]);
  await expect(fs.access(bed.baseDir)).rejects.toThrow();
}, 60_000);

describe('test bed', () => {
  it('describes its hosts', async () => {
    expect(bed.hosts.map((h) => h.name)).toEqual(['h1', 'h2']);
    const [h1, h2] = bed.hosts as [BedHost, BedHost];
    expect(h1.sshPort).not.toBe(h2.sshPort);
    expect(h1.hostKeyLine).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]+=*$/);
    const lf = await exec('ssh-keygen', ['-lf', path.join(h1.dir, 'ssh_host_ed25519_key.pub')]);
    expect(lf.stdout.split(' ')[1]).toBe(h1.hostKeyFingerprint);
    expect(bed.host('h2')).toEqual(h2);
    expect(() => bed.host('h3')).toThrow();
    await fs.access(h1.userRoot);
    const cfg = bed.config({ admins: ['alice'] }) as { hosts: Array<{ ssh: { port: number; hostKey: string } }>; admins: string[]; storage: { userRoot: string } };
    expect(cfg.hosts[1]!.ssh.port).toBe(h2.sshPort);
    expect(cfg.hosts[0]!.ssh.hostKey).toBe(h1.hostKeyLine);
    expect(cfg.admins).toEqual(['alice']);
    expect(cfg.storage.userRoot).toBe(h1.userRoot);
  });

  it('answers nvidia-smi over ssh from gpus.json', async () => {
    const s1 = await bed.readGpuState('h1');
    const s2 = await bed.readGpuState('h2');
    expect(s1.gpus).toHaveLength(4);
    expect(new Set([...s1.gpus, ...s2.gpus].map((g) => g.uuid)).size).toBe(8);

    const r = await ssh('h1', 'nvidia-smi', GPU_QUERY, CSV);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(s1.gpus.map((g) => `${g.index}, ${g.uuid}, NVIDIA A100-SXM4-80GB, 0, 81920, 0, 35\n`).join(''));
    expect((await ssh('h1', 'nvidia-smi', APPS_QUERY, CSV)).stdout).toBe('');

    await bed.updateGpuState('h1', (s) => {
      s.gpus[2]!.memoryUsedMiB = 40000;
      s.gpus[2]!.utilization = 97;
      s.gpus[3]!.temperature = '[N/A]';
      s.processes.push({ gpuIndex: 2, pid: 4242, name: 'python', usedMemoryMiB: 39000 });
      s.processes.push({ gpuIndex: 0, pid: 99999999, name: '/usr/bin/python3', usedMemoryMiB: 1000 });
    });
    const g = await ssh('h1', 'nvidia-smi', '--query-gpu=memory.used,utilization.gpu,temperature.gpu,index', CSV);
    expect(g.stdout.split('\n')).toEqual(['0, 0, 35, 0', '0, 0, 35, 1', '40000, 97, 35, 2', '0, 0, [N/A], 3', '']);
    const apps = await ssh('h1', 'nvidia-smi', APPS_QUERY, CSV);
    expect(apps.stdout).toBe(`${s1.gpus[0]!.uuid}, 99999999, /usr/bin/python3, 1000\n${s1.gpus[2]!.uuid}, 4242, python, 39000\n`);
    // h2 is untouched
    expect((await ssh('h2', 'nvidia-smi', APPS_QUERY, CSV)).stdout).toBe('');

    await bed.updateGpuState('h2', (s) => {
      s.fail = 'driver gone';
    });
    const f = await ssh('h2', 'nvidia-smi', GPU_QUERY, CSV);
    expect(f.code).toBe(9);
    expect(f.stdout.trim()).toBe(DRIVER_GONE);
    await bed.writeGpuState('h2', s2);
    expect((await ssh('h2', 'nvidia-smi', GPU_QUERY, CSV)).code).toBe(0);
    await bed.writeGpuState('h1', s1);
  });

  it("reaches each host's own docker daemon over ssh", async () => {
    for (const h of bed.hosts) {
      const r = await ssh(h.name, 'docker', 'info', '--format', '{{.DockerRootDir}}');
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(path.join(h.dir, 'data'));
      const imgs = await ssh(h.name, 'docker', 'images', '--format', '{{.Repository}}:{{.Tag}}');
      expect(imgs.stdout.split('\n').sort()).toEqual(['', 'gpubot-test/busybox:latest', 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime']);
    }
  });

  it('tunnels to docker.sock with direct-streamlocal (ssh2)', async () => {
    const h = bed.host('h2');
    const key = await fs.readFile(bed.clientKeyPath);
    const conn = new Client();
    const body = await new Promise<string>((resolve, reject) => {
      conn.on('error', reject);
      conn.on('ready', () => {
        conn.openssh_forwardOutStreamLocal(h.dockerSocket, (err, stream) => {
          if (err) return reject(err);
          let buf = '';
          stream.on('data', (d: Buffer) => (buf += d.toString()));
          stream.on('close', () => resolve(buf));
          stream.end('GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n');
        });
      });
      conn.connect({
        host: '127.0.0.1',
        port: h.sshPort,
        username: 'root',
        privateKey: key,
        hostVerifier: (k: Buffer) => k.toString('base64') === h.hostKeyLine.split(' ')[1],
      });
    });
    conn.end();
    expect(body).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(body.endsWith('OK')).toBe(true);
  });

  it('gives GPU containers NVIDIA_VISIBLE_DEVICES', async () => {
    const run = await bed.dockerCli('h1', ['run', '-d', '--gpus', '"device=0,2"', 'gpubot-test/busybox:latest']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const id = run.stdout.trim();
    const insp = await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Pid}} {{json .HostConfig.DeviceRequests}}', id]);
    const [pid, reqs] = insp.stdout.trim().split(' ', 2) as [string, string];
    expect(JSON.parse(reqs)).toMatchObject([{ DeviceIDs: ['0', '2'], Capabilities: [['gpu']] }]);
    const environ = (await fs.readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');
    expect(environ).toContain('NVIDIA_VISIBLE_DEVICES=0,2');
    const cgroup = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8');
    expect(cgroup).toContain(id);

    // the old runtime path: --runtime nvidia maps to plain runc here
    const rt = await bed.dockerCli('h1', ['run', '--rm', '--runtime', 'nvidia', 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', 'bash', '-c', 'echo ok']);
    expect(rt.stdout).toBe('ok\n');

    // the container lives on h1 only
    expect((await bed.dockerCli('h1', ['ps', '-q', '--no-trunc'])).stdout.trim()).toBe(id);
    expect((await bed.dockerCli('h2', ['ps', '-q'])).stdout.trim()).toBe('');

    // what the bot sends: DeviceRequests with Driver "nvidia", through the Engine API
    const docker = new Docker({ socketPath: bed.host('h2').dockerSocket });
    const c = await docker.createContainer({
      Image: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime',
      // Kept running while its environment is read (a command that exits at once leaves /proc/PID/environ empty).
      Cmd: ['sh', '-c', 'sleep 60'],
      HostConfig: { DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: ['0', '2'], Capabilities: [['gpu']] }] },
    });
    await c.start();
    const info = await c.inspect();
    const env2 = (await fs.readFile(`/proc/${info.State.Pid}/environ`, 'utf8')).split('\0');
    expect(env2).toContain('NVIDIA_VISIBLE_DEVICES=0,2');
    await c.remove({ force: true });
  });

  it('stopSshd drops connections and refuses; startSshd brings the same host back', async () => {
    const h = bed.host('h2');
    // An established session that must be cut.
    const live = spawn('ssh', [...sshArgs(h), 'echo started; exec sleep 120'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const liveExit = new Promise<number | null>((resolve) => live.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('live session never started')), 10_000);
      live.stdout.on('data', (d: Buffer) => {
        if (d.toString().includes('started')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });

    await bed.stopSshd('h2');
    expect(await portState(h.sshPort)).toBe('refused');
    expect(await liveExit).toBe(255);
    expect((await ssh('h2', 'true')).code).toBe(255);
    // h1 is unaffected
    expect((await ssh('h1', 'true')).code).toBe(0);

    await bed.startSshd('h2');
    expect(await portState(h.sshPort)).toBe('open');
    const r = await ssh('h2', 'nvidia-smi', '--query-gpu=index', CSV);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('0\n1\n2\n3\n');
  });
});
