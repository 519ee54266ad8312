/**
 * A local stand-in for Slack's servers, speaking the real protocols, so the real Bolt `App`
 * (@slack/bolt 4.7.2, @slack/web-api 7.19, @slack/socket-mode 2.0.7) can be driven offline.
 * This file is the entry point; the parts live in test/support/slack/ over the shared plumbing
 * in test/support/standin-http.ts.
 *
 * One HTTP server on 127.0.0.1 serves:
 *   - the Web API          POST /api/<method>   (form-encoded or JSON; token from `Authorization: Bearer` or `token`)
 *   - Socket Mode          GET  /socket?ticket=…&app_id=…  (WebSocket upgrade; URL handed out by apps.connections.open)
 *   - response_urls        POST /response/<id>  (JSON)
 *   - file uploads (v2)    POST /upload/v1/<file_id>  (URL handed out by files.getUploadURLExternal)
 * and `postToReceiver` plays Slack's side of HTTP mode (signed requests to Bolt's HTTPReceiver).
 *
 * Web API methods answered: auth.test, users.info, conversations.open, chat.postMessage,
 * chat.postEphemeral, chat.update, chat.delete, views.open/push/update, apps.connections.open,
 * files.getUploadURLExternal, files.completeUploadExternal (others: `unknown_method`). Every call,
 * rejected or not, is in `calls` with its arguments and answer.
 *
 * Slack rules that are enforced (each breach is listed in `violations`):
 *   - an envelope / HTTP request must be acknowledged within 3 s;
 *   - a trigger_id works once and only within 3 s of being issued (views.open/push answer
 *     `expired_trigger_id` / `invalid_trigger_id`);
 *   - a response_url takes at most 5 messages within 30 minutes (then 404 `used_url`); its
 *     messages need text, blocks or attachments unless they delete the original;
 *   - chat.update / chat.delete only work on non-ephemeral messages the bot posted (or the
 *     message a `blockAction` was built on); ephemeral messages answer `message_not_found`;
 *   - a few size limits: message text ≤ 40 000 chars, ≤ 50 blocks in a message and ≤ 100 in a view,
 *     section text ≤ 3000, header ≤ 150, modal title ≤ 24, private_metadata ≤ 3000;
 *   - uploads: the bytes POSTed must match the declared length; only uploaded files complete.
 *
 * For access tests:
 *   - other workspaces: `slashCommand`, `blockAction` and `viewSubmission` take `teamId` (and
 *     `teamDomain`); `eventCallback(event, { teamId })`. A user with `team_id` sends from that team
 *     by default, and users.info reports it;
 *   - guests: users with `is_restricted: true` (multi-channel guest) or `is_ultra_restricted: true`
 *     (single-channel guest; `is_restricted` is reported true as well) in users.info.
 * For charts: `uploads` holds every file of the upload v2 flow (name, declared length, bytes,
 * title, channel, thread, initial comment); `waitForUpload` resolves on a completed one; the
 * sharing message is in `messages` with `files`.
 *
 * Bolt must be stopped (`await app.stop()`) before `close()`: a socket-mode client that loses its
 * server while not shutting down schedules a reconnect whose failure is an unhandled rejection.
 */
import { startStandinServer } from './standin-http.js';
import { Files } from './slack/files.js';
import { httpMode } from './slack/http-mode.js';
import { payloadBuilders } from './slack/payloads.js';
import { ResponseUrls } from './slack/response-urls.js';
import { routeRequest, routeUpgrade, type SlackParts } from './slack/server.js';
import { SocketMode } from './slack/socket-mode.js';
import type { SlackStandin, StandinOptions } from './slack/types.js';
import { Views } from './slack/views.js';
import { WebApi } from './slack/web-api.js';
import { SlackWorkspace } from './slack/workspace.js';

export type { ApiCall, Json, PayloadTeam, ResponseRecord, SlackStandin, SlackUpload, StandinOptions, StandinUser, StandinView, StoredMessage } from './slack/types.js';

