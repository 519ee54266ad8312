/** Application command registration: /applications/:id[/guilds/:guild_id]/commands[/:command_id]. */
import { commandProblems } from './command-rules.js';
import type { DiscordGuild } from './guild.js';
import { HttpError, clone, describeProblems, formError, notFound } from './protocol.js';
import { ok, type RestRouter, type RouteContext } from './routes.js';
import type { Json } from './types.js';

export function addCommandRoutes(router: RestRouter, g: DiscordGuild): void {
  router.guard('/applications/:id', (_ctx, p) => {
    if (p.id !== g.appId) throw new HttpError(403, { message: 'Missing Access', code: 50001 });
  });
  router.guard('/applications/:id/guilds/:guild_id/commands', (_ctx, p) => {
    if (p.guild_id !== g.guildId) throw notFound('Guild', 10004);
  });

  const checked = (body: unknown): void => {
    const problems = commandProblems(body);
    if (problems.length) {
      g.violation(`command registration rejected: ${describeProblems(problems)}`);
      throw new HttpError(400, formError(problems));
    }
  };

  /** Stores `body` as the whole list, keeping the ids of commands whose type and name stay. */
  const put = (list: Json[], body: Json[], scopeGuild?: string): Json[] => {
    const before = new Map(list.map((c) => [`${c.type}:${c.name}`, c]));
    const next = body.map((c) => {
      const type = (c.type as number | undefined) ?? 1;
      const prev = before.get(`${type}:${String(c.name)}`);
      return {
        ...clone(c),
        id: prev?.id ?? g.snowflake(),
        application_id: g.appId,
        version: g.snowflake(),
        type,
        ...(scopeGuild ? { guild_id: scopeGuild } : {}),
        description: c.description ?? '',
        default_member_permissions: c.default_member_permissions ?? null,
        nsfw: c.nsfw ?? false,
        ...(scopeGuild ? {} : { dm_permission: c.dm_permission ?? true }),
        integration_types: c.integration_types ?? [0],
        contexts: c.contexts ?? null,
      };
    });
    list.splice(0, list.length, ...next);
    return clone(next);
  };

  for (const scoped of [false, true]) {
    const base = scoped ? '/applications/:id/guilds/:guild_id/commands' : '/applications/:id/commands';
    const listOf = (ctx: RouteContext): { list: Json[]; scope?: string } => (scoped ? { list: g.guildCommands, scope: ctx.seg[3]! } : { list: g.globalCommands });

    router.on('GET', base, (ctx) => ok(200, clone(listOf(ctx).list)));
    router.on('PUT', base, (ctx) => {
      checked(ctx.body);
      const { list, scope } = listOf(ctx);
      return ok(200, put(list, ctx.body as unknown as Json[], scope));
    });
    router.on('POST', base, (ctx) => {
      const { body } = ctx;
      checked([body]);
      const { list, scope } = listOf(ctx);
      const type = (body.type as number | undefined) ?? 1;
      const others = list.filter((x) => !(x.type === type && x.name === body.name));
      const existed = others.length !== list.length;
      const merged = [...others.map((x) => ({ ...x })), body];
      const prevIds = new Map(list.map((x) => [`${x.type}:${x.name}`, x]));
      put(list, merged, scope);
      for (const x of list) {
        const prev = prevIds.get(`${x.type}:${x.name}`);
        if (prev) x.id = prev.id;
      }
      return ok(existed ? 200 : 201, clone(list.find((x) => x.type === type && x.name === body.name)));
    });
    router.guard(
      `${base}/:command_id`,
      (ctx, p) => {
        if (!listOf(ctx).list.some((x) => x.id === p.command_id)) throw notFound('application command', 10063);
      },
      { exact: true },
    );
    router.on('GET', `${base}/:command_id`, (ctx, p) => ok(200, clone(listOf(ctx).list.find((x) => x.id === p.command_id))));
    router.on('DELETE', `${base}/:command_id`, (ctx, p) => {
      const { list } = listOf(ctx);
      list.splice(
        list.findIndex((x) => x.id === p.command_id),
        1,
      );
      return ok(204);
    });
  }
}
