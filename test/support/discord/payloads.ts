/**
 * Interaction payloads as Discord sends them: slash commands and autocomplete (options typed and
 * checked against the registered command, users/channels/roles resolved), button clicks on stored
 * messages, and modal submissions mirroring the modal the bot opened. From the guild channel by
 * default; `dm: true` from the bot's DM with the user (no guild, no member); `guildId` from another
 * server's channel; `roles` / `permissions` set the member's.
 */
import { randomBytes } from 'node:crypto';
import type { DiscordGuild } from './guild.js';
import type { Interactions } from './interactions.js';
import type { MessageStore } from './messages.js';
import { BOT_PERMISSIONS, EPHEMERAL, MEMBER_PERMISSIONS, clone, isObj } from './protocol.js';
import type { DiscordStandin, InteractionBase, Json, OptionInput } from './types.js';

type Builders = Pick<DiscordStandin, 'slashCommand' | 'autocomplete' | 'button' | 'modalSubmit'>;
type CommandPath = { name?: string; subcommandGroup?: string; subcommand?: string; options?: OptionInput[] };

const inferType = (v: string | number | boolean): number => (typeof v === 'boolean' ? 5 : typeof v === 'number' ? (Number.isInteger(v) ? 4 : 10) : 3);

function componentWith(msg: Json, customId: string): Json | undefined {
  const walk = (list: unknown): Json | undefined => {
    if (!Array.isArray(list)) return undefined;
    for (const c of list) {
      if (!isObj(c)) continue;
      if (c.custom_id === customId) return c;
      const inner = walk(c.components) ?? (isObj(c.accessory) && c.accessory.custom_id === customId ? c.accessory : undefined);
      if (inner) return inner;
    }
    return undefined;
  };
  return walk(msg.components);
}

