// Everything gpubot and its libraries log at the most verbose level, through real Slack
// (Socket Mode and signed HTTP) and Discord traffic, SSH to real hosts (one of them failing),
// and a refused command: no token, signing secret or private key appears anywhere in it.
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { DiscordAdapter } from '../../src/adapters/discord/discord-adapter.js';
import { SlackAdapter } from '../../src/adapters/slack/slack-adapter.js';
import { createLogger } from '../../src/log.js';
import { freePort, startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { startDiscordStandin, type DiscordStandin } from '../support/discord-standin.js';
import { startSlackStandin, type SlackStandin } from '../support/slack-standin.js';
import { waitFor } from '../support/wait.js';

describe('logs at trace level', () => {
  let bed: Bed;
  let app: App;
  let slack: SlackStandin;
  let discord: DiscordStandin;
  let adapters: { stop(): Promise<void> }[] = [];
  let logs = '';
  const sink = new Writable({
    write(chunk, _e, cb) {
      logs += String(chunk);
      cb();
    },
  });

  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    slack = await startSlackStandin({ users: { U1: { name: 'alice' } } });
    discord = await startDiscordStandin({ users: { D1: { username: 'bob' } } });
    const log = createLogger('trace', sink);
    app = await appFor(bed, {}, undefined, { log });
    const socket = new SlackAdapter({ botToken: slack.botToken, appToken: slack.appToken, port: 0, apiUrl: slack.apiUrl, retries: 0 }, log);
    const port = await freePort();
    const http = new SlackAdapter({ botToken: slack.botToken, signingSecret: slack.signingSecret, port, apiUrl: slack.apiUrl, retries: 0 }, log);
    const dc = new DiscordAdapter({ token: discord.token, appId: discord.appId, guildId: discord.guildId, apiUrl: discord.apiUrl }, log);
    adapters = [socket, http, dc];
    await socket.start(app);
    await http.start(app);
    await dc.start(app);
    await slack.waitForSocket();

    // Socket Mode, signed HTTP, Discord; a run, a refusal, a host going away.
    const viaSocket = slack.slashCommand({ userId: 'U1', text: 'run --gpus 1 --name traced' });
    await slack.sendEnvelope('slash_commands', viaSocket.payload);
    await slack.waitForResponse(viaSocket.responseId, (b) => !String(b.text ?? '').startsWith(':hourglass'));
    const viaHttp = slack.slashCommand({ userId: 'U1', text: 'reserve 99' });
    await slack.postToReceiver(`http://127.0.0.1:${port}/slack/events`, slack.formBody(viaHttp.payload), { signature: 'valid' });
    await slack.waitForResponse(viaHttp.responseId);
    const sent = discord.dispatchInteraction(discord.slashCommand({ userId: 'D1', subcommand: 'status', options: [] }));
    await discord.waitForOriginal(sent.token, (m) => (m.embeds?.length ?? 0) > 0, 20_000);
    await bed.stopSshd('h2');
    await chat(app, 'carol', 'status');
    await waitFor(() => logs.includes('ssh connection failed'), { what: 'the SSH failure to be logged' });
  }, 120_000);
  afterAll(async () => {
    for (const a of adapters) await a.stop();
    await app?.close();
    await slack?.close();
    await discord?.close();
    await bed?.teardown();
  });

  it('were written, as JSON lines, by gpubot and the chat libraries', () => {
    const lines = logs
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.some((l) => l.component === 'bolt')).toBe(true);
    expect(lines.some((l) => l.msg === 'command' && l.command === 'run' && l.host === 'h1')).toBe(true);
    expect(lines.some((l) => l.msg === 'ssh connection failed' && l.host === 'h2')).toBe(true);
  });

  it('hold no token, signing secret or private key', async () => {
    const key = await readFile(String((bed.config().hosts as { ssh?: { privateKeyPath: string } }[])[0]!.ssh!.privateKeyPath), 'utf8');
    // The key's body, line by line: any fragment of it would be a leak.
    const keyLines = key.split('\n').filter((l) => l && !l.startsWith('-----'));
    expect(keyLines.length).toBeGreaterThan(2);
    const secrets = [slack.botToken, slack.appToken, slack.signingSecret, discord.token, ...keyLines];
    for (const secret of secrets) expect(logs.includes(secret), `a secret (${secret.slice(0, 6)}…) is in the logs`).toBe(false);
    expect(logs).not.toContain('PRIVATE KEY');
  });
});