export async function startSlackStandin(opts: StandinOptions = {}): Promise<SlackStandin> {
  let parts: SlackParts | undefined;
  const assembled = (): SlackParts => {
    if (!parts) throw new Error('the Slack stand-in is still starting');
    return parts;
  };
  const http = await startStandinServer({ request: routeRequest(assembled), upgrade: routeUpgrade(assembled) });
  const ws = new SlackWorkspace(http.baseUrl, opts);
  const views = new Views(ws);
  const files = new Files(ws);
  const socketMode = new SocketMode(ws, http.wsUrl, opts.pingIntervalMs ?? 10_000);
  const responseUrls = new ResponseUrls(ws, opts.responseUrlMaxUses ?? 5);
  const webApi = new WebApi(ws, views, files, socketMode);
  parts = { ws, webApi, responseUrls, files, socketMode };
  const { calls, responses, violations } = ws;
  let closed = false;

  return {
    apiUrl: `${http.baseUrl}/api/`,
    baseUrl: http.baseUrl,
    botToken: ws.botToken,
    appToken: ws.appToken,
    signingSecret: ws.signingSecret,
    verificationToken: ws.verificationToken,
    teamId: ws.teamId,
    teamDomain: ws.teamDomain,
    appId: ws.appId,
    botUserId: ws.botUserId,
    botId: ws.botId,
    calls,
    responses,
    violations,
    users: ws.users,
    messages: ws.messages,
    views: ws.views,
    uploads: ws.uploads,

    callsTo: (method) => calls.filter((c) => c.method === method).map((c) => c.args),
    waitForCall: (method, predicate = () => true, timeoutMs = 5000) =>
      webApi.callWaiters
        .waitFor(calls, (c) => c.method === method && predicate(c.args), timeoutMs, () =>
          `timed out after ${timeoutMs} ms waiting for a ${method} call; ${method} calls so far: ${JSON.stringify(calls.filter((c) => c.method === method).map((c) => c.args))}; methods called: ${[...new Set(calls.map((c) => c.method))].join(', ') || 'none'}`,
        )
        .then((c) => c.args),
    failNext: (method, error, times = 1) => webApi.failNext(method, error, times),

    waitForResponse: (id, predicate = () => true, timeoutMs = 5000) =>
      responseUrls.responseWaiters
        .waitFor(responses, (r) => r.id === id && predicate(r.body), timeoutMs, () =>
          `timed out after ${timeoutMs} ms waiting for a message on response_url ${id}; got: ${JSON.stringify(responses.filter((r) => r.id === id).map((r) => r.body))}; violations: ${JSON.stringify(violations)}`,
        )
        .then((r) => r.body),
    newResponseUrl: () => responseUrls.newResponseUrl(),
    newTriggerId: () => views.newTriggerId(),

    waitForUpload: (predicate = () => true, timeoutMs = 5000) =>
      files.completions.waitFor(ws.uploads, (u) => u.completed && predicate(u), timeoutMs, () =>
        `timed out after ${timeoutMs} ms waiting for a completed upload; uploads: ${JSON.stringify(ws.uploads.map((u) => ({ fileId: u.fileId, filename: u.filename, uploaded: u.data !== undefined, completed: u.completed })))}`,
      ),

    waitForSocket: (timeoutMs = 15_000) => socketMode.waitForSocket(timeoutMs, () => calls.filter((c) => c.method === 'apps.connections.open').length),
    socketConnections: () => socketMode.totalConnections,
    openSockets: () => socketMode.sockets.length,
    sendEnvelope: (type, payload, o = {}) => socketMode.sendEnvelope(type, payload, o),
    sendDisconnect: (reason = 'refresh_requested', graceMs = 10_000) => socketMode.sendDisconnect(reason, graceMs),

    ...payloadBuilders(ws, responseUrls, views),
    ...httpMode(ws),

    ackLatencies: () => [...ws.latencies],
    lateAcks: () => ws.late,

    clearRecords: () => {
      calls.length = 0;
      responses.length = 0;
      violations.length = 0;
      ws.latencies.length = 0;
      ws.late = 0;
    },

    close: async () => {
      if (closed) return;
      closed = true;
      socketMode.stop();
      webApi.callWaiters.clear();
      responseUrls.responseWaiters.clear();
      files.completions.clear();
      await http.close();
    },
  };
}
