import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Reply } from '../../src/core/reply.js';
import { startOpsServer } from '../../src/http/ops-server.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { testDatabaseUrl } from '../support/database.js';
import { waitFor } from '../support/wait.js';

const HOUR = 3_600_000;
const codeOf = (r: Reply): string => /Your link code: ([A-Z0-9]{6})/.exec(r.title)![1]!;
const text = (r: Reply): string => JSON.stringify(r.blocks);

describe('handles are never handed on; link confirms and locks; budgets hold; /metrics token', () => {
  let bed: Bed;
  let app: App;
  let server: Server;
  // Monday noon, so the calendar week has room on both sides.
  let clock = Date.UTC(2026, 10, 30, 12);
  const told: { platform: string; to: string; reply: Reply }[] = [];
  const as = async (platform: 'slack' | 'discord' | 'console', id: string, name: string, command: string) => app.engine.handleText(await app.actor(id, platform, name), command);
  const containers = async () => (await bed.dockerCli('h1', ['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean).sort();

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    const config = parseConfig(
      bed.config({
        quotas: {
          default: { maxGpus: 4, gpuHoursPerWeek: 10, maxHours: 72 },
          // By chat id and by handle; the chat-id entry follows the person through link.
          users: { 'slack:U9': { gpuHoursPerWeek: 1000 }, lifer: { gpuHoursPerWeek: 1000 } },
          maxLifetimeHours: 30,
        },
        admins: ['admin', 'discord:80351110224678912'],
        http: { port: 0, metricsToken: 'a-metrics-token-of-some-length' },
        rateLimits: { queuedRuns: 1 },
      }),
    );
    app = await App.create({ config, log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'handles'), now: () => new Date(clock), reconcileOnStart: false });
    for (const platform of ['slack', 'discord'] as const) app.registerNotifier(platform, async (to, reply) => void told.push({ platform, to, reply }));
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    server = await startOpsServer(app, 0);
  });
  afterAll(async () => {
    server?.close();
    await app?.close();
    await bed?.teardown();
  });

  it('link asks the first chat before merging; the merged-away handle and its files never go to the next "bob"', async () => {
    expect((await as('slack', 'U1', 'Alice', 'run --name alice-box --hours 2')).tone).toBe('success');
    const bobRun = await as('discord', '801', 'bob', "run --name bob-box --hours 2 -- sh -c 'echo secret > /workspace/diary.txt; sleep 600'");
    expect(bobRun.tone).toBe('success');
    await waitFor(async () => (await bed.dockerCli('h1', ['exec', 'bob-box', 'cat', '/workspace/diary.txt'])).stdout.includes('secret'), { what: 'bob’s file' });
    const bobId = (await app.db.user.findUniqueOrThrow({ where: { handle: 'bob' } })).id;
    await app.db.quotaOverride.create({ data: { handle: 'bob', gpuHoursPerWeek: 50, updatedBy: 'admin' } });
    expect((await as('discord', '801', 'bob', 'run --gpus 3 --queue --hours 1')).title).toMatch(/^Queued as #\d+/);

    // Alice's code, entered by Discord user bob: nothing merges yet; Alice is asked in her chat.
    const code = codeOf(await as('slack', 'U1', 'Alice', 'link'));
    const entered = await as('discord', '801', 'bob', `link ${code}`);
    expect(entered.title).toBe('Now confirm in your other chat');
    expect(await app.db.user.findUnique({ where: { id: bobId } })).not.toBeNull();
    const question = told.find((t) => t.to === 'U1' && t.reply.title.startsWith('Link '))!;
    expect(question.platform).toBe('slack');
    expect(question.reply.title).toBe('Link Discord user bob to you?');
    const buttons = question.reply.blocks.flatMap((b) => (b.type === 'actions' ? b.actions : []));
    expect(buttons.map((b) => [b.label, b.command])).toEqual([
      ['Yes', `link yes ${code}`],
      ['No', `link no ${code}`],
    ]);
    // Only the code's owner can answer.
    expect((await as('discord', '801', 'bob', `link yes ${code}`)).title).toBe('There is nothing to confirm for that code');

    const yes = await as('slack', 'U1', 'Alice', buttons[0]!.command);
    expect(yes.title).toBe('Linked: Discord user bob is you (alice) now');
    const alice = await app.db.user.findUniqueOrThrow({ where: { handle: 'alice' }, include: { containers: true, identities: true } });
    expect(alice.containers.map((c) => c.name).sort()).toEqual(['alice-box', 'bob-box']);
    expect(alice.identities.map((i) => `${i.platform}:${i.externalId}`).sort()).toEqual(['discord:801', 'slack:U1']);
    expect(await app.db.queuedRun.count({ where: { userId: alice.id, state: 'waiting' } })).toBe(1);
    expect(await app.db.quotaOverride.findUnique({ where: { handle: 'alice' } })).toMatchObject({ gpuHoursPerWeek: 50 });
    expect(await app.db.user.findUnique({ where: { handle: 'bob' } })).toBeNull();
    expect(await app.db.retiredHandle.findUnique({ where: { handle: 'bob' } })).not.toBeNull();
    const audited = await app.db.auditEvent.findFirst({ where: { action: 'link', result: 'ok', actor: 'alice' }, orderBy: { id: 'desc' } });
    expect(audited?.detail).toContain('user bob merged into alice');
    expect(audited?.detail).toMatch(/\b1 Container\b/);

    // The next "bob" gets a new handle and an empty directory.
    const next = await as('slack', 'U7', 'bob', 'run --name newbob-box --hours 1');
    expect(next.tone).toBe('success');
    expect((await app.db.chatIdentity.findUniqueOrThrow({ where: { platform_externalId: { platform: 'slack', externalId: 'U7' } }, include: { user: true } })).user.handle).toBe(
      'bob-2',
    );
    expect(JSON.stringify(next.blocks)).toContain('/bob-2 -> /workspace');
    const listing = await bed.dockerCli('h1', ['exec', 'newbob-box', 'ls', '-A', '/workspace']);
    expect(listing.code).toBe(0);
    expect(listing.stdout.trim()).toBe('');
    // Bob's file is still where it was, reachable by the one who is bob now.
    expect((await bed.dockerCli('h1', ['exec', 'bob-box', 'cat', '/workspace/diary.txt'])).stdout.trim()).toBe('secret');
    for (const name of ['alice-box', 'bob-box', 'newbob-box']) expect((await as('slack', name === 'newbob-box' ? 'U7' : 'U1', 'x', `rm ${name}`)).tone).toBe('success');
  });

  it('"No" voids the code and merges nothing', async () => {
    const code = codeOf(await as('slack', 'U2', 'Carol', 'link'));
    expect((await as('discord', '802', 'mallory', `link ${code}`)).title).toBe('Now confirm in your other chat');
    expect((await as('slack', 'U2', 'Carol', `link no ${code}`)).title).toBe('Not linked');
    expect(await app.db.user.findUnique({ where: { handle: 'mallory' } })).not.toBeNull();
    expect((await as('slack', 'U2', 'Carol', `link yes ${code}`)).title).toBe('There is nothing to confirm for that code');
  });

  it('five wrong link codes lock linking for 15 minutes, even with the right code', async () => {
    const code = codeOf(await as('slack', 'U3', 'Dan', 'link'));
    const wrong = ['AAAAAA', 'BBBBBB', 'CCCCCC', 'DDDDDD', 'EEEEEE'];
    const answers = [];
    for (const w of wrong) answers.push(await as('discord', '803', 'eve', `link ${w}`));
    expect(answers.every((a) => a.title === 'That link code is not valid')).toBe(true);
    expect(text(answers[4]!)).toContain('linking is locked for you until');
    const locked = await as('discord', '803', 'eve', `link ${code}`);
    expect(locked.title).toBe('Linking is locked for you');
    expect(text(locked)).toMatch(/Try again in \d+ min/);
    expect(told.some((t) => t.to === 'U3')).toBe(false);
    clock += 16 * 60_000;
    const fresh = codeOf(await as('slack', 'U3', 'Dan', 'link'));
    expect((await as('discord', '803', 'eve', `link ${fresh}`)).title).toBe('Now confirm in your other chat');
  });

  it('a code expires after 10 minutes; new codes are rate limited', async () => {
    const code = codeOf(await as('slack', 'U4', 'Fay', 'link'));
    clock += 11 * 60_000;
    expect((await as('discord', '804', 'fay', `link ${code}`)).title).toBe('That link code is not valid');
    // rateLimits.linkCodes: bursts of 3 (full again after those 11 minutes), then one a minute.
    for (let i = 0; i < 2; i++) expect(codeOf(await as('slack', 'U4', 'Fay', 'link'))).toMatch(/^[A-Z0-9]{6}$/);
    const last = codeOf(await as('slack', 'U4', 'Fay', 'link'));
    const limited = await as('slack', 'U4', 'Fay', 'link');
    expect(limited.title).toBe('Slow down: too many link codes');
    expect(text(limited)).toMatch(/No new code was made\. Try again in \d+ s\./);
    expect((await app.db.linkCode.findFirstOrThrow({ where: { userId: (await app.actor('U4', 'slack')).userId } })).code).toBe(last);
  });

  it('extend past the weekly GPU-hours is refused and changes nothing', async () => {
    // 10 GPU-hours a week: 2 GPUs for 3 h commit 6.
    const run = await as('slack', 'U5', 'Gus', 'run --gpus 2 --hours 3 --name gus-box');
    expect(run.tone).toBe('success');
    const before = (await app.db.container.findUniqueOrThrow({ where: { name: 'gus-box' } })).endsAt;
    const over = await as('slack', 'U5', 'Gus', 'extend gus-box --hours 3');
    expect(over.title).toBe('gus-box cannot be extended that far');
    expect(text(over)).toContain('quota gpuHoursPerWeek');
    expect(text(over)).toContain('At most 2 h more fits.');
    expect((await app.db.container.findUniqueOrThrow({ where: { name: 'gus-box' } })).endsAt).toEqual(before);
    expect((await as('slack', 'U5', 'Gus', 'extend gus-box --hours 2')).title).toMatch(/^gus-box now ends /);
    expect((await as('slack', 'U5', 'Gus', 'rm gus-box')).tone).toBe('success');
  });

  it('no container lives past quotas.maxLifetimeHours from its start, whatever extend, start and keep say', async () => {
    // slack:U9 has 1000 GPU-hours by chat id, so only the lifetime (30 h) limits here.
    const run = await as('slack', 'U9', 'Hal', 'run --hours 24 --name hal-box');
    expect(run.tone).toBe('success');
    clock += 20 * HOUR;
    const past = await as('slack', 'U9', 'Hal', 'extend hal-box --hours 12');
    expect(past.title).toMatch(/^hal-box cannot live past /);
    expect(text(past)).toContain('quotas.maxLifetimeHours');
    expect(text(past)).toContain('At most 6 h more fits.');
    expect((await as('slack', 'U9', 'Hal', 'extend hal-box --hours 6')).title).toMatch(/^hal-box now ends /);
    expect((await as('slack', 'U9', 'Hal', 'extend hal-box --hours 0.5')).title).toMatch(/^hal-box cannot live past /);
    // Stopped, then started again near the end: it gets only what is left.
    expect((await as('slack', 'U9', 'Hal', 'stop hal-box')).tone).toBe('success');
    clock += 9 * HOUR;
    expect((await as('slack', 'U9', 'Hal', 'start hal-box')).tone).toBe('success');
    const c = await app.db.container.findUniqueOrThrow({ where: { name: 'hal-box' } });
    expect(c.endsAt!.getTime() - c.createdAt.getTime()).toBe(30 * HOUR);
    expect((await as('slack', 'U9', 'Hal', 'stop hal-box')).tone).toBe('success');
    clock += 2 * HOUR;
    expect((await as('slack', 'U9', 'Hal', 'keep hal-box')).title).toMatch(/^hal-box cannot be kept: it reached quotas.maxLifetimeHours/);
    expect((await as('slack', 'U9', 'Hal', 'start hal-box')).title).toMatch(/^hal-box cannot live past /);
    expect((await as('slack', 'U9', 'Hal', 'rm hal-box')).tone).toBe('success');
  });

  it('admins and quotas by chat id; queued runs capped per user', async () => {
    expect((await app.actor('80351110224678912', 'discord', 'boss')).isAdmin).toBe(true);
    expect((await app.actor('80351110224678912', 'slack', 'boss')).isAdmin).toBe(false);
    expect(text(await as('slack', 'U9', 'Hal', 'quota'))).toContain('/ 1000');
    // rateLimits.queuedRuns: 1 here; alice has one waiting already (bob's, moved by link).
    const held = await as('slack', 'U6', 'Ivy', 'reserve 4 --hours 1');
    expect(held.tone, text(held)).toBe('success');
    const second = await as('slack', 'U1', 'Alice', 'run --gpus 3 --queue --hours 1');
    expect(second.title).toBe('You already have 1 run(s) waiting');
    expect(await app.db.queuedRun.count({ where: { state: 'waiting' } })).toBe(1);
    expect(await containers()).toEqual([]);
  });

  it('/metrics wants the bearer token; /healthz stays open', async () => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status).toBe(401);
    const ok = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer a-metrics-token-of-some-length' } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('gpubot_host_up{host="h1"} 1');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});
