import { App } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { startBed } from '../test/bed/testbed.js';
import { waitFor } from '../test/support/wait.js';
import { median, percentile } from './stats.js';

/**
 * The live feed over 16 hosts (sshd + fake nvidia-smi, no Docker: Docker is not what is measured):
 * concurrent status, sample freshness, the monitor's CPU on the bot, idle RSS of the bot process.
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
    // Freshness and CPU over 30 s of an idle bot.
    const ages: number[] = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (performance.now() - t0 < 30_000) {
      for (const n of app.pool.hostNames()) ages.push(app.pool.monitor(n)!.sampleAge() ?? Infinity);
      await new Promise((r) => setTimeout(r, 500));
    }
    const cpu = process.cpuUsage(cpu0);
    const cpuPct = ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100;
    report(
      `| sample age, polled every 0.5 s over 30 s, interval ${INTERVAL} ms | median ${median(ages).toFixed(0)} ms, p99 ${percentile(ages, 99).toFixed(0)} ms | ≤ 2 intervals (${2 * INTERVAL} ms) |`,
    );
    report(`| bot CPU while idle with ${HOSTS} monitors | ${cpuPct.toFixed(2)} % of one core (${(cpuPct / HOSTS).toFixed(3)} % per host) | |`);
    report(`| bot RSS (this process: bench harness, no chat adapter) | ${Math.round(process.memoryUsage().rss / 1048576)} MB | |`);
  } finally {
    await app.close();
    await bed.teardown();
  }
}
