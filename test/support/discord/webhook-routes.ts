/**
 * Routes without the bot token: interaction callbacks and the interaction webhook
 * (follow-ups; GET/PATCH/DELETE of @original or a follow-up).
 */
import type { Interactions } from './interactions.js';
import { hasAny, messageProblems } from './message-rules.js';
import type { MessageStore } from './messages.js';
import { HttpError, LOADING, clone, describeProblems, formError } from './protocol.js';
import { ok, type RestRouter } from './routes.js';
import type { DiscordGuild } from './guild.js';

export function addWebhookRoutes(router: RestRouter, g: DiscordGuild, interactions: Interactions, store: MessageStore): void {
  router.on('POST', '/interactions/:id/:token/callback', (ctx, p) => {
    const st = interactions.byId.get(p.id!);
    if (st) ctx.interaction = st;
    const r = interactions.callback(p.id!, p.token!, ctx.query, ctx.body, ctx.files);
    const originalId = interactions.byId.get(p.id!)?.originalId;
    if (originalId) ctx.messageId = originalId;
    return ok(r.status, r.body);
  });

  router.guard('/webhooks/:id/:token', (ctx, p) => {
    ctx.interaction = interactions.webhookState(p.id!, p.token!);
  });

  router.on('POST', '/webhooks/:id/:token', (ctx) => {
    const st = ctx.interaction!;
    const { body, files } = ctx;
    const problems = messageProblems(body);
    if (problems.length) {
      g.violation(`follow-up for ${st.label}: ${describeProblems(problems)}`);
      throw new HttpError(400, formError(problems));
    }
    if (!hasAny(body) && !files.length) {
      g.violation(`follow-up for ${st.label}: empty message`);
      throw new HttpError(400, { message: 'Cannot send an empty message', code: 50006 });
    }
    const orig = st.originalId ? g.messages.get(st.originalId) : undefined;
    if (orig && orig.flags & LOADING) {
      // The first follow-up after a deferred reply replaces the "thinking…" message.
      store.edit(orig, { ...body, flags: undefined }, files);
      store.changed();
      ctx.messageId = orig.id;
      return ok(200, clone(orig));
    }
    const m = store.create(interactions.channelOf(st), body, { type: 0, webhook_id: g.appId, application_id: g.appId });
    store.addFiles(m, files, body);
    st.followUps.push(m.id);
    store.changed();
    ctx.messageId = m.id;
    return ok(200, clone(m));
  });

  router.guard(
    '/webhooks/:id/:token/messages/:message_id',
    (ctx, p) => {
      ctx.message = interactions.webhookMessage(ctx.interaction!, p.message_id!);
    },
    { exact: true },
  );

  router.on('GET', '/webhooks/:id/:token/messages/:message_id', (ctx) => ok(200, clone(ctx.message)));

  router.on('PATCH', '/webhooks/:id/:token/messages/:message_id', (ctx, p) => {
    const st = ctx.interaction!;
    const m = ctx.message!;
    const { body, files } = ctx;
    const problems = messageProblems({ ...body, flags: body.flags ?? m.flags });
    if (problems.length) {
      g.violation(`edit of ${p.message_id} for ${st.label}: ${describeProblems(problems)}`);
      throw new HttpError(400, formError(problems));
    }
    const after = { ...m, ...body };
    if (!hasAny(after) && !files.length && !(Array.isArray(m.attachments) && m.attachments.length && !('attachments' in body))) {
      g.violation(`edit of ${p.message_id} for ${st.label}: the message would be empty`);
      throw new HttpError(400, { message: 'Cannot send an empty message', code: 50006 });
    }
    store.edit(m, body, files);
    store.changed();
    ctx.messageId = m.id;
    return ok(200, clone(m));
  });

  router.on('DELETE', '/webhooks/:id/:token/messages/:message_id', (ctx) => {
    g.messages.delete(ctx.message!.id);
    store.changed();
    return ok(204);
  });
}
