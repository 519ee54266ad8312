import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { SlackAdapter } from '../../src/adapters/slack/slack-adapter.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor } from '../support/app.js';
import { startSlackStandin, type SlackStandin } from '../support/slack-standin.js';
import { freePort } from '../bed/testbed.js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeKey } from '../support/openssh.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const texts = (blocks: Json[] = []): string =>
  blocks
    .map((b) => [b.text?.text, ...(b.fields ?? []).map((f: Json) => f.text), ...(b.elements ?? []).map((e: Json) => `[${e.text?.text}:${e.value}]`)].filter(Boolean).join('\n'))
    .join('\n');
const buttons = (blocks: Json[] = []): Json[] => blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements);
const running = async (bed: Bed, name: string) => (await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Running}}', name])).stdout.trim();

describe('Slack adapter over Socket Mode, real Bolt against a local Slack', () => {
  let bed: Bed;
  let app: App;
  let slack: SlackStandin;
  let adapter: SlackAdapter;

  /** A slash command as Slack sends it; resolves with the final response_url message. */
  async function slash(userId: string, text: string, done: (body: Json) => boolean = (b) => !String(b.text ?? '').startsWith(':hourglass')) {
    const { payload, responseId } = slack.slashCommand({ userId, text });
    const { ackMs } = await slack.sendEnvelope('slash_commands', payload);
    expect(ackMs).toBeLessThan(3000);
    return slack.waitForResponse(responseId, done);
  }

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    slack = await startSlackStandin({
      users: {
        U1: { name: 'alice', display_name: 'Alice' },
        U2: { name: 'bob' },
        U3: { name: 'carol' },
        U4: { name: 'mallory', display_name: 'admin' },
        ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`C${i}`, { name: `crowd${i}` }])),
      },
    });
    app = await appFor(bed);
    adapter = new SlackAdapter({ botToken: slack.botToken, appToken: slack.appToken, port: 0, apiUrl: slack.apiUrl, retries: 0 }, silentLogger());
    await adapter.start(app);
    await slack.waitForSocket();
  });
  afterAll(async () => {
    await adapter?.stop();
    await app?.close();
    await slack?.close();
    await bed?.teardown();
  });

  it('answers /gpu status in the channel as Block Kit, GPU rows per host', async () => {
    const body = await slash('U1', 'status');
    expect(body.response_type).toBe('in_channel');
    expect(body.text).toBe('4/4 GPUs free on 1 host');
    const all = texts(body.blocks as Json[]);
    expect(all).toContain('*h1: 4/4 GPUs free*');
    expect(all).toMatch(/`0` NVIDIA A100-SXM4-80GB · 0 MiB \/ 80\.0 GiB · 0 % · free/);
    // A Slack user became a gpubot user with a handle from the display name.
    expect(await app.db.chatIdentity.findUnique({ where: { platform_externalId: { platform: 'slack', externalId: 'U1' } }, include: { user: true } })).toMatchObject({
      user: { handle: 'alice' },
    });
  });

  it('runs a container and offers buttons; the owner’s Stop click acts, someone else’s is refused', async () => {
    const body = await slash('U1', 'run --gpus 1 --name s1');
    expect(body.response_type).toBe('ephemeral');
    expect(body.text).toBe('s1 is running on h1 with GPU 0');
    expect(texts(body.blocks as Json[])).toContain('ssh h1 docker exec -it s1 bash');
    const stop = buttons(body.blocks as Json[]).find((b) => b.value === 'stop s1')!;
    expect(stop).toMatchObject({ text: { text: 'Stop' }, style: 'danger' });
    expect(stop.confirm.text.text).toContain('Stop s1?');
    expect(buttons(body.blocks as Json[]).map((b) => b.value)).toEqual(['stop s1', 'logs s1', 'extend s1 --hours 4', 'rm s1']);
    expect(await running(bed, 's1')).toBe('true');

    const byBob = slack.blockAction({ userId: 'U2', actionId: stop.action_id, value: stop.value });
    await slack.sendEnvelope('interactive', byBob.payload);
    const refused = await slack.waitForResponse(byBob.responseId);
    expect(refused.text).toBe('Refused');
    expect(texts(refused.blocks as Json[])).toContain('belongs to alice');
    expect(await running(bed, 's1')).toBe('true');

    const byAlice = slack.blockAction({ userId: 'U1', actionId: stop.action_id, value: stop.value });
    await slack.sendEnvelope('interactive', byAlice.payload);
    const stopped = await slack.waitForResponse(byAlice.responseId);
    expect(stopped.text).toBe('s1 is stopped; GPUs 0 on h1 are free again');
    expect(await running(bed, 's1')).toBe('false');
  });

  it('opens the launch form for /gpu run and launches what was submitted, answering by DM', async () => {
    const { payload } = slack.slashCommand({ userId: 'U3', text: 'run' });
    const { ackMs } = await slack.sendEnvelope('slash_commands', payload);
    expect(ackMs).toBeLessThan(3000);
    const opened = await slack.waitForCall('views.open');
    const view = (typeof opened.view === 'string' ? JSON.parse(opened.view) : opened.view) as Json;
    expect(view.callback_id).toBe('gpubot_run');
    expect(view.blocks.map((b: Json) => b.block_id)).toEqual(['image', 'gpus', 'host', 'hours', 'name', 'command']);
    expect(view.blocks[0].element.options.map((o: Json) => o.value)).toContain('pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime');

    const submitted = slack.viewSubmission({
      userId: 'U3',
      callbackId: 'gpubot_run',
      values: {
        image: { value: { type: 'static_select', selected_option: { value: 'gpubot-test/busybox:latest' } } },
        gpus: { value: { type: 'static_select', selected_option: { value: '2' } } },
        host: { value: { type: 'static_select', selected_option: { value: 'h1' } } },
        hours: { value: { type: 'plain_text_input', value: '2' } },
        name: { value: { type: 'plain_text_input', value: 'formed' } },
        command: { value: { type: 'plain_text_input', value: 'sleep "1000"' } },
      },
    });
    await slack.sendEnvelope('interactive', submitted.payload);
    // The progress DM is edited into the answer.
    const progress = await slack.waitForCall('chat.postMessage', (a) => String(a.text).includes('preparing the container'));
    const dm = await slack.waitForCall('chat.update', (a) => String(a.text).startsWith('formed is running'));
    expect(dm.text).toBe('formed is running on h1 with GPUs 0,1');
    expect(dm.channel).toBe(progress.channel);
    expect((await slack.callsTo('conversations.open')).some((a) => a.users === 'U3')).toBe(true);
    const inspect = JSON.parse((await bed.dockerCli('h1', ['inspect', 'formed'])).stdout)[0];
    expect(inspect.Config.Cmd).toEqual(['sleep', '1000']);
    expect(inspect.Config.Image).toBe('gpubot-test/busybox:latest');
    expect(inspect.Config.Labels['gpubot.owner']).toBe('carol');
  });

  it('opens a form for /gpu key add: a bad key is shown under the field, a good one is added and confirmed by DM', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gpb-slack-keys-'));
    const [good, weak] = [await makeKey(dir, 'carol'), await makeKey(dir, 'weak', 'rsa', 2048)];
    const { payload } = slack.slashCommand({ userId: 'U3', text: 'key add' });
    expect((await slack.sendEnvelope('slash_commands', payload)).ackMs).toBeLessThan(3000);
    const opened = await slack.waitForCall('views.open', (a) => JSON.stringify(a.view).includes('gpubot_key_add'));
    const view = (typeof opened.view === 'string' ? JSON.parse(opened.view) : opened.view) as Json;
    expect(view.title.text).toBe('Add an SSH key');
    expect(view.blocks.map((b: Json) => [b.block_id, b.element.type])).toEqual([['key', 'plain_text_input']]);
    const submit = async (text: string) => {
      const s = slack.viewSubmission({ userId: 'U3', callbackId: 'gpubot_key_add', values: { key: { value: { type: 'plain_text_input', value: text } } } });
      const ack = await slack.sendEnvelope('interactive', s.payload);
      expect(ack.ackMs).toBeLessThan(3000);
      return ack.payload as Json;
    };
    const carolKeys = async () => {
      const who = await app.db.chatIdentity.findUnique({ where: { platform_externalId: { platform: 'slack', externalId: 'U3' } } });
      return who ? app.db.sshKey.count({ where: { userId: who.userId } }) : 0;
    };
    expect(await submit(weak.publicLine)).toEqual({
      response_action: 'errors',
      errors: { key: 'That key was not added: This RSA key has 2048 bits; at least 3072 are needed (ssh-keygen -t ed25519 makes a better one)' },
    });
    expect((await submit('-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA')).errors.key).toContain('That is a private key');
    expect(await carolKeys()).toBe(0);
    // Pasted with the line break a copy often brings along.
    expect(await submit(`${good.publicLine}\n`)).toEqual({});
    const dm = await slack.waitForCall('chat.postMessage', (a) => String(a.text).startsWith('Key added'));
    expect(texts(dm.blocks as Json[])).toContain('carol@laptop');
    expect(await carolKeys()).toBe(1);
    // The same key again: refused in the form, still one.
    expect((await submit(good.publicLine)).errors.key).toContain('is registered already');
    expect(await carolKeys()).toBe(1);
  });

  it('never hands a chat user a handle the config names (here the admin "admin")', async () => {
    const body = await slash('U4', 'stop s1');
    expect(texts(body.blocks as Json[])).toContain('belongs to alice');
    const mallory = await app.db.chatIdentity.findUnique({ where: { platform_externalId: { platform: 'slack', externalId: 'U4' } }, include: { user: true } });
    expect(mallory!.user.handle).toBe('admin-2');
  });

  it('sends a DM to the right person', async () => {
    const alice = await app.db.user.findUniqueOrThrow({ where: { handle: 'alice' } });
    await app.notifyUser(alice.id, { tone: 'info', title: 'Your container s1 on h1 has ended', blocks: [], visibility: 'personal' });
    const sent = await slack.waitForCall('chat.postMessage', (a) => a.text === 'Your container s1 on h1 has ended');
    const opened = slack.callsTo('conversations.open').at(-1)!;
    expect(opened.users).toBe('U1');
    expect(sent.channel).toBe(`D${'U1'}`);
  });

  it('reconnects after Slack asks it to, and keeps answering', async () => {
    await slack.sendDisconnect('refresh_requested');
    await waitForConnections(slack, 2);
    const body = await slash('U2', 'help');
    expect(body.text).toBe('gpubot commands');
  });

  // How fast acks come is a benchmark (bench/slack.ts); here: Slack's 3 s limit and the right answers.
  it('answers 20 concurrent /gpu status from 20 people: each acked within 3 s, each answer right', async () => {
    const reference = await slash('U1', 'status');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => slash(`C${i}`, 'status')));
    // Nothing changes meanwhile; a sample late on a loaded machine is shown as stale, with its figures.
    const unstale = (s: string) => s.replace(/, (1 )?stale( \d+ s)?/g, '');
    for (const body of answers) {
      expect(body.response_type).toBe('in_channel');
      expect(unstale(String(body.text))).toBe(unstale(String(reference.text)));
      expect(unstale(texts(body.blocks as Json[]))).toBe(unstale(texts(reference.blocks as Json[])));
    }
    expect(slack.lateAcks()).toBe(0);
  });
});

