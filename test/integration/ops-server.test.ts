import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startOpsServer } from '../../src/http/ops-server.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';

describe('/metrics and /healthz on the side port', () => {
  let bed: Bed;
  let app: App;
  let server: Server;
  let base: string;
  beforeAll(async () => {
    bed = await startBed({ hosts: 2, gpusPerHost: 2 });
    await bed.updateGpuState('h1', (s) => {
      s.gpus[1]!.utilization = 73;
      s.gpus[1]!.memoryUsedMiB = 1234;
    });
    app = await appFor(bed);
    server = await startOpsServer(app, 0);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.close();
    await app?.close();
    await bed?.teardown();
  });

  it('shows the test hosts’ GPUs with the right values, holders, allocations and commands', async () => {
    expect((await chat(app, 'alice', 'reserve 1 --host h2')).reply.tone).toBe('success');
    await chat(app, 'alice', 'status');
    expect((await chat(app, 'alice', 'stop nothing-here')).reply.code).toBe('not-found');
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toContain('gpubot_host_up{host="h1"} 1');
    expect(text).toContain('gpubot_gpu_utilization_percent{host="h1",gpu="1",model="NVIDIA A100-SXM4-80GB"} 73');
    expect(text).toContain('gpubot_gpu_memory_used_mib{host="h1",gpu="1",model="NVIDIA A100-SXM4-80GB"} 1234');
    expect(text).toContain('gpubot_gpu_memory_total_mib{host="h1",gpu="0",model="NVIDIA A100-SXM4-80GB"} 81920');
    expect(text).toContain('gpubot_gpu_holders{host="h2",gpu="0",model="NVIDIA A100-SXM4-80GB"} 1');
    expect(text).toContain('gpubot_allocations_active 1');
    expect(text).toContain('gpubot_queue_length 0');
    expect(text).toContain('gpubot_commands_total{command="reserve",ok="true"} 1');
    // Refusals by their code, not their words.
    expect(text).toContain('gpubot_commands_total{command="stop",ok="false"} 1');
    expect(text).toContain('gpubot_command_refusals_total{command="stop",code="not-found"} 1');
    expect(text).toMatch(/gpubot_command_seconds_count\{command="status"\} 1/);

    // The sample Grafana dashboard asks only for series this endpoint serves.
    const served = new Set(
      text
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.replace(/[{ ].*$/, '')),
    );
    const dashboard = JSON.parse(await readFile(new URL('../../deploy/grafana/gpubot-dashboard.json', import.meta.url), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
    const asked = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/gpubot_[a-z_]+/g) ?? [])));
    expect(asked.size).toBeGreaterThan(8);
    for (const name of asked) expect(served, `dashboard asks for ${name}`).toContain(name);
  });

  it('healthz is 200 with each host’s connection; a down host shows in it and in host_up', async () => {
    const ok = await fetch(`${base}/healthz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ ok: true, database: 'ok', hosts: { h1: { state: 'up' }, h2: { state: 'up' } } });
    await bed.stopSshd('h2');
    await waitFor(() => app.pool.get('h2')!.connection().state !== 'up', { what: 'h2 down' });
    const body = (await (await fetch(`${base}/healthz`)).json()) as { hosts: Record<string, { state: string }> };
    expect(body.hosts.h2!.state).not.toBe('up');
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('gpubot_host_up{host="h2"} 0');
  });
});
