// Slurm test bed: a real local Slurm cluster on this machine, reached like a real one through a
// login node's sshd. munged (own key and socket), slurmctld and one `slurmd -N nodeN` per node
// (multiple-slurmd: each its own Port, spool, pid and log), fake GPUs as gres whose File= are
// character devices made with mknod (c 1 3). Everything lives under one tmp dir; ports are free
// ones picked at start, so several beds (other tests, other helpers) can run at once.
// Needs root, slurm-wlm, munge and openssh-server (see .ci/run).
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './testbed.js';

export interface SlurmBedOptions {
  nodes?: number;
  gpusPerNode?: number;
  /** Unix users the chat users map to (made with useradd when missing), each with a workspace dir. */
  users?: string[];
}

export interface SlurmBed {
  dir: string;
  /** The slurm.conf path: set SLURM_CONF to it to run Slurm commands against this cluster. */
  conf: string;
  nodes: string[];
  /** Shared filesystem root: one dir per Unix user, owned by it. */
  homeRoot: string;
  login: { port: number; hostKey: string; clientKeyPath: string };
  /** The `slurm:` section of gpubot.yaml for this cluster (merge your own keys in). */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  /** Runs a Slurm command (argv, no shell) on this machine against this cluster. */
  cmd(argv: string[], opts?: { input?: string }): Promise<{ code: number; stdout: string; stderr: string }>;
  teardown(): Promise<void>;
}

export const SLURM_BINARIES = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/sbin/munged', '/usr/bin/sbatch', '/usr/sbin/sshd'];

/** Why the bed cannot start here, or undefined. A test must fail (not skip) on this in CI. */
export function slurmMissing(): string | undefined {
  const missing = SLURM_BINARIES.filter((b) => !existsSync(b));
  if (missing.length) return `missing ${missing.join(', ')} (apt-get install slurm-wlm munge openssh-server)`;
  if (process.getuid?.() !== 0) return 'the Slurm bed needs root';
  return undefined;
}

function exec(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code ?? 1) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function execOk(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}) {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r;
}

/** Starts a daemon in the foreground, detached into its own process group, output to a log. */
async function daemon(cmd: string, args: string[], log: string, env: NodeJS.ProcessEnv): Promise<number> {
  const fd = await fs.open(log, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd.fd, fd.fd], env });
  child.unref();
  await fd.close();
  if (!child.pid) throw new Error(`${cmd} did not start`);
  return child.pid;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logs: string[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const tails = await Promise.all(logs.map(async (l) => `${l}:\n${(await fs.readFile(l, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')}`));
      throw new Error(`${what} did not come up in ${timeoutMs} ms\n${tails.join('\n')}`);
    }
    await sleep(200);
  }
}

