// Slurm backend figures (docs/BENCHMARKS.md): a real local cluster (test/bed/slurm.ts) of 16
// slurmd nodes on this machine, reached through its login node's sshd like a real one.
import { App } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { startBed } from '../test/bed/testbed.js';
import { startSlurmBed } from '../test/bed/slurm.js';
import { chat } from '../test/support/app.js';
import { waitFor } from '../test/support/wait.js';
import { median, ms, percentile, sample } from './stats.js';

const USERS = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8'];

export async function benchSlurm(report: (line: string) => void): Promise<void> {
  const [bed, slurm] = await Promise.all([startBed({ hosts: 1, docker: false }), startSlurmBed({ nodes: 16, gpusPerNode: 4, users: USERS.map((u) => `gpb${u}`) })]);
  const app = await App.create({
    config: parseConfig(
      bed.config({
        rateLimits: { commands: { perMinute: 10_000, burst: 10_000 } },
        quotas: { default: { maxGpus: 64, gpuHoursPerWeek: 10_000, maxHours: 72 } },
        slurm: slurm.config({ unixUser: 'gpb{handle}' }),
      }),
    ),
    log: silentLogger(),
    databaseUrl: `file:${bed.baseDir}/bench-slurm.db`,
    reconcileOnStart: false,
  });
  try {
    await waitFor(() => app.ops.slurm!.connection().state === 'up', { what: 'the login node' });
    const home = (u: string) => `${slurm.homeRoot}/gpb${u}`;
    const running = async (id: string) => (await slurm.cmd(['squeue', '-h', '-j', id, '-o', '%T'])).stdout.trim() === 'RUNNING';
    const untilRunning = async (id: string) => waitFor(() => running(id), { intervalMs: 20, timeoutMs: 60_000, what: `job ${id} running` });

    // 1. submit -> running, side by side: gpubot's run (chat to RUNNING) against a bare sbatch as the same user.
    const viaBot: number[] = [];
    const bare: number[] = [];
    const replyBot: number[] = [];
    const replyBare: number[] = [];
    for (let i = 0; i < 8; i++) {
      let t = performance.now();
      const r = await chat(app, 'u1', `run --host cluster --gpus 1 --hours 1 --name lat${i} -- sleep 300`);
      replyBot.push(performance.now() - t);
      const id = /is job (\d+)/.exec(r.reply.title)?.[1];
      if (!id) throw new Error(r.text);
      await untilRunning(id);
      viaBot.push(performance.now() - t);
      t = performance.now();
      const b = await slurm.cmd(['runuser', '-u', 'gpbu1', '--', 'sbatch', '--parsable', '--gres=gpu:1', '--time=60', `--chdir=${home('u1')}`, '--wrap', 'sleep 300']);
      replyBare.push(performance.now() - t);
      await untilRunning(b.stdout.trim());
      bare.push(performance.now() - t);
      await slurm.cmd(['scancel', '-u', 'gpbu1']);
    }
    report(`submit -> running through gpubot (chat "run" to squeue RUNNING): ${ms(median(viaBot))} median, ${ms(Math.max(...viaBot))} max (n=8)`);
    report(`submit -> running, bare sbatch on the login node: ${ms(median(bare))} median, ${ms(Math.max(...bare))} max (n=8)`);
    report(`  -> gpubot / bare: ${(median(viaBot) / median(bare)).toFixed(2)}`);
    report(
      `the submission alone: gpubot's reply (quota, squeue, sbatch over SSH, squeue) ${ms(median(replyBot))} median; bare sbatch on the login node ${ms(median(replyBare))} median`,
    );

    // 2. status over 16 nodes with 16 jobs running (the hosts section included: one sshd-only host).
    for (let i = 0; i < 16; i++) await chat(app, USERS[i % USERS.length]!, `run --host cluster --gpus 2 --hours 1 --name st${i} -- sleep 600`);
    await waitFor(async () => (await slurm.cmd(['squeue', '-h', '-t', 'RUNNING', '-o', '%i'])).stdout.trim().split('\n').length >= 16, {
      what: '16 jobs running',
      timeoutMs: 60_000,
    });
    const status = await sample(30, async () => {
      const r = await chat(app, 'u1', 'status cluster');
      if (!r.text.includes('32/64 GPUs in use on 16 nodes')) throw new Error(r.text);
    });
    const roundTrip = await sample(30, () => app.ops.slurm!.ssh.exec(['scontrol', 'show', 'node', '--oneliner', '--details'], 10_000));
    report(`status of a 16-node cluster (scontrol show node + squeue over the kept SSH connection): ${ms(median(status))} median, ${ms(percentile(status, 95))} p95`);
    report(`one scontrol show node round trip over that connection: ${ms(median(roundTrip))} median`);

    // 3. commands per second one bot process sustains: 8 users at once, ls and queue (each an squeue).
    const started = performance.now();
    let done = 0;
    const deadline = started + 10_000;
    await Promise.all(
      USERS.map(async (u, i) => {
        while (performance.now() < deadline) {
          const r = await chat(app, u, i % 2 ? 'ls' : 'queue');
          if (r.reply.tone === 'error') throw new Error(r.text);
          done++;
        }
      }),
    );
    report(`commands per second, 8 users at once for 10 s (ls / queue, each one squeue): ${(done / ((performance.now() - started) / 1000)).toFixed(1)}/s (${done} commands)`);
  } finally {
    await app.close();
    await Promise.all([bed.teardown(), slurm.teardown()]);
  }
}
