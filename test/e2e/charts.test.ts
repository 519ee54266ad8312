import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { DiscordAdapter } from '../../src/adapters/discord/discord-adapter.js';
import { SlackAdapter } from '../../src/adapters/slack/slack-adapter.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { startDiscordStandin, type DiscordStandin } from '../support/discord-standin.js';
import { startSlackStandin, type SlackStandin } from '../support/slack-standin.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const BOOLEAN = 5;

/** Width and height from a PNG's IHDR; throws unless the bytes start like a PNG. */
function pngSize(data: Buffer): { width: number; height: number } {
  expect(data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(data.subarray(12, 16).toString('latin1')).toBe('IHDR');
  expect(data.subarray(-8, -4).toString('latin1')).toBe('IEND');
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

describe('charts in chat: status --chart and usage --chart as PNGs through each chat’s real upload', () => {
  let bed: Bed;
  let app: App;
  let slack: SlackStandin;
  let slackAdapter: SlackAdapter;
  let discord: DiscordStandin;
  let discordAdapter: DiscordAdapter;

  beforeAll(async () => {
    bed = await startBed({ hosts: 2, gpusPerHost: 2 });
    app = await appFor(bed);
    // Three hours of minute means on h1 (as the live feed keeps them), and a week's allocations.
    const now = Date.now();
    const minute = Math.floor(now / 60_000) * 60_000;
    const rows = [];
    for (let i = 180; i >= 1; i--)
      for (const gpu of [0, 1]) rows.push({ hostName: 'h1', gpuIndex: gpu, at: new Date(minute - i * 60_000), utilization: gpu ? 20 : 80, samples: 30 });
    await app.db.gpuSample.createMany({ data: rows });
    for (const [handle, hours] of [
      ['alice', 10],
      ['bob', 4],
    ] as const) {
      const user = await app.db.user.create({ data: { handle } });
      await app.db.allocation.create({
        data: {
          userId: user.id,
          kind: 'reservation',
          hostName: 'h2',
          gpuIndexes: '0',
          state: 'released',
          createdAt: new Date(now - 48 * 3_600_000),
          releasedAt: new Date(now - (48 - hours) * 3_600_000),
        },
      });
    }
    slack = await startSlackStandin({ users: { U1: { name: 'alice' } } });
    slackAdapter = new SlackAdapter({ botToken: slack.botToken, appToken: slack.appToken, port: 0, apiUrl: slack.apiUrl, retries: 0 }, silentLogger());
    await slackAdapter.start(app);
    await slack.waitForSocket();
    discord = await startDiscordStandin({ users: { D1: { username: 'dora' } } });
    discordAdapter = new DiscordAdapter({ token: discord.token, appId: discord.appId, guildId: discord.guildId, apiUrl: discord.apiUrl }, silentLogger());
    await discordAdapter.start(app);
  });
  afterAll(async () => {
    await slackAdapter?.stop();
    await discordAdapter?.stop();
    await app?.close();
    await slack?.close();
    await discord?.close();
    await bed?.teardown();
  });

  it('Slack: /gpu status --chart answers with text and uploads a PNG with alt text to the same channel (upload v2)', async () => {
    const { payload, responseId } = slack.slashCommand({ userId: 'U1', text: 'status --chart' });
    await slack.sendEnvelope('slash_commands', payload);
    const body = await slack.waitForResponse(responseId, (b) => !String(b.text ?? '').startsWith(':hourglass'), 20_000);
    expect(body.text).toBe('GPU utilization per host, last 6 h (UTC)');
    expect(JSON.stringify(body.blocks)).toContain('50 %'); // h1's mean, the text fallback
    const upload = await slack.waitForUpload((u) => u.filename === 'gpubot-utilization.png', 15_000);
    expect(upload.channelId).toBe((payload as Json).channel_id);
    expect(upload.length).toBe(upload.data!.length);
    expect(pngSize(upload.data!)).toEqual({ width: 900, height: 380 });
    expect(upload.data!.length).toBeGreaterThan(8_000); // lines, axes and labels, not an empty frame
    expect(upload.altText).toContain('h1 50 %');
    expect((await slack.callsTo('files.getUploadURLExternal')).length).toBeGreaterThan(0);
    expect((await slack.callsTo('files.completeUploadExternal')).length).toBeGreaterThan(0);
  });

  it('Slack: /gpu usage --chart uploads GPU-hours per user', async () => {
    const { payload, responseId } = slack.slashCommand({ userId: 'U1', text: 'usage --chart' });
    await slack.sendEnvelope('slash_commands', payload);
    const body = await slack.waitForResponse(responseId, (b) => !String(b.text ?? '').startsWith(':hourglass'), 20_000);
    expect(body.text).toMatch(/^GPU-hours per user, last 7 days/);
    const upload = await slack.waitForUpload((u) => u.filename === 'gpubot-gpu-hours.png', 15_000);
    expect(pngSize(upload.data!)).toEqual({ width: 900, height: 380 });
    expect(upload.altText).toContain('alice 10, bob 4');
  });

  it('Discord: /gpu status chart:true attaches the PNG and shows it in the embed', async () => {
    const sent = discord.dispatchInteraction(discord.slashCommand({ userId: 'D1', subcommand: 'status', options: [{ name: 'chart', type: BOOLEAN, value: true }] }));
    expect((await sent.callback).ms).toBeLessThan(3000);
    const message = await discord.waitForOriginal(sent.token, (m: Json) => (m.embeds?.length ?? 0) > 0 && !String(m.content ?? '').startsWith('⏳'), 20_000);
    expect(message.embeds[0].title).toBe('GPU utilization per host, last 6 h (UTC)');
    expect(message.embeds[0].image?.url).toContain('gpubot-utilization.png');
    const file = discord.attachments.find((a) => a.filename === 'gpubot-utilization.png');
    expect(file).toBeDefined();
    expect(file!.contentType).toMatch(/image\/png|application\/octet-stream/);
    expect(pngSize(file!.data)).toEqual({ width: 900, height: 380 });
    expect(file!.description).toContain('h1 50 %');
  });

  it('console: the PNG goes to a file whose path is printed, with the alt text', async () => {
    const { text, reply } = await chat(app, 'carol', 'usage --chart');
    expect(reply.image?.alt).toContain('alice 10, bob 4');
    const path = /Chart: (\S+\.png)/.exec(text)?.[1];
    expect(path).toBeDefined();
    expect(pngSize(await readFile(path!))).toEqual({ width: 900, height: 380 });
  });
});
