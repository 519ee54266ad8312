import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { App } from '../src/app.js';
import type { Reply } from '../src/core/reply.js';
import { parseConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { startBed, type Bed, type BedStateFile } from '../test/bed/testbed.js';
import { chat } from '../test/support/app.js';
import { waitFor } from '../test/support/wait.js';
import { median, percentile } from './stats.js';

/**
 * The live feed over 16 hosts (sshd + fake nvidia-smi, no Docker: Docker is not what is measured):
 * concurrent status, sample freshness, the monitor's CPU on the bot and on each host; then, on one
 * host with Docker, the time from a container's exit to its owner's message.
 */
export async function benchLive(report: (line: string) => void): Promise<void> {
  const HOSTS = 16;
  const INTERVAL = 2000;
  const bed = await startBed({ hosts: HOSTS, docker: false });
  const app = await App.create({
    config: parseConfig(bed.config({ telemetry: { intervalMs: INTERVAL } })),
    log: silentLogger(),
    databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench-live'),
  });
  try {
    await waitFor(() => app.pool.hostNames().every((n) => app.pool.monitor(n)!.sampleAge() !== undefined), { timeoutMs: 60_000, what: 'first samples' });
    const actor = await app.actor('bench');
    // The first status after start records the GPU inventory (a few writes, once): not what is measured.
    await app.engine.handleText(actor, 'status');
    for (const n of [20, 100]) {
      const times: number[] = [];
      let wrong = 0;
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          Array.from({ length: n }, async () => {
            const t = performance.now();
            const reply = await app.engine.handleText(actor, 'status');
            times.push(performance.now() - t);
            if (!reply.title.startsWith(`${HOSTS * 4}/${HOSTS * 4} GPUs free on ${HOSTS} hosts`)) wrong++;
          }),
        );
      }
      report(
        `| ${n} concurrent status over ${HOSTS} hosts (5 rounds) | median ${median(times).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms, ${wrong} wrong | p99 ≤ 100 ms, 0 wrong |`,
      );
    }
    // Freshness and CPU over 30 s of an idle bot: the bot's own, and on each host the sshd serving
    // the bot with everything under it (the sampling shell and each nvidia-smi it ran).
    const ages: number[] = [];
    const hostCpu0 = await hostsCpuMs(bed);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < 30_000) {
      for (const n of app.pool.hostNames()) ages.push(app.pool.monitor(n)!.sampleAge() ?? Infinity);
      await new Promise((r) => setTimeout(r, 500));
    }
    const cpu = process.cpuUsage(cpu0);
    const elapsed = performance.now() - t0;
    const hostCpu1 = await hostsCpuMs(bed);
    const cpuPct = ((cpu.user + cpu.system) / 1000 / elapsed) * 100;
    const perHost = [...hostCpu1].map(([name, ms]) => ((ms - (hostCpu0.get(name) ?? 0)) / elapsed) * 100);
    report(
      `| sample age, polled every 0.5 s over 30 s, interval ${INTERVAL} ms | median ${median(ages).toFixed(0)} ms, p99 ${percentile(ages, 99).toFixed(0)} ms | ≤ 2 intervals (${2 * INTERVAL} ms) |`,
    );
    report(`| bot CPU while idle with ${HOSTS} monitors (all threads) | ${cpuPct.toFixed(2)} % of one core (${(cpuPct / HOSTS).toFixed(3)} % per host) | |`);
    report(
      `| CPU on each host: the bot's sshd session and its children (sampling shell, nvidia-smi) | median ${median(perHost).toFixed(2)} %, max ${Math.max(...perHost).toFixed(2)} % of one core | |`,
    );
  } finally {
    await app.close();
    await bed.teardown();
  }
}

/** utime + stime (+ reaped children's) of every process under each host's sshd, in ms. */
async function hostsCpuMs(bed: Bed): Promise<Map<string, number>> {
  const state = JSON.parse(await readFile(path.join(bed.baseDir, 'bed.json'), 'utf8')) as BedStateFile;
  const procs = await processTable();
  const out = new Map<string, number>();
  for (const h of state.hosts) {
    let ms = 0;
    const todo = h.sshdPid ? [h.sshdPid] : [];
    while (todo.length) {
      const pid = todo.pop()!;
      const p = procs.get(pid);
      if (!p) continue;
      ms += p.cpuMs;
      todo.push(...p.children);
    }
    out.set(h.name, ms);
  }
  return out;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

async function processTable(): Promise<Map<number, { cpuMs: number; children: number[] }>> {
  const { readdir } = await import('node:fs/promises');
  const table = new Map<number, { ppid: number; cpuMs: number; children: number[] }>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => null);
    if (!stat) continue;
    // Fields after the command name (which may hold spaces) in parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [utime, stime, cutime, cstime] = [f[11], f[12], f[13], f[14]].map(Number) as [number, number, number, number];
    table.set(Number(entry), { ppid: Number(f[1]), cpuMs: (utime + stime + cutime + cstime) * TICK_MS, children: [] });
  }
  for (const [pid, p] of table) table.get(p.ppid)?.children.push(pid);
  return table;
}

/**
 * From a container's exit (Docker's FinishedAt) to its owner's private message: 5 containers on one
 * host with Docker, each ending 3 s after its start, one after the other.
 */
export async function benchExitNotice(report: (line: string) => void): Promise<void> {
  const bed = await startBed({ hosts: 1 });
  const app = await App.create({
    config: parseConfig(bed.config({ telemetry: { intervalMs: 2000 } })),
    log: silentLogger(),
    databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench-exits'),
  });
  const inbox: { to: string; at: number; reply: Reply }[] = [];
  app.registerNotifier('console', async (to, reply) => void inbox.push({ to, at: Date.now(), reply }));
  try {
    await waitFor(() => app.pool.monitor('h1')!.fresh(10_000), { timeoutMs: 60_000, what: 'the live feed' });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const name = `exit${i}`;
      const { reply } = await chat(app, `user${i}`, `run --name ${name} -- sh -c "sleep 3; exit ${i + 1}"`);
      if (!reply.title.startsWith(`${name} is running`)) throw new Error(`run ${name}: ${reply.title}`);
      const msg = await waitFor(() => inbox.find((m) => m.to === `user${i}`), { timeoutMs: 30_000, intervalMs: 10, what: `the message for ${name}` });
      if (msg.reply.title !== `${name} crashed (exit ${i + 1})`) throw new Error(`unexpected message: ${msg.reply.title}`);
      const finished = (await bed.dockerCli('h1', ['inspect', '-f', '{{.State.FinishedAt}}', name])).stdout.trim();
      delays.push(msg.at - new Date(finished).getTime());
      await chat(app, `user${i}`, `rm ${name}`);
    }
    report(
      `| container exit (Docker's FinishedAt) → its owner's message, 5 containers | median ${median(delays).toFixed(0)} ms, max ${Math.max(...delays).toFixed(0)} ms | ≤ 5000 ms |`,
    );
  } finally {
    await app.close();
    await bed.teardown();
  }
}
