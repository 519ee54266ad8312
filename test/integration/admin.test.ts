import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';

describe('admin hosts, drain, undrain, audit', () => {
  let bed: Bed;
  let app: App;
  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    app = await appFor(bed, { admins: ['boss'] });
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('only admins may', async () => {
    for (const cmd of ['admin hosts', 'admin audit', 'admin drain h1']) expect((await chat(app, 'alice', cmd)).reply.title).toBe('Only admins can do that');
  });

  it('drains a host: nothing new goes there, status says so; undrain brings it back', async () => {
    expect((await chat(app, 'boss', 'admin drain h1')).reply.title).toBe('h1 is drained: nothing new goes there; what runs keeps running');
    expect((await chat(app, 'alice', 'run --host h1')).text).toContain('h1 is not taking work: drained by an admin');
    expect((await chat(app, 'alice', 'status h1')).reply.blocks[0]).toMatchObject({ heading: 'h1: 4/4 GPUs free, drained' });
    const r = await chat(app, 'alice', 'reserve 1');
    expect(r.reply.title).toMatch(/ on h2 until /);
    expect((await chat(app, 'boss', 'admin undrain h1')).reply.title).toBe('h1 takes work again');
    expect((await chat(app, 'alice', 'reserve 1 --host h1')).reply.tone).toBe('success');
  });

  it('shows connections and GPU counts, and the audit log newest first', async () => {
    await chat(app, 'alice', 'status');
    const hosts = await chat(app, 'boss', 'admin hosts');
    expect(hosts.text).toMatch(/h1\s+up\s+4\s+no/);
    await bed.stopSshd('h2');
    const { waitFor } = await import('../support/wait.js');
    await waitFor(() => app.pool.get('h2')!.connection().state !== 'up', { what: 'h2 down' });
    expect((await chat(app, 'boss', 'admin hosts')).text).toMatch(/h2\s+(down|connecting)/);
    const log = await chat(app, 'boss', 'admin audit 3');
    expect(log.reply.title).toBe('The last 3 audit event(s)');
    expect(log.text).toMatch(/boss\s+undrain\s+h1\s+ok/);
    expect((await chat(app, 'boss', 'admin audit 999')).reply.tone).toBe('error');
  });
});
