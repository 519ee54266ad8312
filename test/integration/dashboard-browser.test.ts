import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startOpsServer } from '../../src/http/ops-server.js';
import { dashboardKey, signToken } from '../../src/operations/dashboard.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';

/** Debian's chromium (.ci/run installs it); playwright-core drives it, no downloaded browser. */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);

const HOSTILE_MODEL = '<img src=x onerror="window.__pwned=1">GPU';
const HOSTILE_PROCESS = '<script>window.__pwned=2</script>';

describe('dashboard in a real browser: the signed link, the live grid, charts, refusals', () => {
  let bed: Bed;
  let app: App;
  let server: Server;
  let base: string;
  let context: BrowserContext;
  let profile: string;
  const requests: string[] = [];

  const linkFor = async (user: string): Promise<string> => {
    const { reply } = await chat(app, user, 'dashboard');
    expect(reply.tone, reply.title).toBe('info');
    const text = reply.blocks.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('\n');
    const token = /\/dashboard\/([^\s/]+)/.exec(text)?.[1];
    expect(token).toBeDefined();
    return `${base}/dashboard/${token}`;
  };

  const open = async (url: string): Promise<{ page: Page; errors: string[] }> => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (r) => requests.push(r.url()));
    const res = await page.goto(url);
    expect(res?.status()).toBe(200);
    await page.waitForSelector('.host[data-host="h1"]');
    return { page, errors };
  };

  beforeAll(async () => {
    bed = await startBed({ hosts: 2, gpusPerHost: 2 });
    await bed.updateGpuState('h2', (s) => {
      s.gpus[1]!.name = HOSTILE_MODEL;
    });
    await bed.updateGpuState('h1', (s) => {
      s.gpus[1]!.utilization = 61;
      s.processes.push({ gpuIndex: 1, pid: 4242, name: HOSTILE_PROCESS, usedMemoryMiB: 1000 });
    });
    app = await appFor(bed, { admins: ['boss'], http: { port: 0, dashboard: { public: true } } });
    server = await startOpsServer(app, 0);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // 50 minutes of minute means for h1's GPU 0, as the live feed would have kept them.
    const now = Date.now();
    for (let i = 50; i >= 1; i--)
      await app.db.gpuSample.create({
        data: {
          hostName: 'h1',
          gpuIndex: 0,
          at: new Date(Math.floor(now / 60_000) * 60_000 - i * 60_000),
          utilization: 30 + (i % 7) * 5,
          utilizationMax: 90,
          memoryUsedMiB: 100,
          samples: 30,
        },
      });
    expect((await chat(app, 'bob', 'reserve 1 --host h2 --hours 2')).reply.tone).toBe('success');
    // And a reservation of bob's from yesterday: 2 GPUs for 3 hours.
    const bobId = (await app.db.user.findUniqueOrThrow({ where: { handle: 'bob' } })).id;
    await app.db.allocation.create({
      data: {
        userId: bobId,
        kind: 'reservation',
        hostName: 'h2',
        gpuIndexes: '0,1',
        state: 'released',
        createdAt: new Date(now - 26 * 3_600_000),
        releasedAt: new Date(now - 23 * 3_600_000),
      },
    });
    profile = await mkdtemp(join(tmpdir(), 'gpubot-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await context?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    server?.close();
    await app?.close();
    await bed?.teardown();
  });

  it('shows the test bed’s hosts, models and holders; a run from chat appears live; charts have data', async () => {
    const { page, errors } = await open(await linkFor('alice'));
    await waitFor(async () => (await page.textContent('#live')) === 'live', { what: 'event stream open' });
    expect(await page.locator('.host').evaluateAll((hs) => hs.map((h) => h.getAttribute('data-host')))).toEqual(['h1', 'h2']);
    expect(await page.textContent('tr.gpu[data-gpu="h1:0"] .model')).toBe('NVIDIA A100-SXM4-80GB');
    expect(await page.textContent('tr.gpu[data-gpu="h2:0"] .holders')).toBe('bob (reserved)');
    expect(await page.textContent('tr.gpu[data-gpu="h1:0"] .holders')).toBe('free');
    expect(await page.textContent('#who')).toBe('alice');
    expect(await page.isHidden('#admin')).toBe(true);

    // A run from the console shows up in the open page without a reload.
    const run = await chat(app, 'alice', 'run --gpus 1 --host h1 --name live1');
    expect(run.reply.tone, run.text).toBe('success');
    await page.locator('tr.gpu .holders', { hasText: /^alice \(live1\)$/ }).waitFor({ timeout: 5_000 });
    await page.locator('#my-containers', { hasText: 'live1' }).waitFor({ timeout: 5_000 });

    // Charts: the sparkline of h1:0 has its hour; the GPU-hours chart has bob's and alice's series.
    await waitFor(async () => Number(await page.getAttribute('tr.gpu[data-gpu="h1:0"] svg.spark', 'data-points')) >= 50, { what: 'sparkline points' });
    expect(Number(await page.getAttribute('tr.gpu[data-gpu="h2:0"] svg.spark', 'data-points'))).toBeLessThan(5); // only what the live feed kept meanwhile
    await page.reload();
    await page.waitForSelector('#gpu-hours-chart canvas');
    expect(Number(await page.getAttribute('#gpu-hours-chart', 'data-series'))).toBe(2);
    const total = Number(await page.getAttribute('#gpu-hours-chart', 'data-total'));
    expect(total).toBeGreaterThanOrEqual(6);
    expect(total).toBeLessThan(6.5);
    // Efficiency: only alice's own, not bob's.
    expect(await page.textContent('#efficiency-table')).toContain('alice');
    expect(await page.textContent('#efficiency-table')).not.toContain('bob');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('dashboard.png', ARTIFACTS).pathname, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 90_000);

  it('renders hostile model and process names as text', async () => {
    const { page, errors } = await open(await linkFor('carol'));
    expect(await page.textContent('tr.gpu[data-gpu="h2:1"] .model')).toBe(HOSTILE_MODEL);
    await page.locator('tr.gpu[data-gpu="h1:1"] .unmanaged', { hasText: HOSTILE_PROCESS }).waitFor();
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(await page.locator('#grid img, #grid script').count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('admins also see the audit tail and host connections', async () => {
    const { page } = await open(await linkFor('boss'));
    await page.waitForSelector('#admin:not([hidden])');
    expect(await page.textContent('#audit')).toContain('reserve');
    expect(await page.textContent('#connections')).toContain('h1');
    // A drained host shows as such, live.
    expect((await chat(app, 'boss', 'admin drain h2')).reply.tone).toBe('success');
    await page.locator('.host[data-host="h2"] .badge.drained').waitFor({ timeout: 5_000 });
    expect((await chat(app, 'boss', 'admin undrain h2')).reply.tone).toBe('success');
    await page.close();
    // Nobody else gets them from the data behind the page either.
    const alice = (await (await fetch(`${await linkFor('alice')}/state`)).json()) as Record<string, unknown>;
    expect(alice.admin).toBeUndefined();
  });

  it('refuses forged, expired and revoked links with 403; the public view shows the team, no one’s own', async () => {
    const good = await linkFor('dave');
    const token = good.split('/').pop()!;
    const flipped = token.slice(0, -2) + (token.at(-2) === 'A' ? 'B' : 'A') + token.at(-1);
    const user = (await app.db.user.findUniqueOrThrow({ where: { handle: 'dave' } })).id;
    const expired = signToken(await dashboardKey(app.ops), user, 0, new Date(Date.now() - 1000));
    const otherUser = token.replace(/^\d+/, String(user + 1)); // the signature was for dave
    for (const bad of [flipped, expired, otherUser, 'nonsense', `${token}x`]) {
      for (const suffix of ['', '/state', '/events', '/history']) expect((await fetch(`${base}/dashboard/${bad}${suffix}`)).status, `${bad}${suffix}`).toBe(403);
    }
    const page = await context.newPage();
    expect((await page.goto(`${base}/dashboard/${expired}`))?.status()).toBe(403);
    expect(await page.textContent('body')).toContain('expired');
    await page.close();

    expect((await fetch(good)).status).toBe(200);
    const { page: opened } = await open(good);
    await opened.locator('#live', { hasText: 'live' }).waitFor();
    expect((await chat(app, 'dave', 'dashboard revoke')).reply.tone).toBe('success');
    expect((await fetch(good)).status).toBe(403);
    // The page already open stops updating and says why (the stream checks its link every 10 s).
    await opened.locator('#notice', { hasText: 'revoked' }).waitFor({ timeout: 15_000 });
    await opened.close();
    expect((await fetch(await linkFor('dave'))).status).toBe(200);

    const { page: team } = await open(`${base}/dashboard/public`);
    expect(await team.textContent('#who')).toBe('team view');
    expect(await team.isHidden('#me')).toBe(true);
    expect(await team.textContent('tr.gpu[data-gpu="h2:0"] .holders')).toBe('bob (reserved)');
    await team.close();
    // Off unless the config opens it.
    app.options.config.http!.dashboard.public = false;
    expect((await fetch(`${base}/dashboard/public`)).status).toBe(403);
    app.options.config.http!.dashboard.public = true;
  }, 60_000);

  it('every request the pages made went to the bot’s own origin', () => {
    expect(requests.length).toBeGreaterThan(10);
    expect(requests.filter((u) => !u.startsWith(`${base}/`))).toEqual([]);
  });
});
