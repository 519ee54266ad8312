import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { App } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { GPU_AND_APPS_QUERY, GPU_QUERY } from '../src/hosts/nvidia-smi.js';
import type { RemoteHost } from '../src/hosts/remote-host.js';
import { silentLogger } from '../src/log.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { startBed } from '../test/bed/testbed.js';
import { waitFor } from '../test/support/wait.js';
import { median, ms, percentile, sample } from './stats.js';

const run = promisify(execFile);

/** status over 16 hosts vs. the ssh loop a lab would script; Docker over SSH vs. the local socket. */
export async function benchEngineOne(report: (line: string) => void): Promise<Record<string, number>> {
  const HOSTS = 16;
  const bed = await startBed({ hosts: HOSTS });
  const app = await App.create({ config: parseConfig(bed.config()), log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench') });
  try {
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'connections' });
    const knownHosts = join(bed.baseDir, 'bench_known_hosts');
    await writeFile(knownHosts, bed.hosts.map((h) => `[127.0.0.1]:${h.sshPort} ${h.hostKeyLine}\n`).join(''));

    // What a lab scripts today: one fresh ssh per host, one after the other.
    const loop = async () => {
      for (const h of bed.hosts) {
        await run('ssh', ['-i', bed.clientKeyPath, '-p', String(h.sshPort), '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'BatchMode=yes', 'root@127.0.0.1', ...GPU_QUERY]);
      }
    };
    const actor = await app.actor('bench');
    const status = async () => {
      const reply = await app.engine.handleText(actor, 'status');
      if (!reply.title.startsWith(`${HOSTS * 4}/${HOSTS * 4} GPUs free`)) throw new Error(`unexpected status: ${reply.title}`);
    };
    // One parallel round trip per host over the kept-open connections: the floor for status.
    // Twice: with the GPU query alone, and with the combined GPU + process query status sends.
    const oneRoundTrip = () => Promise.all(app.pool.all().map((h) => h.run(GPU_QUERY, 5000)));
    const oneCombinedTrip = () => Promise.all(app.pool.all().map((h) => h.run(GPU_AND_APPS_QUERY, 5000)));

    await status();
    await oneRoundTrip();
    const loopMs = median(await sample(3, loop));
    const statusMs = median(await sample(15, status));
    const rttMs = median(await sample(15, oneRoundTrip));
    const combinedMs = median(await sample(15, oneCombinedTrip));
    report(`status over ${HOSTS} hosts (kept-open SSH, parallel): ${ms(statusMs)} median`);
    report(`sequential "ssh HOST nvidia-smi" loop over ${HOSTS} hosts: ${ms(loopMs)} median`);
    report(`  -> gpubot status is ${(loopMs / statusMs).toFixed(1)}x faster than the loop (target >= 10x)`);
    report(`one parallel nvidia-smi round trip per host: ${ms(rttMs)} median`);
    report(`  -> status / one round trip = ${(statusMs / rttMs).toFixed(2)} (target <= 1.5)`);
    report(`one parallel round trip per host of the combined GPU + process query: ${ms(combinedMs)} median`);
    report(`  -> status / that round trip = ${(statusMs / combinedMs).toFixed(2)}`);

    // Docker API latency: over the SSH channel vs. the same daemon's local socket.
    const remote = app.pool.get('h1') as RemoteHost;
    const local = new Docker({ socketPath: bed.host('h1').dockerSocket });
    await remote.docker.ping();
    const overSsh = await sample(200, () => remote.docker.version());
    const overSocket = await sample(200, () => local.version());
    report(`Docker GET /version over SSH channel: ${ms(median(overSsh))} median, ${ms(percentile(overSsh, 99))} p99`);
    report(`Docker GET /version over local socket: ${ms(median(overSocket))} median, ${ms(percentile(overSocket, 99))} p99`);
    const t = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 60 }, () => remote.docker.listContainers({ all: true })));
    const parallelMs = performance.now() - t;
    const failed = results.filter((r) => r.status === 'rejected').length;
    report(`60 parallel Docker calls over one SSH connection: ${ms(parallelMs)} total, ${failed} failed`);
    return { statusMs, loopMs, rttMs, combinedMs, sshDockerMs: median(overSsh), localDockerMs: median(overSocket), parallel60Ms: parallelMs, parallel60Failed: failed };
  } finally {
    await app.close();
    await bed.teardown();
  }
}
