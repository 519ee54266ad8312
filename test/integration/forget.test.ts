// A host that leaves the config: what gpubot holds there is shown, and released only on an admin's word.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { testDatabaseUrl } from '../support/database.js';
import { waitFor } from '../support/wait.js';

describe('a host leaves the config', () => {
  let bed: Bed;
  let url: string;
  const apps: App[] = [];
  async function open(raw: Record<string, unknown>): Promise<App> {
    const app = await App.create({ config: parseConfig(raw), log: silentLogger(), databaseUrl: url, reconcileOnStart: false });
    apps.push(app);
    await waitFor(() => app.pool.all().every((h) => h.connection().state !== 'connecting'), { what: 'SSH connections' });
    return app;
  }
  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    url = await testDatabaseUrl(bed.baseDir, 'forget');
  });
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
    await bed?.teardown();
  });

  it('admin hosts shows what is stranded; admin forget HOST releases it, audited; the host itself is not touched', async () => {
    const both = await open(bed.config({ admins: ['boss'] }));
    expect((await chat(both, 'alice', 'run --host h2 --name onh2 --image gpubot-test/busybox:latest')).reply.tone).toBe('success');
    expect((await chat(both, 'bob', 'reserve 2 --host h2')).reply.tone).toBe('success');
    await both.close();

    const raw = bed.config({ admins: ['boss'] }) as { hosts: { name: string }[] };
    raw.hosts = raw.hosts.filter((h) => h.name === 'h1');
    const app = await open(raw);
    const hosts = await chat(app, 'boss', 'admin hosts');
    expect(hosts.text).toContain('not in config: 1 container, 3 GPUs held');
    expect(hosts.text).toContain('"admin forget HOST"');
    expect((await chat(app, 'alice', 'quota')).text).toMatch(/GPUs held now:?\s+1 of at most 4/);

    expect((await chat(app, 'alice', 'admin forget h2')).reply.title).toBe('Only admins can do that');
    expect((await chat(app, 'boss', 'admin forget h1')).reply.title).toBe('h1 is still in the config');
    const r = await chat(app, 'boss', 'admin forget h2');
    expect(r.reply.title).toBe('h2 is forgotten: 1 container recorded gone, 3 GPUs released');
    expect(await app.db.gpuLease.count()).toBe(0);
    expect((await chat(app, 'alice', 'quota')).text).toMatch(/GPUs held now:?\s+0 of at most 4/);
    expect(await app.db.auditEvent.findFirst({ where: { action: 'forget', target: 'h2' } })).toMatchObject({ actor: 'boss', result: 'ok' });
    expect((await chat(app, 'boss', 'admin hosts')).text).not.toContain('not in config');
    expect((await chat(app, 'boss', 'admin forget h2')).reply.title).toBe('gpubot holds nothing on h2');
    // The container on h2 still runs: forgetting is bookkeeping only.
    expect((await bed.dockerCli('h2', ['inspect', '-f', '{{.State.Running}}', 'onh2'])).stdout.trim()).toBe('true');
  });

  it('flags storage.runAs: root in admin hosts', async () => {
    const app = await open(bed.config({ admins: ['boss'], storage: { userRoot: `${bed.baseDir}/users`, runAs: 'root' } }));
    const hosts = await chat(app, 'boss', 'admin hosts');
    expect(hosts.reply.tone).toBe('warning');
    expect(hosts.text).toContain('storage.runAs: root: containers run as root');
  });
});
