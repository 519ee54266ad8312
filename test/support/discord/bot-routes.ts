/**
 * Routes that need `Authorization: Bot <token>`: the gateway URL, users and DM channels, the
 * application, the guild, channels and their messages. Unknown guilds, channels, messages and
 * users answer Discord's 404 codes.
 */
import { addCommandRoutes } from './command-routes.js';
import type { DiscordGuild } from './guild.js';
import { hasAny, messageProblems } from './message-rules.js';
import type { MessageStore } from './messages.js';
import { EPHEMERAL, HttpError, clone, describeProblems, formError, notFound } from './protocol.js';
import { ok, type RestRouter } from './routes.js';

export function addBotRoutes(router: RestRouter, g: DiscordGuild, store: MessageStore, gateway: { url: string; identifies: () => number }): void {
  router.guard('/', (ctx) => {
    if (ctx.authorization !== `Bot ${g.token}`) {
      g.violation(`${ctx.method} /${ctx.seg.join('/')} without a valid bot Authorization header`);
      throw new HttpError(401, { message: '401: Unauthorized', code: 0 });
    }
  });

  router.on('GET', '/gateway/bot', () =>
    ok(200, { url: gateway.url, shards: 1, session_start_limit: { total: 1000, remaining: 1000 - gateway.identifies(), reset_after: 14_400_000, max_concurrency: 1 } }),
  );
  router.on('GET', '/gateway', () => ok(200, { url: gateway.url }));

  router.on('GET', '/users/@me', () => ok(200, { ...g.botUserJson(), verified: true, mfa_enabled: false, locale: 'en-US', email: null }));
  router.on('POST', '/users/@me/channels', (ctx) => {
    const rid = String(ctx.body.recipient_id ?? '');
    if (!g.users.has(rid)) throw new HttpError(400, { message: 'Invalid Recipient(s)', code: 50033 });
    return ok(200, g.dmChannelJson(rid));
  });
  router.on('GET', '/users/:id', (_ctx, p) => {
    if (p.id !== g.botUserId && !g.users.has(p.id!)) throw notFound('User', 10013);
    return ok(200, g.userJson(p.id!));
  });

  for (const path of ['/applications/@me', '/oauth2/applications/@me']) {
    router.on('*', path, (ctx) => {
      if (ctx.method !== 'GET') throw new HttpError(405, { message: '405: Method Not Allowed', code: 0 });
      return ok(200, g.applicationJson());
    });
  }
  addCommandRoutes(router, g);

  router.guard('/guilds/:id', (_ctx, p) => {
    if (p.id !== g.guildId) throw notFound('Guild', 10004);
  });
  router.on('GET', '/guilds/:id', () => {
    const guild = g.guildCreateJson();
    for (const k of ['members', 'channels', 'threads', 'presences', 'voice_states', 'stage_instances', 'guild_scheduled_events', 'soundboard_sounds', 'joined_at', 'large', 'unavailable', 'member_count', 'lazy']) delete guild[k];
    return ok(200, guild);
  });
  router.on('GET', '/guilds/:id/channels', () => ok(200, [g.textChannelJson(true)]));
  router.on('GET', '/guilds/:id/members/:user_id', (_ctx, p) => {
    if (p.user_id !== g.botUserId && !g.users.has(p.user_id!)) throw notFound('Member', 10007);
    return ok(200, g.memberJson(p.user_id!));
  });

  addChannelRoutes(router, g, store);
}

function addChannelRoutes(router: RestRouter, g: DiscordGuild, store: MessageStore): void {
  router.guard('/channels/:id', (_ctx, p) => {
    if (!g.channelJson(p.id!)) throw notFound('Channel', 10003);
  });
  router.on('GET', '/channels/:id', (_ctx, p) => ok(200, g.channelJson(p.id!)));

  router.on('POST', '/channels/:id/messages', (ctx, p) => {
    const b = p.id!;
    const { body, files } = ctx;
    const owner = g.dmOwner.get(b);
    if (owner && g.users.get(owner)?.dmsClosed) throw new HttpError(403, { message: 'Cannot send messages to this user', code: 50007 });
    const problems = messageProblems(body);
    if (problems.length) {
      g.violation(`message to channel ${b}: ${describeProblems(problems)}`);
      throw new HttpError(400, formError(problems));
    }
    if (!hasAny(body) && !files.length) {
      g.violation(`message to channel ${b}: empty message`);
      throw new HttpError(400, { message: 'Cannot send an empty message', code: 50006 });
    }
    if (Number(body.flags ?? 0) & EPHEMERAL) g.violation(`message to channel ${b} with the ephemeral flag (only interaction responses can be ephemeral)`);
    const m = store.create(b, { ...body, flags: Number(body.flags ?? 0) & ~EPHEMERAL });
    store.addFiles(m, files, body);
    store.changed();
    ctx.messageId = m.id;
    return ok(200, clone(m));
  });

  router.guard(
    '/channels/:id/messages/:message_id',
    (ctx, p) => {
      const m = g.messages.get(p.message_id!);
      if (!m || m.channel_id !== p.id || m.flags & EPHEMERAL) throw notFound('Message', 10008);
      ctx.message = m;
    },
    { exact: true },
  );
  router.on('GET', '/channels/:id/messages/:message_id', (ctx) => ok(200, clone(ctx.message)));
  router.on('PATCH', '/channels/:id/messages/:message_id', (ctx, p) => {
    const m = ctx.message!;
    const { body, files } = ctx;
    if (m.author?.id !== g.botUserId) throw new HttpError(403, { message: 'Cannot edit a message authored by another user', code: 50005 });
    const problems = messageProblems({ ...body, flags: body.flags ?? m.flags });
    if (problems.length) {
      g.violation(`edit of message ${p.message_id}: ${describeProblems(problems)}`);
      throw new HttpError(400, formError(problems));
    }
    store.edit(m, body, files);
    store.changed();
    ctx.messageId = m.id;
    return ok(200, clone(m));
  });
  router.on('DELETE', '/channels/:id/messages/:message_id', (_ctx, p) => {
    g.messages.delete(p.message_id!);
    store.changed();
    return ok(204);
  });
}
