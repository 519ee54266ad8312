/**
 * Proves the Slack stand-in (test/support/slack-standin.ts) against the real @slack/bolt App:
 * Socket Mode (commands, buttons, modals, Web API calls, reconnect) and HTTP mode (request signing).
 * No gpubot code is involved.
 */
import type { AddressInfo } from 'node:net';
import { App, LogLevel, type BlockAction, type ButtonAction } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSlackStandin, type SlackStandin } from '../support/slack-standin.js';

const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const GUEST = 'U0GUEST';
const SINGLE = 'U0SINGLE';
const VISITOR = 'U0VISITOR';
const OTHER_TEAM = 'T0OTHER';

describe('Slack stand-in with a real Bolt App in Socket Mode', () => {
  let standin: SlackStandin;
  let app: App | undefined;
  const submitted: string[] = [];

  beforeAll(async () => {
    // The stand-in must be up before `new App`: the constructor calls auth.test right away.
    standin = await startSlackStandin({
      users: {
        [ALICE]: { name: 'alice', display_name: 'Alice A.' },
        [GUEST]: { name: 'gus', is_restricted: true },
        [SINGLE]: { name: 'sally', is_ultra_restricted: true },
        [VISITOR]: { name: 'vic', team_id: OTHER_TEAM },
      },
    });
    app = new App({
      token: standin.botToken,
      appToken: standin.appToken,
      socketMode: true,
      clientOptions: { slackApiUrl: standin.apiUrl, retryConfig: { retries: 0 } },
      logLevel: LogLevel.ERROR,
    });
    app.command('/gpu', async ({ ack, respond, command }) => {
      await ack();
      await respond({ response_type: 'ephemeral', text: `got ${command.text}` });
    });
    app.command('/whoami', async ({ ack, respond, command }) => {
      await ack();
      await respond({ text: `team ${command.team_id} user ${command.user_id}` });
    });
    app.action<BlockAction<ButtonAction>>('who', async ({ ack, respond, body }) => {
      await ack();
      await respond({ text: `team ${body.team?.id} user ${body.user.team_id}` });
    });
    app.command('/slow', async ({ ack }) => {
      await new Promise((r) => setTimeout(r, 3300));
      await ack();
    });
    app.action<BlockAction<ButtonAction>>('btn', async ({ ack, body, action, client }) => {
      await ack();
      await client.chat.postMessage({ channel: body.channel?.id ?? body.user.id, text: `clicked ${action.value} by ${body.user.id}` });
    });
    app.action<BlockAction<ButtonAction>>('open', async ({ ack, body, client }) => {
      await ack();
      await client.views.open({
        trigger_id: body.trigger_id,
        view: {
          type: 'modal',
          callback_id: 'cb',
          private_metadata: 'meta-1',
          title: { type: 'plain_text', text: 'Launch' },
          submit: { type: 'plain_text', text: 'Go' },
          blocks: [{ type: 'input', block_id: 'blk', label: { type: 'plain_text', text: 'Command' }, element: { type: 'plain_text_input', action_id: 'inp' } }],
        },
      });
    });
    app.view('cb', async ({ ack, view }) => {
      const value = view.state.values.blk?.inp?.value ?? '';
      if (value === 'bad') {
        await ack({ response_action: 'errors', errors: { blk: 'not a command' } });
        return;
      }
      await ack();
      submitted.push(`${value}|${view.private_metadata}|${view.id}`);
    });
    await app.start();
    await standin.waitForSocket();
  });

  afterAll(async () => {
    // Order matters: stop Bolt first, or its socket-mode client tries to reconnect to a closed server.
    await app?.stop();
    await standin?.close();
  });

  it('Bolt authenticated with the bot token and opened the socket with the app token', async () => {
    const auth = standin.calls.find((c) => c.method === 'auth.test');
    expect(auth?.token).toBe(standin.botToken);
    const open = standin.calls.find((c) => c.method === 'apps.connections.open');
    expect(open?.token).toBe(standin.appToken);
    expect(standin.socketConnections()).toBe(1);
  });

  it('acks a slash command within 3 s and delivers respond() to the response_url', async () => {
    const { payload, responseId } = standin.slashCommand({ userId: ALICE, text: 'status h1' });
    const ack = await standin.sendEnvelope('slash_commands', payload);
    expect(ack.ackMs).toBeLessThan(3000);
    expect(ack.payload).toEqual({}); // Bolt acks an empty ack() with payload {}
    const body = await standin.waitForResponse(responseId);
    expect(body).toEqual({ response_type: 'ephemeral', text: 'got status h1' });
  });

  it('handles a block action whose handler calls chat.postMessage', async () => {
    const { payload } = standin.blockAction({ userId: ALICE, actionId: 'btn', value: 'v42', channelId: 'C0GPU' });
    const ack = await standin.sendEnvelope('interactive', payload);
    expect(ack.ackMs).toBeLessThan(3000);
    const args = await standin.waitForCall('chat.postMessage', (a) => a.text === `clicked v42 by ${ALICE}`);
    expect(args.channel).toBe('C0GPU');
    const call = standin.calls.find((c) => c.method === 'chat.postMessage' && c.args.text === `clicked v42 by ${ALICE}`);
    expect(call?.token).toBe(standin.botToken);
    expect(call?.response).toMatchObject({ ok: true, channel: 'C0GPU' });
  });

  it('opens a modal from a button (views.open with a fresh trigger_id) and takes its submission', async () => {
    const click = standin.blockAction({ userId: ALICE, actionId: 'open', value: 'launch' });
    await standin.sendEnvelope('interactive', click.payload);
    const opened = await standin.waitForCall('views.open', (a) => a.trigger_id === click.triggerId);
    expect(opened.view).toMatchObject({ type: 'modal', callback_id: 'cb' }); // form-encoded JSON argument, decoded
    const viewId = (standin.calls.find((c) => c.method === 'views.open')?.response.view as { id: string }).id;

    // A submission Bolt rejects with field errors: the errors come back in the ack payload.
    const bad = standin.viewSubmission({ userId: ALICE, callbackId: 'cb', values: { blk: { inp: { type: 'plain_text_input', value: 'bad' } } } });
    const badAck = await standin.sendEnvelope('interactive', bad.payload);
    expect(badAck.payload).toEqual({ response_action: 'errors', errors: { blk: 'not a command' } });

    const good = standin.viewSubmission({ userId: ALICE, callbackId: 'cb', values: { blk: { inp: { type: 'plain_text_input', value: 'run python' } } } });
    const goodAck = await standin.sendEnvelope('interactive', good.payload);
    expect(goodAck.ackMs).toBeLessThan(3000);
    expect(submitted).toEqual([`run python|meta-1|${viewId}`]);
  });

  it('answers app.client calls: views.open/update, users.info, conversations.open, chat.update; rejects what Slack rejects', async () => {
    const client = app!.client;
    const view = await client.views.open({
      trigger_id: standin.newTriggerId(),
      view: { type: 'modal', callback_id: 'other', title: { type: 'plain_text', text: 'Hi' }, blocks: [] },
    });
    expect(view.ok).toBe(true);
    expect(view.view?.id).toMatch(/^V/);
    const updated = await client.views.update({ view_id: view.view!.id!, view: { type: 'modal', title: { type: 'plain_text', text: 'Hi again' }, blocks: [] } });
    expect(updated.view?.id).toBe(view.view!.id);

    const alice = await client.users.info({ user: ALICE });
    expect(alice.user).toMatchObject({ id: ALICE, name: 'alice', profile: { display_name: 'Alice A.' } });
    await expect(client.users.info({ user: 'U0NOBODY' })).rejects.toMatchObject({ data: { error: 'user_not_found' } });

    const dm = await client.conversations.open({ users: ALICE });
    expect(dm.channel?.id).toBe(`D${ALICE}`);

    const posted = await client.chat.postMessage({ channel: dm.channel!.id!, text: 'working…' });
    const edited = await client.chat.update({ channel: posted.channel!, ts: posted.ts!, text: 'done' });
    expect(edited).toMatchObject({ ok: true, ts: posted.ts, channel: `D${ALICE}` });
    const second = await client.chat.postMessage({ channel: ALICE, text: 'next' });
    expect(second.channel).toBe(`D${ALICE}`);
    expect(Number(second.ts)).toBeGreaterThan(Number(posted.ts));

    const eph = await client.chat.postEphemeral({ channel: 'C0GENERAL', user: ALICE, text: 'only you' });
    expect(eph.message_ts).toBeTruthy();
    await expect(client.chat.update({ channel: 'C0GENERAL', ts: eph.message_ts!, text: 'x' })).rejects.toMatchObject({ data: { error: 'message_not_found' } });

    // A trigger_id works once.
    const trigger = standin.newTriggerId();
    await client.views.open({ trigger_id: trigger, view: { type: 'modal', title: { type: 'plain_text', text: 'A' }, blocks: [] } });
    await expect(client.views.open({ trigger_id: trigger, view: { type: 'modal', title: { type: 'plain_text', text: 'A' }, blocks: [] } })).rejects.toMatchObject({
      data: { error: 'expired_trigger_id' },
    });

    await expect(client.apiCall('chat.scheduleMessage', { channel: 'C1', text: 'x', post_at: 1 })).rejects.toMatchObject({ data: { error: 'unknown_method' } });
    expect(standin.callsTo('chat.scheduleMessage')).toHaveLength(1);

    standin.failNext('users.info', 'ratelimited');
    await expect(client.users.info({ user: ALICE })).rejects.toMatchObject({ data: { error: 'ratelimited' } });
    await expect(client.users.info({ user: ALICE })).resolves.toMatchObject({ ok: true });
  });

  it('access: a slash command, a click, a submission and an event from another workspace carry its team_id', async () => {
    const slash = async (userId: string, teamId?: string): Promise<unknown> => {
      const { payload, responseId } = standin.slashCommand({ userId, text: '', command: '/whoami', ...(teamId ? { teamId } : {}) });
      await standin.sendEnvelope('slash_commands', payload);
      return (await standin.waitForResponse(responseId)).text;
    };
    expect(await slash(ALICE)).toBe(`team ${standin.teamId} user ${ALICE}`);
    expect(await slash(ALICE, OTHER_TEAM)).toBe(`team ${OTHER_TEAM} user ${ALICE}`);
    expect(await slash(VISITOR)).toBe(`team ${OTHER_TEAM} user ${VISITOR}`); // a user of another workspace sends from it
    expect(standin.slashCommand({ userId: ALICE, text: '', teamId: OTHER_TEAM }).payload).toMatchObject({ team_id: OTHER_TEAM, team_domain: 't0other' });

    const click = standin.blockAction({ userId: ALICE, actionId: 'who', value: 'x', teamId: OTHER_TEAM });
    await standin.sendEnvelope('interactive', click.payload);
    expect(await standin.waitForResponse(click.responseId)).toMatchObject({ text: `team ${OTHER_TEAM} user ${OTHER_TEAM}` });

    expect(standin.viewSubmission({ userId: ALICE, callbackId: 'none', values: {}, teamId: OTHER_TEAM }).payload).toMatchObject({ team: { id: OTHER_TEAM }, user: { team_id: OTHER_TEAM } });
    expect(standin.eventCallback({ type: 'app_mention', user: ALICE, text: 'hi' }, { teamId: OTHER_TEAM }).payload).toMatchObject({ team_id: OTHER_TEAM, authorizations: [{ team_id: OTHER_TEAM }] });
  });

  it('access: users.info reports guests and foreign users; every call is recorded', async () => {
    const client = app!.client;
    expect((await client.users.info({ user: GUEST })).user).toMatchObject({ name: 'gus', is_restricted: true, is_ultra_restricted: false });
    expect((await client.users.info({ user: SINGLE })).user).toMatchObject({ name: 'sally', is_restricted: true, is_ultra_restricted: true });
    expect((await client.users.info({ user: ALICE })).user).toMatchObject({ team_id: standin.teamId, is_restricted: false, is_ultra_restricted: false });
    expect((await client.users.info({ user: VISITOR })).user).toMatchObject({ team_id: OTHER_TEAM, profile: { team: OTHER_TEAM } });
    expect(standin.callsTo('users.info').slice(-4).map((a) => a.user)).toEqual([GUEST, SINGLE, ALICE, VISITOR]);
  });

  it('files upload v2: upload URL, the bytes, completion into a channel; breaches are flagged', async () => {
    const client = app!.client;
    const chart = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'); // the start of a PNG
    const result = await client.filesUploadV2({ channel_id: 'C0GPU', file: chart, filename: 'chart.png', title: 'GPU hours', initial_comment: 'This week', alt_text: 'bars per user' });
    expect(result.ok).toBe(true);
    const upload = await standin.waitForUpload((u) => u.filename === 'chart.png');
    expect(upload).toMatchObject({ length: chart.length, completed: true, title: 'GPU hours', channelId: 'C0GPU', initialComment: 'This week', altText: 'bars per user' });
    expect(upload.data).toEqual(chart);
    expect(standin.callsTo('files.getUploadURLExternal').at(-1)).toMatchObject({ filename: 'chart.png', length: String(chart.length) });
    expect(standin.callsTo('files.completeUploadExternal').at(-1)).toMatchObject({ files: [{ id: upload.fileId, title: 'GPU hours' }], channel_id: 'C0GPU', initial_comment: 'This week' });
    expect(standin.messages.find((m) => m.ts === upload.messageTs)).toMatchObject({ channel: 'C0GPU', text: 'This week', fromBot: true, files: [{ id: upload.fileId, name: 'chart.png', title: 'GPU hours' }] });

    // More bytes than declared, and completing a file whose bytes never came.
    const short = await client.files.getUploadURLExternal({ filename: 'x.txt', length: 3 });
    expect((await fetch(short.upload_url!, { method: 'POST', body: 'four' })).status).toBe(200);
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('sent 4 bytes; files.getUploadURLExternal declared 3')]);
    const never = await client.files.getUploadURLExternal({ filename: 'y.txt', length: 1 });
    await expect(client.files.completeUploadExternal({ files: [{ id: never.file_id! }] })).rejects.toMatchObject({ data: { error: 'file_not_found' } });
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('never uploaded')]);
    expect((await fetch(`${standin.baseUrl}/upload/v1/F0NOPE`, { method: 'POST', body: 'x' })).status).toBe(404);
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('unknown upload URL')]);
  });

  it('flags an ack later than 3 s', async () => {
    const before = standin.lateAcks();
    const { payload } = standin.slashCommand({ userId: BOB, userName: 'bob', text: '', command: '/slow' });
    await expect(standin.sendEnvelope('slash_commands', payload)).rejects.toThrow(/not acknowledged within 3000 ms/);
    expect(standin.lateAcks()).toBe(before + 1);
    expect(standin.violations.some((v) => v.includes('not acknowledged'))).toBe(true);
    // The late ack still arrives and is measured.
    for (let i = 0; i < 50 && !standin.ackLatencies().some((ms) => ms >= 3000); i++) await new Promise((r) => setTimeout(r, 100));
    expect(Math.max(...standin.ackLatencies())).toBeGreaterThanOrEqual(3000);
    standin.violations.length = 0;
  });

  it('reconnects after a disconnect (refresh_requested) and keeps answering', { timeout: 30_000 }, async () => {
    const opensBefore = standin.callsTo('apps.connections.open').length;
    const t0 = Date.now();
    await standin.sendDisconnect();
    expect(standin.openSockets()).toBe(0);
    await standin.waitForSocket(20_000);
    const reconnectMs = Date.now() - t0;
    expect(standin.socketConnections()).toBe(2);
    expect(standin.callsTo('apps.connections.open').length).toBe(opensBefore + 1);
    // socket-mode 2.0.7 waits clientPingTimeout (5 s by default) before reconnecting.
    expect(reconnectMs).toBeGreaterThanOrEqual(4500);

    const { payload, responseId } = standin.slashCommand({ userId: ALICE, text: 'after reconnect' });
    const ack = await standin.sendEnvelope('slash_commands', payload);
    expect(ack.ackMs).toBeLessThan(3000);
    expect(await standin.waitForResponse(responseId)).toMatchObject({ text: 'got after reconnect' });
    expect(standin.violations).toEqual([]);
  });
});