async function waitForConnections(slack: SlackStandin, n: number) {
  const deadline = Date.now() + 20_000;
  while (slack.socketConnections() < n) {
    if (Date.now() > deadline) throw new Error('no reconnect');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('Slack adapter over signed HTTP', () => {
  let bed: Bed;
  let app: App;
  let slack: SlackStandin;
  let adapter: SlackAdapter;
  let url: string;

  beforeAll(async () => {
    bed = await startBed({ hosts: 1, docker: false });
    slack = await startSlackStandin({ users: { U1: { name: 'alice' } } });
    app = await appFor(bed);
    const port = await freePort();
    url = `http://127.0.0.1:${port}/slack/events`;
    adapter = new SlackAdapter({ botToken: slack.botToken, signingSecret: slack.signingSecret, port, apiUrl: slack.apiUrl, retries: 0 }, silentLogger());
    await adapter.start(app);
  });
  afterAll(async () => {
    await adapter?.stop();
    await app?.close();
    await slack?.close();
    await bed?.teardown();
  });

  it('answers a validly signed slash command', async () => {
    const { payload, responseId } = slack.slashCommand({ userId: 'U1', text: 'status' });
    const r = await slack.postToReceiver(url, slack.formBody(payload), { signature: 'valid' });
    expect(r.status).toBe(200);
    expect(r.ms).toBeLessThan(3000);
    const body = await slack.waitForResponse(responseId);
    expect(body.text).toBe('4/4 GPUs free on 1 host');
  });

  it.each([
    ['unsigned', { signature: 'none' as const }],
    ['wrongly signed', { signature: 'bad' as const }],
    ['6 minutes old', { signature: 'valid' as const, timestampSkewSec: -360 }],
  ])('rejects a request that is %s with 401 and does nothing', async (_what, opts) => {
    const before = await app.db.auditEvent.count();
    const users = await app.db.user.count();
    const { payload, responseId } = slack.slashCommand({ userId: 'U9', text: 'reserve 1' });
    const r = await slack.postToReceiver(url, slack.formBody(payload), opts);
    expect(r.status).toBe(401);
    await new Promise((res) => setTimeout(res, 300));
    expect(slack.responses.filter((x) => x.id === responseId)).toEqual([]);
    expect(await app.db.auditEvent.count()).toBe(before);
    expect(await app.db.user.count()).toBe(users);
    expect(await app.db.gpuLease.count()).toBe(0);
  });
});
