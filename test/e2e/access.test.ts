import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { DiscordAdapter } from '../../src/adapters/discord/discord-adapter.js';
import { SlackAdapter } from '../../src/adapters/slack/slack-adapter.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { startDiscordStandin, type DiscordStandin } from '../support/discord-standin.js';
import { startSlackStandin, type SlackStandin } from '../support/slack-standin.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const EPHEMERAL = 64;
const STRING = 3;
const ROLE = '555000000000000001';
const FOREIGN_GUILD = '999000000000000009';
const slackTexts = (blocks: Json[] = []): string => blocks.map((b) => [b.text?.text, ...(b.fields ?? []).map((f: Json) => f.text)].filter(Boolean).join('\n')).join('\n');

/** What a hostile container prints: mentions, a fence breaker, links in both chats' syntax. */
const HOSTILE = ['@everyone <!channel> <@80351110224678912> look', '```', 'outside the fence?', '[click me](https://evil.example/steal) <https://evil.example|here>'].join('\n');
const hostileCommand = `sh -c 'echo ${Buffer.from(`${HOSTILE}\n`).toString('base64')} | base64 -d; sleep 600'`;

describe('who may use the bot, and output that stays inert (Slack and Discord stand-ins, real test bed)', () => {
  let bed: Bed;
  let app: App;
  let discord: DiscordStandin;
  let slack: SlackStandin;
  let discordAdapter: DiscordAdapter;
  let slackAdapter: SlackAdapter;
  const containers = async () => (await bed.dockerCli('h1', ['ps', '-a', '--format', '{{.Names}}'])).stdout.split('\n').filter(Boolean).sort();
  const printed = (name: string) => waitFor(async () => (await bed.dockerCli('h1', ['logs', name])).stdout.includes('evil.example'), { what: `${name}'s output` });
  const known = async (platform: string, externalId: string) => (await app.db.chatIdentity.count({ where: { platform, externalId } })) > 0;

  /** A /gpu subcommand as Discord sends it, optionally from elsewhere; the first callback and the final message. */
  async function gpu(
    userId: string,
    subcommand: string,
    options: { name: string; type: number; value: string | number | boolean }[] = [],
    tweak: (p: Json) => void = () => {},
    dm = false,
  ) {
    const payload = discord.slashCommand({ userId, subcommand, options, dm });
    tweak(payload);
    const sent = discord.dispatchInteraction(payload);
    const callback = await sent.callback;
    expect(callback.ms).toBeLessThan(3000);
    const message =
      callback.type === 4 ? callback.data : await discord.waitForOriginal(sent.token, (m) => !String(m.content ?? '').startsWith('⏳') && (m.embeds?.length ?? 0) > 0, 20_000);
    return { callback, message, token: sent.token };
  }

  async function slash(userId: string, text: string, tweak: (p: Json) => void = () => {}) {
    const { payload, responseId } = slack.slashCommand({ userId, text });
    tweak(payload);
    const ack = await slack.sendEnvelope('slash_commands', payload);
    expect(ack.ackMs).toBeLessThan(3000);
    return { responseId };
  }

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    discord = await startDiscordStandin({
      users: {
        D1: { username: 'dora', roles: [ROLE] },
        D2: { username: 'norole' },
        D3: { username: 'dm_user', roles: [ROLE] },
        D4: { username: 'speedy', roles: [ROLE] },
        D5: { username: 'stranger', roles: [ROLE] },
      },
      roles: { [ROLE]: 'gpu-users' },
    });
    slack = await startSlackStandin({
      users: { U1: { name: 'sam' }, U2: { name: 'guest', is_restricted: true }, U3: { name: 'single', is_ultra_restricted: true }, U4: { name: 'outsider' } },
    });
    app = await appFor(bed, {
      discord: { roles: [ROLE] },
      // Small buckets so the test can reach the limit; each user here stays under it otherwise.
      rateLimits: { commands: { perMinute: 1, burst: 6 } },
    });
    discordAdapter = new DiscordAdapter({ token: discord.token, appId: discord.appId, guildId: discord.guildId, apiUrl: discord.apiUrl }, silentLogger());
    await discordAdapter.start(app);
    slackAdapter = new SlackAdapter({ botToken: slack.botToken, appToken: slack.appToken, port: 0, apiUrl: slack.apiUrl, retries: 0 }, silentLogger());
    await slackAdapter.start(app);
    await slack.waitForSocket();
  });
  afterAll(async () => {
    await slackAdapter?.stop();
    await discordAdapter?.stop();
    await app?.close();
    await slack?.close();
    await discord?.close();
    await bed?.teardown();
  });

  it('Discord: /gpu run from a foreign server, from a DM, and by a member without the role launches nothing', async () => {
    const run = [{ name: 'name', type: STRING, value: 'intruder' }];
    const foreign = await gpu('D5', 'run', run, (p) => {
      p.guild_id = FOREIGN_GUILD;
      p.guild = { ...p.guild, id: FOREIGN_GUILD };
      p.authorizing_integration_owners = { '0': FOREIGN_GUILD };
      p.channel = { ...p.channel, guild_id: FOREIGN_GUILD };
    });
    const dm = await gpu('D3', 'run', run, () => {}, true);
    const noRole = await gpu('D2', 'run', run);
    for (const [what, r, title] of [
      ['foreign server', foreign, 'gpubot does not serve this server'],
      ['DM', dm, 'gpubot does not take commands in DMs'],
      ['no role', noRole, 'You may not use gpubot here'],
    ] as const) {
      expect(r.callback.type, what).toBe(4);
      expect(r.callback.data.flags & EPHEMERAL, what).toBe(EPHEMERAL);
      expect(r.message.embeds[0].title, what).toBe(title);
      expect(r.callback.data.allowed_mentions).toEqual({ parse: [] });
    }
    expect(await containers()).toEqual([]);
    for (const id of ['D5', 'D3', 'D2']) expect(await known('discord', id)).toBe(false);
    const audit = await app.db.auditEvent.findMany({ where: { action: 'access', result: 'refused' } });
    expect(audit.map((a) => a.actor).sort()).toEqual(['discord:D2', 'discord:D3', 'discord:D5']);
    expect(audit.find((a) => a.actor === 'discord:D5')!.detail).toContain(`server ${FOREIGN_GUILD} is not in DISCORD_GUILD_ID`);
    expect(discord.violations).toEqual([]);
  });

  it('Slack: a foreign workspace and guests (both kinds) launch nothing', async () => {
    const foreign = await slash('U4', 'run --name intruder', (p) => {
      p.team_id = 'T0FOREIGN';
    });
    const guest = await slash('U2', 'run --name guest-box');
    const single = await slash('U3', 'run');
    for (const [what, r, title] of [
      ['foreign', foreign, 'gpubot does not serve this workspace'],
      ['guest', guest, 'Guest accounts may not use gpubot'],
      ['single-channel guest (the form is not even opened)', single, 'Guest accounts may not use gpubot'],
    ] as const) {
      const answer = await slack.waitForResponse(r.responseId, undefined, 20_000);
      expect(answer.response_type, what).toBe('ephemeral');
      expect(answer.text, what).toBe(title);
    }
    expect(slack.callsTo('views.open')).toEqual([]);
    expect(await containers()).toEqual([]);
    for (const id of ['U2', 'U3', 'U4']) expect(await known('slack', id)).toBe(false);
    expect((await app.db.auditEvent.findMany({ where: { action: 'access', actor: { startsWith: 'slack:' } } })).map((a) => a.actor).sort()).toEqual([
      'slack:U2',
      'slack:U3',
      'slack:U4',
    ]);
    // A button clicked in the foreign workspace is refused the same way.
    const click = slack.blockAction({ userId: 'U4', actionId: 'gpubot_0_stop', value: 'status' });
    (click.payload.team as Json).id = 'T0FOREIGN';
    await slack.sendEnvelope('interactive', click.payload);
    expect((await slack.waitForResponse(click.responseId, undefined, 20_000)).text).toBe('gpubot does not serve this workspace');
    expect(slack.violations).toEqual([]);
  });

  it('a container log with mentions, a fence and links renders inert on Slack', async () => {
    const { responseId } = await slash('U1', `run --name loud-s -- ${hostileCommand}`);
    expect((await slack.waitForResponse(responseId, (b) => !String(b.text).startsWith(':hourglass'), 30_000)).text).toBe('loud-s is running on h1 with GPU 0');
    await printed('loud-s');
    const logs = await slash('U1', 'logs loud-s');
    const body = await slack.waitForResponse(logs.responseId, undefined, 20_000);
    const shown = slackTexts(body.blocks as Json[]);
    expect(shown).toContain('&lt;!channel&gt;');
    expect(shown).toContain('&lt;@80351110224678912&gt;');
    expect(shown).toContain('&lt;https://evil.example|here&gt;');
    expect(shown).not.toMatch(/<[!@#]|<https?:/);
    // One code block: the fence it opens is the one it closes.
    const code = (body.blocks as Json[]).map((b) => String(b.text?.text ?? '')).find((t) => t.includes('evil.example'))!;
    expect(code.startsWith('```')).toBe(true);
    expect(code.endsWith('```')).toBe(true);
    expect(code.match(/```/g)).toHaveLength(2);
    expect(code).toContain('outside the fence?');
  });

  it('a container log with mentions, a fence and links renders inert on Discord, and no message may mention anyone', async () => {
    const run = await gpu('D1', 'run', [
      { name: 'name', type: STRING, value: 'loud-d' },
      { name: 'command', type: STRING, value: hostileCommand },
    ]);
    expect(run.message.embeds[0].title).toBe('loud-d is running on h1 with GPU 1');
    await printed('loud-d');
    const { message, token } = await gpu('D1', 'logs', [{ name: 'name', type: STRING, value: 'loud-d' }]);
    const description = String(message.embeds[0].description);
    expect(description.startsWith('```\n')).toBe(true);
    expect(description.endsWith('\n```')).toBe(true);
    expect(description.match(/```/g)).toHaveLength(2);
    expect(description).toContain('outside the fence?');
    // Every message the bot sent for it forbids mentions.
    const edits = discord.requests.filter((r) => r.path.includes(token) && (r.method === 'PATCH' || r.method === 'POST') && r.body && ('embeds' in r.body || 'content' in r.body));
    expect(edits.length).toBeGreaterThan(0);
    for (const e of edits) expect(e.body.allowed_mentions).toEqual({ parse: [] });
    expect(discord.violations).toEqual([]);
  });

  it('hostile process names in status stay text on both chats', async () => {
    const name = '@everyone <!channel> [click](https://evil.example/x) **bold**';
    await bed.updateGpuState('h1', (s) => s.processes.push({ gpuIndex: 3, pid: process.pid, name, usedMemoryMiB: 100 }));
    try {
      // status reads the live feed: the process shows from the next sample on (polled off chat, so
      // no one's command rate limit is spent on it).
      await waitFor(async () => JSON.stringify(await app.cluster.snapshot(['h1'])).includes('evil.example'), { what: 'the process in the live feed' });
      const { message } = await gpu('D1', 'status');
      const field = String(message.embeds[0].fields[0].value);
      expect(field).toContain('@\u200beveryone');
      expect(field).toContain('\\<!channel\\>');
      expect(field).toContain('\\[click\\](https://evil.example/x)');
      expect(field).toContain('\\*\\*bold\\*\\*');
      const { responseId } = await slash('U1', 'status');
      const shown = slackTexts((await slack.waitForResponse(responseId, undefined, 20_000)).blocks as Json[]);
      expect(shown).toContain('&lt;!channel&gt;');
      expect(shown).not.toContain('<!channel>');
    } finally {
      await bed.updateGpuState('h1', (s) => (s.processes = s.processes.filter((p) => p.name !== name)));
    }
  });

  it('with discord.allowDMs, /gpu is also registered for DMs with the bot, and answers there', async () => {
    const dms = await startDiscordStandin({ users: { D9: { username: 'dm_friend' } } });
    const dmApp = await appFor(bed, { discord: { allowDMs: true } });
    const adapter = new DiscordAdapter({ token: dms.token, appId: dms.appId, guildId: dms.guildId, apiUrl: dms.apiUrl }, silentLogger());
    try {
      await adapter.start(dmApp);
      expect(dms.commands(dms.guildId).map((c) => c.name)).toEqual(['gpu']);
      const global = dms.commands();
      expect(global.map((c) => [c.name, c.contexts])).toEqual([['gpu', [1]]]);
      const sent = dms.dispatchInteraction(dms.slashCommand({ userId: 'D9', subcommand: 'help', dm: true }));
      expect((await sent.callback).type).toBe(5);
      const answer = await dms.waitForOriginal(sent.token, (m) => (m.embeds?.length ?? 0) > 0);
      expect(answer.embeds[0].title).toBe('gpubot commands');
      expect(dms.violations).toEqual([]);
    } finally {
      await adapter.stop();
      await dmApp.close();
      await dms.close();
    }
  });

  it('past the command rate limit: "Slow down" with when to retry, and nothing runs', async () => {
    for (let i = 0; i < 6; i++) expect((await gpu('D4', 'help')).message.embeds[0].title).toBe('gpubot commands');
    const limited = await gpu('D4', 'run', [{ name: 'name', type: STRING, value: 'too-fast' }]);
    expect(limited.message.embeds[0].title).toBe('Slow down');
    expect(limited.message.embeds[0].description).toMatch(/nothing was done\. Try again in \d+ s\./);
    expect(await containers()).not.toContain('too-fast');
    expect(await app.db.container.count({ where: { name: 'too-fast' } })).toBe(0);
    // Someone else is not slowed down by it.
    expect((await gpu('D1', 'help')).message.embeds[0].title).toBe('gpubot commands');
  });
});