export function payloadBuilders(g: DiscordGuild, interactions: Interactions, store: MessageStore): Builders {
  const registeredCommand = (name: string): Json | undefined =>
    g.guildCommands.find((c) => c.name === name && (c.type ?? 1) === 1) ?? g.globalCommands.find((c) => c.name === name && (c.type ?? 1) === 1);

  /** The guild an interaction comes from; undefined for a DM. */
  const guildOf = (o: InteractionBase): string | undefined => (o.dm ? undefined : (o.guildId ?? g.guildId));

  function basePayload(o: InteractionBase, type: number, data: Json, extra: Json = {}): Json {
    g.ensureUser(o.userId, o.username);
    const common = {
      id: g.snowflake(),
      application_id: g.appId,
      type,
      data,
      version: 1,
      app_permissions: BOT_PERMISSIONS,
      locale: o.locale ?? 'en-US',
      entitlements: [],
      attachment_size_limit: 10_485_760,
    };
    const guildId = guildOf(o);
    const home = guildId === g.guildId;
    const p: Json =
      guildId === undefined
        ? { ...common, channel_id: g.dmChannelFor(o.userId), channel: g.dmChannelJson(o.userId), user: g.userJson(o.userId), context: 1, authorizing_integration_owners: { '0': '0' } }
        : {
            ...common,
            guild_id: guildId,
            guild: { id: guildId, locale: 'en-US', features: [] },
            guild_locale: 'en-US',
            channel_id: home ? g.channelId : g.foreignChannelFor(guildId),
            channel: { ...(home ? g.textChannelJson(true) : g.foreignChannelJson(guildId)), permissions: MEMBER_PERMISSIONS },
            member: { ...g.memberJson(o.userId, { roles: o.roles ?? (home ? g.users.get(o.userId)?.roles : undefined) ?? [] }), permissions: o.permissions ?? MEMBER_PERMISSIONS },
            context: 0,
            authorizing_integration_owners: { '0': guildId },
          };
    Object.assign(p, extra);
    p.token = `aW50ZXJhY3Rpb246${String(p.id)}${randomBytes(48).toString('base64url')}`;
    return p;
  }

  /** Command data options for name/group/subcommand with typed options, checked against the registered command. */
  function commandData(o: CommandPath, focused: { name: string; value: string } | undefined, guildId: string | undefined): Json {
    const dm = guildId === undefined;
    const name = o.name ?? 'gpu';
    const cmd = registeredCommand(name);
    let schemaOpts: Json[] | undefined = cmd ? ((cmd.options as Json[] | undefined) ?? []) : undefined;
    const where = [`/${name}`];
    if (cmd && o.subcommandGroup) {
      const g = schemaOpts?.find((x) => x.type === 2 && x.name === o.subcommandGroup);
      if (!g) throw new Error(`registered command /${name} has no subcommand group ${o.subcommandGroup}`);
      schemaOpts = g.options ?? [];
      where.push(o.subcommandGroup);
    }
    if (cmd && o.subcommand) {
      const s = schemaOpts?.find((x) => x.type === 1 && x.name === o.subcommand);
      if (!s) throw new Error(`registered command ${where.join(' ')} has no subcommand ${o.subcommand}`);
      schemaOpts = s.options ?? [];
      where.push(o.subcommand);
    }
    const resolved: Json = {};
    const leaf: Json[] = [];
    const inputs = [...(o.options ?? [])];
    if (focused) inputs.push({ name: focused.name, value: focused.value });
    for (const opt of inputs) {
      const schema = schemaOpts?.find((x) => x.name === opt.name);
      if (schemaOpts && !schema) throw new Error(`registered command ${where.join(' ')} has no option ${opt.name}`);
      const type = opt.type ?? (schema?.type as number | undefined) ?? inferType(opt.value);
      if (schema && schema.type !== type) throw new Error(`option ${opt.name} of ${where.join(' ')} has type ${String(schema.type)}, not ${type}`);
      const isFocused = focused?.name === opt.name;
      if (!isFocused) {
        if (type === 3 && typeof opt.value !== 'string') throw new Error(`option ${opt.name} is a string option`);
        if (type === 4 && !Number.isInteger(opt.value)) throw new Error(`option ${opt.name} is an integer option`);
        if (type === 10 && typeof opt.value !== 'number') throw new Error(`option ${opt.name} is a number option`);
        if (type === 5 && typeof opt.value !== 'boolean') throw new Error(`option ${opt.name} is a boolean option`);
        if (schema) {
          if (typeof opt.value === 'number' && ((typeof schema.min_value === 'number' && opt.value < schema.min_value) || (typeof schema.max_value === 'number' && opt.value > schema.max_value)))
            throw new Error(`option ${opt.name}=${opt.value} is outside ${String(schema.min_value)}..${String(schema.max_value)}: Discord would not send it`);
          if (typeof opt.value === 'string' && ((typeof schema.max_length === 'number' && opt.value.length > schema.max_length) || (typeof schema.min_length === 'number' && opt.value.length < schema.min_length)))
            throw new Error(`option ${opt.name} is longer or shorter than the registered length limits: Discord would not send it`);
          if (Array.isArray(schema.choices) && schema.choices.length && !schema.choices.some((ch: Json) => ch.value === opt.value))
            throw new Error(`option ${opt.name}=${String(opt.value)} is not one of the registered choices`);
        }
      }
      const id = String(opt.value);
      if (!isFocused && (type === 6 || type === 9) && (g.users.has(id) || id === g.botUserId)) {
        (resolved.users ??= {})[id] = g.userJson(id);
        if (!dm) {
          const member = g.memberJson(id);
          delete member.user; // resolved members come without their user
          (resolved.members ??= {})[id] = { ...member, permissions: MEMBER_PERMISSIONS };
        }
      }
      if (!isFocused && type === 7) {
        const ch = g.channelJson(id);
        if (ch) (resolved.channels ??= {})[id] = { id, type: ch.type, name: ch.name, permissions: MEMBER_PERMISSIONS, ...(ch.guild_id ? { guild_id: ch.guild_id, parent_id: null, flags: 0 } : {}) };
      }
      if (!isFocused && (type === 8 || type === 9) && (g.roles.has(id) || id === g.guildId)) (resolved.roles ??= {})[id] = g.roleJson(id, g.roles.get(id) ?? '@everyone', 0, MEMBER_PERMISSIONS);
      leaf.push({ type, name: opt.name, value: opt.value, ...(isFocused ? { focused: true } : {}) });
    }
    if (schemaOpts && !focused) {
      for (const s of schemaOpts) if (s.required === true && !leaf.some((l) => l.name === s.name)) throw new Error(`required option ${String(s.name)} of ${where.join(' ')} is missing: Discord would not send it`);
    }
    let options: Json[] = leaf;
    if (o.subcommand) options = [{ type: 1, name: o.subcommand, options: leaf }];
    if (o.subcommandGroup) options = [{ type: 2, name: o.subcommandGroup, options }];
    return {
      id: cmd?.id ?? g.snowflake(),
      name,
      type: 1,
      ...(cmd?.guild_id && !dm && cmd.guild_id === guildId ? { guild_id: cmd.guild_id } : {}),
      options,
      ...(Object.keys(resolved).length ? { resolved } : {}),
    };
  }

  return {
    slashCommand: (o) => basePayload(o, 2, commandData(o, undefined, guildOf(o))),
    autocomplete: (o) => basePayload(o, 4, commandData(o, { name: o.focused, value: o.value }, guildOf(o))),
    button: (o) => {
      let message: Json;
      if (o.messageId) {
        const found = g.messages.get(o.messageId);
        if (!found) throw new Error(`no stored message ${o.messageId}`);
        const comp = componentWith(found, o.customId);
        if (!comp) throw new Error(`message ${o.messageId} has no component with custom_id ${o.customId}`);
        if (comp.type !== 2) throw new Error(`component ${o.customId} is not a button (type ${String(comp.type)})`);
        if (comp.disabled === true) throw new Error(`button ${o.customId} is disabled: Discord would not send a click`);
        message = clone(found);
      } else {
        const guildId = guildOf(o);
        const ch = guildId === undefined ? g.dmChannelFor(o.userId) : guildId === g.guildId ? g.channelId : g.foreignChannelFor(guildId);
        message = store.create(ch, { content: '', components: [{ type: 1, components: [{ type: 2, style: 1, label: 'Button', custom_id: o.customId }] }], flags: o.ephemeral ? EPHEMERAL : 0 }, { application_id: g.appId });
        message = clone(message);
      }
      // A click comes from where the message is: a DM, another server's channel, or ours.
      const dm = o.dm ?? g.dmOwner.has(String(message.channel_id));
      const guildId = o.guildId ?? g.foreignGuildOf(String(message.channel_id));
      return basePayload({ ...o, dm, ...(guildId !== undefined ? { guildId } : {}) }, 3, { component_type: 2, custom_id: o.customId }, { message });
    },
    modalSubmit: (o) => {
      const shown = interactions.modals.get(o.customId);
      const components: Json[] = [];
      const used = new Set<string>();
      if (shown && Array.isArray(shown.components)) {
        for (const c of shown.components as Json[]) {
          if (c.type === 1 && Array.isArray(c.components)) {
            components.push({ type: 1, ...(c.id !== undefined ? { id: c.id } : {}), components: (c.components as Json[]).map((t) => ({ type: t.type, ...(t.id !== undefined ? { id: t.id } : {}), custom_id: t.custom_id, value: (used.add(String(t.custom_id)), o.fields[String(t.custom_id)] ?? '') })) });
          } else if (c.type === 18 && isObj(c.component)) {
            const t = c.component;
            components.push({ type: 18, ...(c.id !== undefined ? { id: c.id } : {}), component: { type: t.type, ...(t.id !== undefined ? { id: t.id } : {}), custom_id: t.custom_id, ...(t.type === 4 ? { value: (used.add(String(t.custom_id)), o.fields[String(t.custom_id)] ?? '') } : { values: [] }) } });
          } else if (c.type === 10) {
            components.push({ type: 10, ...(c.id !== undefined ? { id: c.id } : {}) });
          }
        }
        for (const k of Object.keys(o.fields)) if (!used.has(k)) throw new Error(`the modal ${o.customId} the bot opened has no text input ${k}`);
      } else {
        for (const [k, v] of Object.entries(o.fields)) components.push({ type: 1, components: [{ type: 4, custom_id: k, value: v }] });
      }
      const extra: Json = {};
      if (o.messageId) {
        const found = g.messages.get(o.messageId);
        if (!found) throw new Error(`no stored message ${o.messageId}`);
        extra.message = clone(found);
      }
      return basePayload(o, 5, { custom_id: o.customId, components }, extra);
    },
  };
}
