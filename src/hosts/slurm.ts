import type { SlurmConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import { quoteArgv } from './argv.js';
import type { HostConnectionState } from './gpu-host.js';
import { SshConnection } from './ssh-connection.js';

/** One job as squeue lists it (any user's: the caller decides what is gpubot's and whose). */
export interface SlurmJob {
  id: string;
  name: string;
  user: string;
  /** Slurm's word: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ... */
  state: string;
  /** Why it waits (Resources, Priority, QOSMaxGpuPerUser, ...), "None" when it does not. */
  reason: string;
  gpus: number;
  /** As Slurm prints them: 1:30:00, 2-00:00:00, UNLIMITED. */
  timeLimit: string;
  timeUsed: string;
  nodes: string;
  /** Started at (running), or Slurm's estimate (pending, when the backfill scheduler has one). */
  startAt?: Date;
  submittedAt?: Date;
  /** Ended at (ended jobs), or the time limit's end (running). */
  endAt?: Date;
  partition: string;
  comment: string;
}

export interface SlurmNode {
  name: string;
  /** Slurm's state with flags: IDLE, MIXED, ALLOCATED, MIXED+DRAIN, DOWN*, ... */
  state: string;
  gpus: number;
  gpusUsed: number;
  reason?: string;
}

export interface SubmitSpec {
  name: string;
  unixUser: string;
  gpus: number;
  minutes: number;
  comment: string;
  workdir: string;
  /** The batch script, passed on sbatch's stdin. */
  script: string;
}

/** Slurm said no (sbatch, scancel, scontrol): its own message, for the user. */
export class SlurmRefused extends Error {}

const SEP = '\x1f';
const JOB_FORMAT = ['%i', '%j', '%u', '%T', '%r', '%b', '%l', '%M', '%N', '%S', '%V', '%P', '%e', '%k'].join(SEP);
const JOB_ID = /^\d{1,12}$/;
const UNIX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;

/** Slurm's local time stamps (2026-12-02T06:55:01), read in this process's time zone as Slurm prints them in the login node's. */
function slurmTime(text: string | undefined): Date | undefined {
  if (!text || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(text)) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** gres:gpu:2, gres/gpu:2, gpu:a100:4(S:0-1), gres:gpu:a100:2 -> the count. */
export function gpuCount(gres: string): number {
  let total = 0;
  for (const part of gres.split(',')) {
    const m = /(?:^|[:/])gpu(?::[A-Za-z0-9_.-]+)?:(\d+)/.exec(part);
    if (m) total += Number(m[1]);
  }
  return total;
}

/** `scontrol show -o` fields: KEY=VALUE words; a value may hold spaces (Reason, OS), up to the next KEY=. */
export function scontrolFields(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=/g;
  const marks: { key: string; start: number; valueStart: number }[] = [];
  for (let m = re.exec(line); m; m = re.exec(line)) marks.push({ key: m[1]!, start: m.index, valueStart: m.index + m[0].length });
  marks.forEach((mk, i) => {
    const end = i + 1 < marks.length ? marks[i + 1]!.start : line.length;
    out[mk.key] = line.slice(mk.valueStart, end).trim();
  });
  return out;
}

/**
 * A Slurm cluster through its login node: every call is a fixed argv over the one kept SSH
 * connection (quoted word by word, no shell text from chat). Commands acting for a user run as
 * that user (runuser as root, else sudo -n -u), so Slurm's own ownership and limits apply.
 */
export class SlurmCluster {
  readonly ssh: SshConnection;
  readonly name: string;

  constructor(
    readonly config: SlurmConfig,
    log: Logger,
    private readonly timeoutMs: number,
    downAfterMs = 3000,
  ) {
    this.name = config.name;
    this.ssh = new SshConnection(`slurm:${config.name}`, config.ssh, log, downAfterMs);
    this.ssh.start();
  }

  connection(): HostConnectionState {
    const s = this.ssh;
    return { state: s.state, lastError: s.lastError, down: s.isDown(), failingSince: s.failingSince, neverUp: !s.everUp };
  }

  /** argv run as `unixUser` on the login node. */
  private asUser(unixUser: string, argv: string[]): string[] {
    if (!UNIX_USER.test(unixUser)) throw new Error(`not a Unix user name: ${unixUser}`);
    return this.config.ssh.user === 'root' ? ['runuser', '-u', unixUser, '--', ...argv] : ['sudo', '-n', '-u', unixUser, '--', ...argv];
  }

  private async ok(argv: string[], input?: string): Promise<string> {
    const r = await this.ssh.exec(argv, this.timeoutMs, input);
    if (r.code !== 0) throw new SlurmRefused(slurmMessage(r.stderr || r.stdout) || `${argv.includes('--') ? argv[argv.indexOf('--') + 1] : argv[0]} exited with ${r.code}`);
    return r.stdout;
  }

  /** Every job Slurm still lists (pending, running, and ended ones within MinJobAge). */
  async jobs(): Promise<SlurmJob[]> {
    const out = await this.ok(['squeue', '--noheader', '--all', '--states=all', `--format=${JOB_FORMAT}`]);
    return out
      .split('\n')
      .filter((l) => l.includes(SEP))
      .map((line) => {
        const f = line.split(SEP);
        const comment = f.slice(13).join(SEP);
        return {
          id: f[0]!,
          name: f[1]!,
          user: f[2]!,
          state: f[3]!,
          reason: f[4]!,
          gpus: gpuCount(f[5]!),
          timeLimit: f[6]!,
          timeUsed: f[7]!,
          nodes: f[8]!,
          startAt: slurmTime(f[9]),
          submittedAt: slurmTime(f[10]),
          partition: f[11]!,
          endAt: slurmTime(f[12]),
          comment: comment === '(null)' ? '' : comment,
        };
      });
  }

  /** One job's full record (scontrol show job), or undefined when Slurm no longer knows it. */
  async job(id: string): Promise<Record<string, string> | undefined> {
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id}`);
    const r = await this.ssh.exec(['scontrol', 'show', 'job', '--oneliner', id], this.timeoutMs);
    if (r.code !== 0) {
      if (/Invalid job id/i.test(r.stderr)) return undefined;
      throw new SlurmRefused(slurmMessage(r.stderr) || `scontrol exited with ${r.code}`);
    }
    return scontrolFields(r.stdout.trim());
  }

  async nodes(): Promise<SlurmNode[]> {
    const out = await this.ok(['scontrol', 'show', 'node', '--oneliner', '--details']);
    return out
      .split('\n')
      .filter((l) => l.startsWith('NodeName='))
      .map((line) => {
        const f = scontrolFields(line);
        const reason = f.Reason && f.Reason !== '(null)' ? f.Reason : undefined;
        return { name: f.NodeName!, state: f.State ?? 'UNKNOWN', gpus: gpuCount(f.Gres ?? ''), gpusUsed: gpuCount(f.GresUsed ?? ''), reason };
      });
  }

  /** What sbatch and salloc both say of a request: name, where, how many GPUs, how long, whose. */
  private requestOptions(spec: Omit<SubmitSpec, 'script'>): string[] {
    return [
      `--job-name=${spec.name}`,
      `--partition=${this.config.partition}`,
      ...(this.config.account ? [`--account=${this.config.account}`] : []),
      `--gres=gpu:${spec.gpus}`,
      `--time=${spec.minutes}`,
      `--comment=${spec.comment}`,
      `--chdir=${spec.workdir}`,
    ];
  }

  /** sbatch as the user, the script on stdin; returns the job id. */
  async submit(spec: SubmitSpec): Promise<string> {
    const argv = ['sbatch', '--parsable', ...this.requestOptions(spec), `--output=${spec.workdir}/gpubot-%x-%j.out`, '--export=NONE'];
    const out = await this.ok(this.asUser(spec.unixUser, argv), spec.script);
    const id = out.trim().split(';')[0]!;
    if (!JOB_ID.test(id)) throw new SlurmRefused(`sbatch gave no job id: ${out.trim().slice(0, 200)}`);
    return id;
  }

  /**
   * An allocation without a command (salloc --no-shell) as the user, granted within a few seconds
   * or refused: the job id, or SlurmRefused with Slurm's reason.
   */
  async allocate(spec: Omit<SubmitSpec, 'script'>): Promise<string> {
    const argv = ['salloc', '--no-shell', '--immediate=5', ...this.requestOptions(spec)];
    const r = await this.ssh.exec(this.asUser(spec.unixUser, argv), Math.max(this.timeoutMs, 15_000));
    const granted = /Granted job allocation (\d+)/.exec(`${r.stderr}\n${r.stdout}`);
    if (r.code !== 0 || !granted) throw new SlurmRefused(slurmMessage(r.stderr || r.stdout) || `salloc exited with ${r.code}`);
    return granted[1]!;
  }

  /** scancel as the job's own user: Slurm checks the owner too. */
  async cancel(id: string, unixUser: string): Promise<void> {
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id}`);
    await this.ok(this.asUser(unixUser, ['scancel', id]));
  }

  /** Raising a time limit is for Slurm operators: the login user must be one (root is). */
  async setTimeLimit(id: string, minutes: number): Promise<void> {
    if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id}`);
    await this.ok(['scontrol', 'update', `JobId=${id}`, `TimeLimit=${Math.ceil(minutes)}`]);
  }

  /** The last lines of a file, read as `unixUser` (a link planted in its place reads only what that user may read). */
  async tail(path: string, lines: number, unixUser: string): Promise<string> {
    const r = await this.ssh.exec(this.asUser(unixUser, ['tail', '-n', String(lines), '--', path]), this.timeoutMs);
    if (r.code !== 0) throw new SlurmRefused(r.stderr.trim().slice(0, 300) || `tail exited with ${r.code}`);
    return r.stdout;
  }

  close(): void {
    this.ssh.close();
  }
}

/** sbatch: error: Batch job submission failed: X -> X */
function slurmMessage(text: string): string {
  const lines = text
    .split('\n')
    .map((l) =>
      l
        .replace(/^\w+: error: /, '')
        .replace(/^Batch job submission failed: /, '')
        .trim(),
    )
    .filter(Boolean);
  return lines.join('; ').slice(0, 400);
}

/** A word or words as bash reads them back verbatim. */
export const shellWords = (argv: string[]): string => quoteArgv(argv);
