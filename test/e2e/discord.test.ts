import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { gpuCommand } from '../../src/adapters/discord/command.js';
import { DiscordAdapter } from '../../src/adapters/discord/discord-adapter.js';
import { jobs } from '../../src/jobs/index.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor } from '../support/app.js';
import { startDiscordStandin, type DiscordStandin } from '../support/discord-standin.js';
import { startRegistryFor } from '../support/registry.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const EPHEMERAL = 64;
const STRING = 3;
const INTEGER = 4;
const customIds = (msg: Json): string[] => (msg.components ?? []).flatMap((row: Json) => row.components.map((c: Json) => c.custom_id));
const running = async (bed: Bed, name: string) => (await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Running}}', name])).stdout.trim();

describe('Discord adapter, real discord.js against a local Discord', () => {
  let bed: Bed;
  let app: App;
  let discord: DiscordStandin;
  let adapter: DiscordAdapter;

  /** A /gpu subcommand as Discord sends it; resolves with the callback and the final message. */
  async function gpu(
    userId: string,
    subcommand: string,
    options: { name: string; type: number; value: string | number | boolean }[] = [],
    done = (m: Json) => !String(m.content ?? '').startsWith('⏳') && (m.embeds?.length ?? 0) > 0,
  ) {
    const sent = discord.dispatchInteraction(discord.slashCommand({ userId, subcommand, options }));
    const callback = await sent.callback;
    expect(callback.ms).toBeLessThan(3000);
    return { callback, message: await discord.waitForOriginal(sent.token, done, 20_000) };
  }

  async function click(userId: string, customId: string) {
    const sent = discord.dispatchInteraction(discord.button({ userId, customId }));
    const callback = await sent.callback;
    expect(callback.ms).toBeLessThan(3000);
    return { callback, sent };
  }

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    discord = await startDiscordStandin({
      users: {
        D1: { username: 'alice' },
        D2: { username: 'bob' },
        D3: { username: 'carol', global_name: 'Carol C' },
        ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`C${i}`, { username: `crowd${i}` }])),
      },
    });
    app = await appFor(bed, {
      admins: ['D1'],
      images: { default: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', allowed: ['pytorch/pytorch:*', 'gpubot-test/*', '127.0.0.1:*'] },
    });
    adapter = new DiscordAdapter({ token: discord.token, appId: discord.appId, guildId: discord.guildId, apiUrl: discord.apiUrl }, silentLogger());
    await adapter.start(app);
  });
  afterAll(async () => {
    await adapter?.stop();
    await app?.close();
    await discord?.close();
    await bed?.teardown();
  });

  it('registers /gpu in the guild exactly as the builders say', async () => {
    const put = discord.requests.find((r) => r.method === 'PUT' && r.path.endsWith(`/applications/${discord.appId}/guilds/${discord.guildId}/commands`));
    expect(put?.body).toEqual([JSON.parse(JSON.stringify(gpuCommand({ job: jobs.map((j) => j.name) }).toJSON()))]);
    expect(put!.body[0].options.map((o: Json) => o.name)).toEqual([
      'help',
      'status',
      'run',
      'reserve',
      'release',
      'ls',
      'stop',
      'start',
      'rm',
      'logs',
      'extend',
      'keep',
      'images',
      'quota',
      'queue',
      'link',
      'image',
      'usage',
      'dashboard',
      'key',
      'ssh-config',
      'admin',
    ]);
    const image = put!.body[0].options.find((o: Json) => o.name === 'image');
    expect(image.options.map((o: Json) => [o.name, (o.options ?? []).map((x: Json) => x.name)])).toEqual([
      ['build', ['name', 'file', 'host', 'build-arg']],
      ['logs', ['name']],
      ['ls', []],
      ['rm', ['name']],
    ]);
    // Every admin action is a subcommand of the "admin" group; run-job offers the jobs.
    const admin = put!.body[0].options.find((o: Json) => o.name === 'admin');
    expect(admin.type).toBe(2);
    expect(admin.options.map((o: Json) => o.name)).toEqual(['run-job', 'quota', 'audit', 'hosts', 'drain', 'undrain', 'forget']);
    expect(admin.options[0].options[0].choices.map((c: Json) => c.value)).toEqual(jobs.map((j) => j.name));
  });

  it('answers status publicly as an embed with a field per host', async () => {
    const { callback, message } = await gpu('D1', 'status');
    expect(callback.type).toBe(5); // deferred
    expect(callback.data?.flags ?? 0).toBe(0);
    const embed = message.embeds[0];
    expect(embed.title).toBe('4/4 GPUs free on 1 host');
    expect(embed.fields[0].name).toBe('h1: 4/4 GPUs free');
    expect(embed.fields[0].value).toMatch(/`0` NVIDIA A100-SXM4-80GB · 0 MiB \/ 80\.0 GiB · 0 % · free/);
  });

  it('runs a container privately, with buttons; the owner acts, someone else is refused', async () => {
    const { callback, message } = await gpu('D1', 'run', [
      { name: 'gpus', type: INTEGER, value: 1 },
      { name: 'name', type: STRING, value: 'd1' },
      { name: 'command', type: STRING, value: 'sh -c \'trap "exit 0" TERM; sleep 600 & wait\'' },
    ]);
    expect(callback.data.flags).toBe(EPHEMERAL);
    expect(message.embeds[0].title).toBe('d1 is running on h1 with GPU 0');
    expect(message.embeds[0].fields.map((f: Json) => f.name)).toEqual(expect.arrayContaining(['Container', 'Host', 'GPUs', 'Ends']));
    expect(customIds(message)).toEqual(['gpubot!:stop d1', 'gpubot:logs d1', 'gpubot:extend d1 --hours 4', 'gpubot!:rm d1']);
    expect(await running(bed, 'd1')).toBe('true');

    // Someone else, even past the confirmation step, is refused and nothing changes.
    const bob = await click('D2', 'gpubot:stop d1');
    const refused = await discord.waitForOriginal(bob.sent.token, (m) => (m.embeds?.length ?? 0) > 0);
    expect(refused.embeds[0].title).toBe('Refused');
    expect(refused.embeds[0].description).toContain('belongs to alice');
    expect(await running(bed, 'd1')).toBe('true');

    // The owner: Stop asks first, then acts.
    const ask = await click('D1', 'gpubot!:stop d1');
    expect(ask.callback.type).toBe(4);
    expect(ask.callback.data.content).toBe('Sure? This runs `stop d1`.');
    expect(customIds(ask.callback.data)).toEqual(['gpubot:stop d1', 'gpubot-cancel']);
    const yes = await click('D1', 'gpubot:stop d1');
    const stopped = await discord.waitForOriginal(yes.sent.token, (m) => (m.embeds?.length ?? 0) > 0);
    expect(stopped.embeds[0].title).toBe('d1 is stopped; GPUs 0 on h1 are free again');
    expect(await running(bed, 'd1')).toBe('false');
  });

  it('autocompletes container names (own only), hosts with free GPUs and allowed images', async () => {
    const ask = async (userId: string, subcommand: string, focused: string, value: string) => {
      const sent = discord.dispatchInteraction(discord.autocomplete({ userId, subcommand, focused, value }));
      const cb = await sent.callback;
      expect(cb.type).toBe(8);
      return cb.data.choices as { name: string; value: string }[];
    };
    expect((await ask('D1', 'start', 'name', 'd')).map((c) => c.value)).toEqual(['d1']);
    expect(await ask('D2', 'start', 'name', '')).toEqual([]);
    expect(await ask('D2', 'run', 'host', '')).toEqual([{ name: 'h1 (4 free)', value: 'h1' }]);
    expect((await ask('D2', 'run', 'image', 'busy')).map((c) => c.value)).toEqual(['gpubot-test/busybox:latest']);
  });

  it('defers, shows pull progress, then the answer for a run that pulls its image', async () => {
    const registry = await startRegistryFor(bed, 'h1', [{ name: 'gpubot-test/pulled', tag: '1' }], { delayMs: 50 });
    try {
      const ref = registry.ref('gpubot-test/pulled', '1');
      const sent = discord.dispatchInteraction(
        discord.slashCommand({
          userId: 'D3',
          subcommand: 'run',
          options: [
            { name: 'image', type: STRING, value: ref },
            { name: 'name', type: STRING, value: 'pulled' },
          ],
        }),
      );
      expect((await sent.callback).type).toBe(5);
      const final = await discord.waitForOriginal(sent.token, (m) => (m.embeds?.length ?? 0) > 0, 30_000);
      expect(final.embeds[0].title).toBe('pulled is running on h1 with GPU 0');
      const edits = discord.requests.filter((r) => r.method === 'PATCH' && r.path.includes(sent.token)).map((r) => String(r.body?.content ?? ''));
      expect(edits.some((c) => c.startsWith(`⏳ pulling ${ref}: `) && c.includes('%'))).toBe(true);
      // Carol's handle came from her (unique) Discord username, not her display name.
      expect(await app.db.user.findUnique({ where: { handle: 'carol' } })).not.toBeNull();
    } finally {
      await registry.stop();
    }
  });

  it('does every other subcommand end to end', async () => {
    const title = async (sub: string, options: { name: string; type: number; value: string | number | boolean }[] = []) =>
      (await gpu('D1', sub, options)).message.embeds[0].title as string;
    // Carol's pulled container took GPU 0 while d1 was stopped.
    const taken = await gpu('D1', 'start', [{ name: 'name', type: STRING, value: 'd1' }]);
    expect(taken.message.embeds[0].title).toBe('d1 cannot start: its GPUs are taken');
    expect(taken.message.embeds[0].description).toContain('GPU 0 is held by carol (container pulled)');
    expect((await gpu('D3', 'rm', [{ name: 'name', type: STRING, value: 'pulled' }])).message.embeds[0].title).toBe('pulled is removed');
    expect(await title('start', [{ name: 'name', type: STRING, value: 'd1' }])).toBe('d1 is running again on h1 with GPUs 0');
    expect(
      await title('logs', [
        { name: 'name', type: STRING, value: 'd1' },
        { name: 'tail', type: INTEGER, value: 5 },
      ]),
    ).toBe('Last 5 lines of d1');
    expect(
      await title('extend', [
        { name: 'name', type: STRING, value: 'd1' },
        { name: 'hours', type: 10, value: 2 },
      ]),
    ).toMatch(/^d1 now ends /);
    const reserved = await title('reserve', [
      { name: 'gpus', type: INTEGER, value: 1 },
      { name: 'hours', type: 10, value: 1.5 },
    ]);
    expect(reserved).toMatch(/^Reserved GPU \d on h1 until /);
    expect(await title('ls')).toBe('Your 1 container(s) and 1 reservation(s)');
    const everyone = await gpu('D2', 'ls', [{ name: 'all', type: 5, value: true }]);
    expect(everyone.callback.data?.flags ?? 0).toBe(0); // the team's view goes to the channel
    expect(everyone.message.embeds[0].description).toContain('d1');
    expect(await title('release', [{ name: 'id', type: STRING, value: 'all' }])).toBe('Released 1 reservation');
    expect(await title('images', [{ name: 'host', type: STRING, value: 'h1' }])).toBe('Images on the hosts');
    expect(await title('rm', [{ name: 'name', type: STRING, value: 'd1' }])).toBe('d1 is removed');
    expect((await bed.dockerCli('h1', ['ps', '-a', '--format', '{{.Names}}'])).stdout).not.toContain('d1');
    // A bad value from a typed option meets the same validation as typed text.
    const bad = await gpu('D1', 'run', [{ name: 'name', type: STRING, value: '../etc' }]);
    expect(bad.message.embeds[0].title).toBe('That command was not understood');
    expect(bad.message.embeds[0].description).toContain('is not a valid name');
  });

  it('reaches every admin action as /gpu admin ACTION, with the same rules as typed text', async () => {
    const admin = async (userId: string, action: string, options: { name: string; type: number; value: string | number | boolean }[] = []) => {
      const sent = discord.dispatchInteraction(discord.slashCommand({ userId, subcommandGroup: 'admin', subcommand: action, options }));
      expect((await sent.callback).type).toBe(5);
      return (await discord.waitForOriginal(sent.token, (m) => (m.embeds?.length ?? 0) > 0, 20_000)).embeds[0];
    };
    expect((await admin('D2', 'hosts')).title).toBe('Only admins can do that');
    expect((await admin('D1', 'hosts')).title).toBe('1 host(s)');
    expect((await admin('D1', 'drain', [{ name: 'host', type: STRING, value: 'h1' }])).title).toBe('h1 is drained: nothing new goes there; what runs keeps running');
    expect((await app.db.host.findUniqueOrThrow({ where: { name: 'h1' } })).drained).toBe(true);
    expect((await admin('D1', 'undrain', [{ name: 'host', type: STRING, value: 'h1' }])).title).toBe('h1 takes work again');
    expect(
      (
        await admin('D1', 'quota', [
          { name: 'user', type: STRING, value: 'bob' },
          { name: 'gpu-hours', type: 10, value: 300 },
        ])
      ).title,
    ).toMatch(/bob/);
    expect(await app.db.quotaOverride.findUnique({ where: { handle: 'bob' } })).toMatchObject({ gpuHoursPerWeek: 300 });
    expect((await admin('D1', 'audit', [{ name: 'count', type: INTEGER, value: 3 }])).title).toBe('The last 3 audit event(s)');
    expect((await admin('D1', 'run-job', [{ name: 'job', type: STRING, value: 'reconcile' }])).title).toBe('Ran reconcile');
    // A value the typed grammar refuses is refused here too.
    expect((await admin('D1', 'drain', [{ name: 'host', type: STRING, value: 'H1;rm' }])).title).toBe('That command was not understood');
  });

  it('sends a DM to the right person', async () => {
    const alice = await app.db.user.findUniqueOrThrow({ where: { handle: 'alice' } });
    await app.notifyUser(alice.id, { tone: 'info', title: 'Your container d1 on h1 has ended', blocks: [], visibility: 'personal' });
    const dm = await discord.waitForRequest('POST', /\/users\/@me\/channels$/);
    expect(dm.body.recipient_id).toBe('D1');
    const msg = await discord.waitForRequest('POST', /\/channels\/[^/]+\/messages$/, (b) => b?.embeds?.[0]?.title === 'Your container d1 on h1 has ended');
    expect(msg.body.embeds[0].title).toBe('Your container d1 on h1 has ended');
    expect(discord.dmsTo('D1').length).toBeGreaterThan(0);
  });

  it('resumes the gateway session after op 7 and keeps answering', async () => {
    await discord.sendReconnect();
    expect(discord.resumes()).toBe(1);
    expect(discord.identifies()).toBe(1);
    const { message } = await gpu('D2', 'help');
    expect(message.embeds[0].title).toBe('gpubot commands');
  });

  it('answers 20 concurrent /gpu status from 20 people: each in time, each right', async () => {
    const reference = (await gpu('D1', 'status')).message.embeds[0];
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => gpu(`C${i}`, 'status')));
    // Nothing changes meanwhile; a sample late on a loaded machine is shown as stale, with its figures.
    const unstale = (s: string) => s.replace(/, (1 )?stale( \d+ s)?/g, '');
    for (const { callback, message } of answers) {
      expect(callback.ms).toBeLessThan(3000);
      const embed = message.embeds[0];
      expect(unstale(embed.title)).toBe(unstale(reference.title));
      expect(embed.fields.map((f: Json) => [unstale(f.name), f.value])).toEqual(reference.fields.map((f: Json) => [unstale(f.name), f.value]));
    }
  });

  it('never answered an interaction late', () => {
    expect(discord.violations).toEqual([]);
  });
});
