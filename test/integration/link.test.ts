import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { waitFor } from '../support/wait.js';
import { testDatabaseUrl } from '../support/database.js';

describe('link: one person across Slack and Discord', () => {
  let bed: Bed;
  let app: App;
  const HOUR = 3_600_000;
  let clock = new Date('2026-11-23T10:00:00Z').getTime();
  const as = async (platform: 'slack' | 'discord', id: string, name: string, text: string) => app.engine.handleText(await app.actor(id, platform, name), text);

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    const config = parseConfig(bed.config({ quotas: { default: { maxGpus: 2, gpuHoursPerWeek: 100, maxHours: 72 } } }));
    app = await App.create({ config, log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'link'), now: () => new Date(clock), reconcileOnStart: false });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('joins the two identities: containers, usage and the GPU limit count as one user', async () => {
    expect((await as('slack', 'U1', 'Alice', 'run --name from-slack')).tone).toBe('success');
    expect((await as('discord', '801', 'alice_d', 'reserve 1')).tone).toBe('success');
    clock += 2 * HOUR;

    const code = /Your link code: ([A-Z0-9]{6})/.exec((await as('slack', 'U1', 'Alice', 'link')).title)![1]!;
    expect((await as('discord', '801', 'alice_d', 'link WRONG1')).title).toBe('That link code is not valid');
    expect((await as('discord', '801', 'alice_d', `link ${code}`)).title).toBe('Now confirm in your other chat');
    const linked = await as('slack', 'U1', 'Alice', `link yes ${code}`);
    expect(linked.title).toBe('Linked: Discord user alice_d is you (alice) now');
    expect((await as('discord', '801', 'alice_d', `link ${code}`)).title).toBe('That link code is not valid'); // one-time

    // From Discord, the Slack container is hers; from Slack, the Discord reservation.
    const ls = await as('discord', '801', 'alice_d', 'ls');
    expect(ls.title).toBe('Your 1 container(s) and 1 reservation(s)');
    expect(JSON.stringify(ls.blocks)).toContain('from-slack');
    // One quota: 2 GPUs held across both chats is the limit.
    expect((await as('slack', 'U1', 'Alice', 'reserve 1')).blocks[0]).toEqual({
      type: 'text',
      text: 'quota maxGpus: you hold 2 GPUs and asked for 1 more; your limit is 2 at a time.',
    });
    expect(JSON.stringify((await as('slack', 'U1', 'Alice', 'quota')).blocks)).toContain('4.0 / 100');
    expect(await app.db.user.count()).toBe(1);
  });

  it('an expired code is refused', async () => {
    const code = /Your link code: ([A-Z0-9]{6})/.exec((await as('slack', 'U2', 'Bob', 'link')).title)![1]!;
    clock += 11 * 60_000;
    expect((await as('discord', '802', 'bob', `link ${code}`)).title).toBe('That link code is not valid');
  });
});