async function ensureUnixUser(name: string): Promise<void> {
  if ((await exec('id', ['-u', name])).code === 0) return;
  const r = await exec('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  // Another bed made it meanwhile.
  if (r.code !== 0 && (await exec('id', ['-u', name])).code !== 0) throw new Error(`useradd ${name}: ${r.stderr}`);
}

export async function startSlurmBed(opts: SlurmBedOptions = {}): Promise<SlurmBed> {
  const why = slurmMissing();
  if (why) throw new Error(`Slurm bed: ${why}`);
  const nodeCount = opts.nodes ?? 2;
  const gpus = opts.gpusPerNode ?? 2;
  const users = opts.users ?? [];
  // Short: unix socket paths max out at about 107 chars.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gps-'));
  await fs.chmod(dir, 0o755);
  const conf = path.join(dir, 'slurm.conf');
  const mungeSocket = path.join(dir, 'munge', 'munge.sock');
  const nodes = Array.from({ length: nodeCount }, (_, i) => `node${i + 1}`);
  const pids: number[] = [];
  const env = { ...process.env, SLURM_CONF: conf };
  const homeRoot = path.join(dir, 'home');

  /** slurmstepd processes of this bed (their log or output files are under dir). */
  const stepds = async (): Promise<number[]> => {
    const out: number[] = [];
    for (const entry of await fs.readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const comm = await fs.readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
      if (comm.trim() !== 'slurmstepd') continue;
      const fds = await fs.readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
      for (const fd of fds) {
        const target = await fs.readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
        if (target.startsWith(`${dir}/`)) {
          out.push(Number(entry));
          break;
        }
      }
    }
    return out;
  };

  const teardown = async () => {
    // Jobs first, so their steps end while slurmd still runs them.
    if (pids.length > 2) {
      await exec('scancel', ['--partition=gpu'], { env, timeoutMs: 10_000 });
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await stepds()).length) await sleep(200);
    }
    for (const pid of [...pids].reverse()) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* gone */
      }
    }
    const deadline = Date.now() + 10_000;
    for (const pid of pids) {
      while (Date.now() < deadline) {
        try {
          process.kill(pid, 0);
          await sleep(50);
        } catch {
          break;
        }
      }
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const pid of await stepds()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await fs.rm(dir, { recursive: true, force: true }).catch(() => {});
  };

  try {
    // munge: its own key, socket, pid and seed; --force since this dir is not /etc/munge's layout.
    await fs.mkdir(path.dirname(mungeSocket), { recursive: true, mode: 0o755 });
    await fs.writeFile(path.join(dir, 'munge', 'munge.key'), (await import('node:crypto')).randomBytes(1024), { mode: 0o400 });
    const mungeArgs = [
      '--foreground',
      '--force',
      `--socket=${mungeSocket}`,
      `--key-file=${path.join(dir, 'munge', 'munge.key')}`,
      `--pid-file=${path.join(dir, 'munge', 'munged.pid')}`,
      `--seed-file=${path.join(dir, 'munge', 'munged.seed')}`,
      `--log-file=${path.join(dir, 'munge', 'munged.log')}`,
    ];
    pids.push(await daemon('/usr/sbin/munged', mungeArgs, path.join(dir, 'munge', 'out.log'), env));
    await waitFor('munged', async () => existsSync(mungeSocket), 10_000, [path.join(dir, 'munge', 'munged.log'), path.join(dir, 'munge', 'out.log')]);

    // Fake GPUs: character devices (like /dev/null) per node.
    const devDir = path.join(dir, 'dev');
    await fs.mkdir(devDir);
    for (const n of nodes) for (let g = 0; g < gpus; g++) await execOk('mknod', [path.join(devDir, `${n}-gpu${g}`), 'c', '1', '3']);

    const ctldPort = await freePort();
    const nodePorts: number[] = [];
    for (const _ of nodes) nodePorts.push(await freePort());
    await fs.mkdir(path.join(dir, 'state'));
    await fs.mkdir(path.join(dir, 'spool'));
    for (const n of nodes) await fs.mkdir(path.join(dir, 'spool', n));
    await fs.writeFile(
      conf,
      [
        `ClusterName=gpb${path
          .basename(dir)
          .slice(4)
          .toLowerCase()
          .replace(/[^a-z0-9]/g, '')}`,
        'SlurmctldHost=localhost',
        `SlurmctldPort=${ctldPort}`,
        'SlurmUser=root',
        'SlurmdUser=root',
        `StateSaveLocation=${dir}/state`,
        `SlurmdSpoolDir=${dir}/spool/%n`,
        `SlurmctldPidFile=${dir}/slurmctld.pid`,
        `SlurmdPidFile=${dir}/slurmd-%n.pid`,
        `SlurmctldLogFile=${dir}/slurmctld.log`,
        `SlurmdLogFile=${dir}/slurmd-%n.log`,
        'AuthType=auth/munge',
        'CredType=cred/munge',
        `AuthInfo=socket=${mungeSocket}`,
        'GresTypes=gpu',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_Core',
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'JobAcctGatherType=jobacct_gather/none',
        'AccountingStorageType=accounting_storage/none',
        'JobCompType=jobcomp/none',
        'MpiDefault=none',
        'ReturnToService=2',
        'SchedulerType=sched/backfill',
        'SchedulerParameters=sched_interval=2',
        'SlurmctldTimeout=30',
        'SlurmdTimeout=60',
        'InactiveLimit=0',
        'MinJobAge=600',
        'KillWait=30',
        'MessageTimeout=20',
        'SlurmctldDebug=info',
        'SlurmdDebug=info',
        ...nodes.map((n, i) => `NodeName=${n} NodeHostname=localhost NodeAddr=127.0.0.1 Port=${nodePorts[i]} CPUs=2 RealMemory=500 Gres=gpu:${gpus} State=UNKNOWN`),
        `PartitionName=gpu Nodes=${nodes.join(',')} Default=YES MaxTime=7-00:00:00 State=UP OverSubscribe=NO`,
        '',
      ].join('\n'),
    );
    await fs.writeFile(path.join(dir, 'gres.conf'), nodes.map((n) => `NodeName=${n} Name=gpu File=${devDir}/${n}-gpu[0-${gpus - 1}]`).join('\n') + '\n');

    pids.push(await daemon('/usr/sbin/slurmctld', ['-D', '-c', '-f', conf], path.join(dir, 'slurmctld.out'), env));
    await waitFor('slurmctld', async () => (await exec('scontrol', ['ping'], { env })).stdout.includes('UP'), 30_000, [
      path.join(dir, 'slurmctld.log'),
      path.join(dir, 'slurmctld.out'),
    ]);
    for (const n of nodes) pids.push(await daemon('/usr/sbin/slurmd', ['-D', '-N', n, '-f', conf], path.join(dir, `slurmd-${n}.out`), env));
    await waitFor(
      'slurmd nodes',
      async () => {
        const r = await exec('sinfo', ['-h', '-N', '-o', '%N %t'], { env });
        const idle = r.stdout.split('\n').filter((l) => /\bidle\b/.test(l)).length;
        return idle === nodes.length;
      },
      60_000,
      [path.join(dir, 'slurmctld.log'), ...nodes.map((n) => path.join(dir, `slurmd-${n}.log`))],
    );

    // The shared filesystem: one workspace per Unix user, theirs.
    await fs.mkdir(homeRoot, { mode: 0o755 });
    for (const u of users) {
      await ensureUnixUser(u);
      const home = path.join(homeRoot, u);
      await fs.mkdir(home, { mode: 0o700 });
      await execOk('chown', [`${u}:`, home]);
    }

    // The login node: a real sshd, root login with a client key, SLURM_CONF set for its sessions.
    const sshDir = path.join(dir, 'ssh');
    await fs.mkdir(sshDir, { mode: 0o700 });
    await execOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(sshDir, 'host_key')]);
    await execOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(sshDir, 'client_key')]);
    await fs.mkdir(path.join(sshDir, 'home'));
    await fs.mkdir('/run/sshd', { recursive: true });
    const loginPort = await freePort();
    await fs.writeFile(
      path.join(sshDir, 'sshd_config'),
      [
        `Port ${loginPort}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${sshDir}/host_key`,
        'PidFile none',
        `AuthorizedKeysFile ${sshDir}/client_key.pub`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'UseDNS no',
        'PrintMotd no',
        'MaxSessions 100',
        'MaxStartups 100:30:200',
        `SetEnv SLURM_CONF=${conf} HOME=${sshDir}/home PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
        '',
      ].join('\n'),
    );
    pids.push(await daemon('/usr/sbin/sshd', ['-D', '-e', '-f', path.join(sshDir, 'sshd_config')], path.join(sshDir, 'sshd.log'), env));
    await waitFor('login sshd', async () => (await fs.readFile(path.join(sshDir, 'sshd.log'), 'utf8').catch(() => '')).includes('Server listening'), 10_000, [
      path.join(sshDir, 'sshd.log'),
    ]);
    const hostKey = (await fs.readFile(path.join(sshDir, 'host_key.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');

    return {
      dir,
      conf,
      nodes,
      homeRoot,
      login: { port: loginPort, hostKey, clientKeyPath: path.join(sshDir, 'client_key') },
      config: (extra = {}) => ({
        name: 'cluster',
        ssh: { host: '127.0.0.1', port: loginPort, user: 'root', privateKeyPath: path.join(sshDir, 'client_key'), hostKey },
        partition: 'gpu',
        workspace: `${homeRoot}/{unixUser}`,
        ...extra,
      }),
      cmd: (argv, o = {}) => exec(argv[0]!, argv.slice(1), { env, input: o.input }),
      teardown,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}
