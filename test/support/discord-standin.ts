/**
 * A local stand-in for Discord's REST API and gateway, speaking the real protocols, so the real
 * discord.js `Client` (discord.js 14.28, @discordjs/rest 2.6, @discordjs/ws 1.2) can be driven offline.
 * This file is the entry point; the parts live in test/support/discord/ over the shared plumbing
 * in test/support/standin-http.ts.
 *
 * One HTTP server on 127.0.0.1 serves:
 *   - REST          /api/v10/…   (pass `rest: { api: standin.apiUrl }`; @discordjs/rest appends /v10)
 *   - the gateway   ws://127.0.0.1:PORT        (handed out by GET /gateway/bot; JSON encoding, no compression)
 *                   ws://127.0.0.1:PORT/resume (the resume_gateway_url in READY)
 *   - attachments   GET /attachments/<channel>/<id>/<name> (the `url` of stored files)
 *
 * Gateway: HELLO → IDENTIFY (token checked) → READY (guild unavailable) + GUILD_CREATE; heartbeats are
 * acked; op 7 RECONNECT via `sendReconnect()` → the client closes (4200) and RESUMEs on the resume URL;
 * events sent while it was away are replayed, then RESUMED. Sequence numbers are tracked per session.
 *
 * Discord rules that are enforced (each breach is listed in `violations`):
 *   - an interaction must get its callback within 3 s (a later one answers 404 10062 "Unknown interaction");
 *     a second callback answers 400 40060 "Interaction has already been acknowledged";
 *   - the callback type must fit the interaction (8 only for autocomplete, 6/7 only for components/modals, …);
 *   - the interaction webhook (editReply/followUp/fetchReply/deleteReply) works only after the callback,
 *     with the right application id, and for 15 minutes (`expireToken` simulates the end);
 *   - message limits: content ≤ 2000, ≤ 10 embeds (title 256, description 4096, ≤ 25 fields of 256/1024,
 *     footer 2048, author 256, 6000 characters in all), ≤ 5 action rows of ≤ 5 buttons or one select,
 *     custom_id ≤ 100 and unique, button label ≤ 80, no empty message (50006), valid allowed_mentions
 *     (known `parse` kinds; `parse: ['users']` not with a `users` list);
 *   - autocomplete: ≤ 25 choices, name 1–100, string value ≤ 100; modal: title ≤ 45, 1–5 components;
 *   - command registration: names (lower case, 1–32), descriptions (1–100), ≤ 25 options, required before
 *     optional, unique names, choices ≤ 25 and not with autocomplete, 4000 characters per command;
 *   - REST calls other than interaction callbacks and webhooks need `Authorization: Bot <token>`.
 *
 * For access tests, every interaction builder (`slashCommand`, `autocomplete`, `button`, `modalSubmit`) takes:
 *   - `guildId`: from another server (its own channel; the member has no roles unless `roles` says so);
 *   - `dm: true`: from the bot's DM with the user (no guild_id, no member, `user` instead);
 *   - `roles` / `permissions`: the member's role ids and permission bits.
 * What the bot sent: `sent` lists every message body (callback types 4/5/7, follow-ups, webhook edits,
 * channel and DM messages and their edits, accepted or not) with `allowed_mentions` (`allowedMentions`)
 * and `flags` exactly as sent, so a test can assert e.g. `allowedMentions: { parse: [] }` on each.
 * Stored messages say who they ping as Discord decides from content and allowed_mentions
 * (`mention_everyone`, `mentions`, `mention_roles`; discord/mentions.ts).
 * Files: multipart `files[n]` parts become attachments of the stored message; `attachments` keeps
 * each with its bytes (and the description from payload_json's `attachments[]`).
 *
 * Order at the end of a test: `await client.destroy()` first, then `await standin.close()`.
 */
import { Router, startStandinServer } from './standin-http.js';
import { addBotRoutes } from './discord/bot-routes.js';
import { Gateway } from './discord/gateway.js';
import { DiscordGuild } from './discord/guild.js';
import { Interactions } from './discord/interactions.js';
import { MessageStore } from './discord/messages.js';
import { payloadBuilders } from './discord/payloads.js';
import { clone } from './discord/protocol.js';
import { Rest } from './discord/rest.js';
import type { RouteContext, RouteResult } from './discord/routes.js';
import type { DiscordStandin, DiscordStandinOptions, Json } from './discord/types.js';
import { addWebhookRoutes } from './discord/webhook-routes.js';

export type {
  CallbackResult,
  DiscordStandin,
  DiscordStandinOptions,
  DispatchedInteraction,
  InteractionBase,
  Json,
  OptionInput,
  RestRequest,
  SentKind,
  SentMessage,
  StandinUser,
  StoredAttachment,
} from './discord/types.js';