describe('Slack stand-in with a real Bolt App in HTTP mode', () => {
  let standin: SlackStandin;
  let app: App | undefined;
  let url: string;
  const seen: string[] = [];

  beforeAll(async () => {
    standin = await startSlackStandin();
    app = new App({
      token: standin.botToken,
      signingSecret: standin.signingSecret,
      port: 0, // HTTPReceiver listens on an ephemeral port; app.start() returns the http.Server
      clientOptions: { slackApiUrl: standin.apiUrl, retryConfig: { retries: 0 } },
      logLevel: LogLevel.ERROR,
    });
    app.command('/gpu', async ({ ack, respond, command }) => {
      seen.push(command.text);
      await ack();
      await respond({ response_type: 'ephemeral', text: `got ${command.text}` });
    });
    const server = await app.start();
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  });

  afterAll(async () => {
    await app?.stop();
    await standin?.close();
  });

  it('accepts a validly signed slash command and runs the handler', async () => {
    const { payload, responseId } = standin.slashCommand({ userId: ALICE, text: 'signed' });
    const res = await standin.postToReceiver(url, standin.formBody(payload));
    expect(res.status).toBe(200);
    expect(res.ms).toBeLessThan(3000);
    expect(await standin.waitForResponse(responseId)).toEqual({ response_type: 'ephemeral', text: 'got signed' });
    expect(seen).toEqual(['signed']);
  });

  it.each([
    ['unsigned', { signature: 'none' as const }],
    ['wrongly signed', { signature: 'bad' as const }],
    ['six minutes old', { timestampSkewSec: -360 }],
  ])('rejects a %s request with 401 and does not run the handler', async (what, opts) => {
    const { payload } = standin.slashCommand({ userId: ALICE, text: what });
    const res = await standin.postToReceiver(url, standin.formBody(payload), opts);
    expect(res.status).toBe(401);
    await new Promise((r) => setTimeout(r, 150));
    expect(seen).not.toContain(what);
  });
});
