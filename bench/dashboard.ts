import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { App } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { dashboardAssets } from '../src/http/dashboard.js';
import { startOpsServer } from '../src/http/ops-server.js';
import { silentLogger } from '../src/log.js';
import { startBed } from '../test/bed/testbed.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { waitFor } from '../test/support/wait.js';
import { median } from './stats.js';

/**
 * The dashboard: page weight (HTML + JS + CSS as served, gzipped), time to first render of the grid
 * in Debian's headless chromium, and how long a change made in chat takes to show in an open page.
 */
export async function benchDashboard(report: (line: string) => void): Promise<void> {
  const assets = dashboardAssets();
  const gz = [...assets.values()].reduce((n, a) => n + a.gzipped.length, 0);
  const raw = [...assets.values()].reduce((n, a) => n + a.body.length, 0);
  const own = ['index.html', 'app.js', 'app.css'].reduce((n, k) => n + assets.get(k)!.gzipped.length, 0);
  report(
    `| page weight: HTML + JS + CSS with uPlot, gzipped | ${(gz / 1024).toFixed(1)} KiB (${(raw / 1024).toFixed(1)} KiB raw; gpubot's own files ${(own / 1024).toFixed(1)} KiB gzipped) | |`,
  );

  const HOSTS = 8;
  const bed = await startBed({ hosts: HOSTS, docker: false });
  const app = await App.create({ config: parseConfig(bed.config({ http: { port: 0 } })), log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench-dashboard') });
  const server = await startOpsServer(app, 0);
  const profile = await mkdtemp(join(tmpdir(), 'gpubot-bench-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    await waitFor(() => app.pool.hostNames().every((n) => app.pool.monitor(n)!.sampleAge() !== undefined), { timeoutMs: 60_000, what: 'first samples' });
    const actor = await app.actor('bench');
    const link = (await app.engine.handleText(actor, 'dashboard')).blocks.flatMap((b) => (b.type === 'text' ? [b.text] : []))[0]!;
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dashboard/${link.split('/dashboard/')[1]}`;
    const page = await browser.newPage();
    const renders: number[] = [];
    const states: number[] = [];
    for (let i = 0; i < 6; i++) {
      await page.goto(url);
      await page.waitForSelector(`.host[data-host="h${HOSTS}"] tr.gpu`);
      // The page marks the moment its grid is drawn, counted from the start of navigation.
      const mark = (await page.evaluate("performance.getEntriesByName('gpubot-first-render')[0].startTime")) as number;
      if (i > 0) renders.push(mark); // the first load warms the browser's caches
      const t = performance.now();
      await (await fetch(`${url}/state`)).json();
      states.push(performance.now() - t);
    }
    report(
      `| time to first render: navigation start to the grid of ${HOSTS} hosts × 4 GPUs drawn, in the page's own clock (5 loads) | median ${median(renders).toFixed(0)} ms | |`,
    );
    report(`| of which \`/state\` (link check, snapshot, queue, my part) | median ${median(states).toFixed(0)} ms | |`);
    await page.locator('#live', { hasText: 'live' }).waitFor();
    const updates: number[] = [];
    for (let i = 0; i < 6; i++) {
      const host = `h${(i % HOSTS) + 1}`;
      const t = performance.now();
      await app.engine.handleText(actor, `reserve 1 --host ${host}`);
      await page.locator(`.host[data-host="${host}"] .holders`, { hasText: 'bench (reserved)' }).waitFor();
      updates.push(performance.now() - t);
      await app.engine.handleText(actor, 'release all');
      await page.locator('.holders', { hasText: 'bench (reserved)' }).waitFor({ state: 'detached' });
    }
    report(
      `| update latency: \`reserve\` answered in chat → holder shown in the open page (server-sent events, checked every 1 s; 6 runs) | median ${median(updates).toFixed(0)} ms, max ${Math.max(...updates).toFixed(0)} ms | ≤ 5 s |`,
    );
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
    server.close();
    await app.close();
    await bed.teardown();
  }
}