export async function startDiscordStandin(opts: DiscordStandinOptions = {}): Promise<DiscordStandin> {
  let rest: Rest | undefined;
  let gateway: Gateway | undefined;
  const http = await startStandinServer({
    request: (req, res) => {
      rest!.handle(req, res).catch((err: unknown) => {
        guild.violation(`stand-in error in ${req.method} ${req.url}: ${err instanceof Error ? err.stack : String(err)}`);
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ message: '500: Internal Server Error', code: 0 }));
        }
      });
    },
    upgrade: (req, url, upgrade) => gateway!.upgrade(req, url, upgrade),
  });
  const gatewayUrl = http.wsUrl;
  const resumeUrl = `${http.wsUrl}/resume`;
  const guild = new DiscordGuild(http.baseUrl, opts);
  const store = new MessageStore(guild);
  gateway = new Gateway(guild, { gatewayUrl, resumeUrl }, opts.heartbeatIntervalMs ?? 41_250);
  const interactions = new Interactions(guild, store, gateway);
  const router = new Router<RouteContext, RouteResult>();
  addWebhookRoutes(router, guild, interactions, store);
  const gw = gateway;
  addBotRoutes(router, guild, store, { url: gatewayUrl, identifies: () => gw.identifyCount });
  rest = new Rest(guild, store, router);
  const restApi = rest;
  const { requests, callbacks, violations, messages, sent, attachments } = guild;
  let closed = false;

  return {
    apiUrl: `${http.baseUrl}/api`,
    baseUrl: http.baseUrl,
    gatewayUrl,
    resumeUrl,
    token: guild.token,
    appId: guild.appId,
    guildId: guild.guildId,
    guildName: guild.guildName,
    channelId: guild.channelId,
    botUserId: guild.botUserId,
    botUsername: guild.botUsername,
    requests,
    callbacks,
    violations,
    users: guild.users,
    messages,
    sent,
    attachments,

    requestsTo: (method, pathPattern) => requests.filter((r) => r.method === method.toUpperCase() && pathPattern.test(r.path)),
    waitForRequest: (method, pathPattern, predicate = () => true, timeoutMs = 5000) =>
      restApi.requestWaiters.waitFor(requests, (r) => r.method === method.toUpperCase() && pathPattern.test(r.path) && predicate(r.body), timeoutMs, () =>
        `timed out after ${timeoutMs} ms waiting for ${method} ${String(pathPattern)}; seen: ${requests.map((r) => `${r.method} ${r.path}`).join(', ') || 'none'}`,
      ),
    failNext: (method, pathPattern, status, body, o = {}) => {
      restApi.failNext({ method: method.toUpperCase(), pattern: pathPattern, status, ...(body ? { body } : {}), ...(o.retryAfter !== undefined ? { retryAfter: o.retryAfter } : {}), times: o.times ?? 1 });
    },
    waitForSent: (predicate, timeoutMs = 5000) =>
      restApi.sentWaiters.waitFor(sent, predicate, timeoutMs, () => `timed out after ${timeoutMs} ms waiting for a sent message; sent so far: ${JSON.stringify(sent.map((s) => ({ kind: s.kind, status: s.status, content: s.content })))}`),

    dispatchInteraction: (payload, o) => {
      if (closed) throw new Error('the Discord stand-in is closed');
      return interactions.dispatch(payload, o);
    },
    original: (tok) => clone(interactions.originalOf(tok)),
    waitForOriginal: (tok, predicate, timeoutMs = 5000) => {
      const check = (): boolean => {
        const m = interactions.originalOf(tok);
        return m !== undefined && predicate(clone(m));
      };
      return store.changes
        .waitFor(check() ? [null] : [], check, timeoutMs, () =>
          `timed out after ${timeoutMs} ms waiting for the original message of ${interactions.byToken.get(tok)?.label ?? 'an unknown interaction'}; now: ${JSON.stringify(interactions.originalOf(tok) ?? null).slice(0, 500)}`,
        )
        .then(() => clone(interactions.originalOf(tok)));
    },
    followUps: (tok) => (interactions.byToken.get(tok)?.followUps ?? []).map((id) => messages.get(id)).filter((m): m is Json => m !== undefined).map(clone),
    expireToken: (tok) => {
      const st = interactions.byToken.get(tok);
      if (!st) throw new Error('unknown interaction token');
      st.expired = true;
    },

    ...payloadBuilders(guild, interactions, store),

    commands: (gid) => clone(gid ? (gid === guild.guildId ? guild.guildCommands : []) : guild.globalCommands),
    messagesIn: (cid) => [...messages.values()].filter((m) => m.channel_id === cid).map(clone),
    dmsTo: (uid) => {
      const cid = guild.dmChannels.get(uid);
      return cid ? [...messages.values()].filter((m) => m.channel_id === cid && !m.interaction_metadata && !m.webhook_id).map(clone) : [];
    },
    dmChannelId: (uid) => guild.dmChannels.get(uid),

    waitForSession: (timeoutMs = 15_000) => gw.waitForSession(timeoutMs),
    sendReconnect: (timeoutMs = 10_000) => gw.sendReconnect(timeoutMs),
    dropConnection: (code = 4000, timeoutMs = 15_000) => gw.dropConnection(code, timeoutMs),
    identifies: () => gw.identifyCount,
    resumes: () => gw.resumeCount,
    heartbeats: () => gw.heartbeatCount,
    connections: () => gw.connectionCount,
    openSockets: () => gw.conns.size,

    clearRecords: () => {
      requests.length = 0;
      callbacks.length = 0;
      violations.length = 0;
      sent.length = 0;
      attachments.length = 0;
    },

    close: async () => {
      if (closed) return;
      closed = true;
      interactions.stop();
      restApi.requestWaiters.clear();
      restApi.sentWaiters.clear();
      store.changes.clear();
      gw.stop();
      await http.close();
    },
  };
}
