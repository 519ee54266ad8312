import Docker from 'dockerode';
import { App } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { placeGpus, type CandidateHost } from '../src/core/policy/allocation.js';
import { containerSpec, userNetwork } from '../src/hosts/container-spec.js';
import type { RemoteHost } from '../src/hosts/remote-host.js';
import { silentLogger } from '../src/log.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { startBed } from '../test/bed/testbed.js';
import { waitFor } from '../test/support/wait.js';
import { median, ms, percentile } from './stats.js';

/** The allocator's decision alone, on a big cluster with a realistic mix of used GPUs. */
function benchPlacement(report: (line: string) => void): number {
  const hosts: CandidateHost[] = Array.from({ length: 100 }, (_, h) => ({
    name: `gpu${h}`,
    usable: h % 17 !== 0,
    gpus: Array.from({ length: 8 }, (_, i) => ({ index: i, free: (h * 8 + i) % 3 !== 0 })),
  }));
  for (let i = 0; i < 1000; i++) placeGpus(hosts, 1 + (i % 8));
  const times: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const t = performance.now();
    placeGpus(hosts, 1 + (i % 8));
    times.push(performance.now() - t);
  }
  report(`allocation decision, 100 hosts x 8 GPUs: ${(median(times) * 1000).toFixed(1)} µs median, ${(percentile(times, 99) * 1000).toFixed(1)} µs p99 (target well under 5 ms)`);
  return median(times);
}

async function benchRun(report: (line: string) => void): Promise<Record<string, number>> {
  const bed = await startBed({ hosts: 1, gpusPerHost: 8 });
  const config = parseConfig(bed.config({ quotas: { default: { maxGpus: 8 } } }));
  const app = await App.create({ config, log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench'), reconcileOnStart: false });
  try {
    await waitFor(() => app.pool.get('h1')!.connection().state === 'up', { what: 'h1' });
    const actor = await app.actor('bench');
    let uid: number | undefined; // gpubot gives the user a uid at the first run
    // The bare-dockerode baseline: the same Docker client gpubot's runtime uses on this host.
    const remote = (app.pool.get('h1') as RemoteHost).docker;
    const local = new Docker({ socketPath: bed.host('h1').dockerSocket });
    let n = 0;
    const gpubotRun = async () => {
      const name = `g${n++}`;
      const r = await app.engine.handleText(actor, `run --gpus 1 --name ${name}`);
      if (r.tone !== 'success') throw new Error(r.title);
      return name;
    };
    const bare = (docker: Docker) => async () => {
      const name = `b${n++}`;
      const spec = containerSpec(config, {
        name,
        owner: 'bench',
        image: config.images.default,
        gpus: [0],
        allocationId: 0,
        shmSize: '8g',
        host: config.hosts[0]!,
        instanceId: app.instanceId,
        endsAt: new Date(),
        // The same spec gpubot sends: the user's own network (made by the runs before) and uid.
        network: userNetwork('bench'),
        ...(uid === undefined ? {} : { uid }),
      });
      const c = await docker.createContainer(spec);
      await c.start();
      return name;
    };
    const timed = async (fn: () => Promise<string>, cleanup: (name: string) => Promise<unknown>) => {
      const times: number[] = [];
      for (let i = 0; i < 12; i++) {
        const t = performance.now();
        const name = await fn();
        times.push(performance.now() - t);
        await cleanup(name);
      }
      return median(times.slice(2)); // first two warm up
    };
    const rmByBot = (name: string) => app.engine.handleText(actor, `rm ${name}`);
    const rmBare = (name: string) => local.getContainer(name).remove({ force: true });
    const runMs = await timed(gpubotRun, rmByBot);
    if (config.storage.runAs === 'user') uid = (await app.db.user.findUniqueOrThrow({ where: { handle: 'bench' } })).uid ?? undefined;
    const bareSshMs = await timed(bare(remote), rmBare);
    const bareLocalMs = await timed(bare(local), rmBare);
    report(`run end to end (allocate, image check, create, start, record): ${ms(runMs)} median`);
    report(`bare dockerode create+start of the same container, same daemon over the same SSH connection: ${ms(bareSshMs)} median`);
    report(`bare dockerode create+start over the daemon's local socket: ${ms(bareLocalMs)} median`);
    report(`  -> run / bare (same transport) = ${(runMs / bareSshMs).toFixed(2)} (target <= 1.2); run / bare local = ${(runMs / bareLocalMs).toFixed(2)}`);
    return { runMs, bareSshMs, bareLocalMs };
  } finally {
    await app.close();
    await bed.teardown();
  }
}

async function benchContention(report: (line: string) => void): Promise<Record<string, number>> {
  const bed = await startBed({ hosts: 4, gpusPerHost: 4 });
  const app = await App.create({ config: parseConfig(bed.config()), log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench'), reconcileOnStart: false });
  try {
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    const actors = await Promise.all(Array.from({ length: 50 }, (_, i) => app.actor(`u${i}`)));
    const t = performance.now();
    const replies = await Promise.all(actors.map((a, i) => app.engine.handleText(a, `run --gpus 1 --name c${i}`)));
    const totalMs = performance.now() - t;
    const ok = replies.filter((r) => r.tone === 'success').length;
    // Double allocation, counted on the hosts themselves: a GPU named by two running containers.
    let double = 0;
    for (const h of app.pool.all()) {
      const seen = new Map<string, number>();
      for (const c of (await h.runtime.listManaged()).filter((c) => c.state === 'running')) {
        for (const g of (c.labels['gpubot.gpus'] ?? '').split(',')) seen.set(g, (seen.get(g) ?? 0) + 1);
      }
      for (const count of seen.values()) if (count > 1) double += count - 1;
    }
    const leases = await app.db.gpuLease.findMany();
    double += leases.length - new Set(leases.map((l) => `${l.hostName}:${l.gpuIndex}`)).size;
    report(`50 concurrent "run --gpus 1" for a 16-GPU cluster: ${ms(totalMs)} total, ${ok} launched, ${50 - ok} refused, double allocations: ${double} (must be 0)`);
    return { contentionMs: totalMs, launched: ok, double };
  } finally {
    await app.close();
    await bed.teardown();
  }
}

export async function benchEngineTwo(report: (line: string) => void): Promise<Record<string, number>> {
  const placementMs = benchPlacement(report);
  return { placementMs, ...(await benchRun(report)), ...(await benchContention(report)) };
}
