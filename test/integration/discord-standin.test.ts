/**
 * Proves the Discord stand-in (test/support/discord-standin.ts) against the real discord.js 14 Client:
 * gateway (identify, heartbeats, RECONNECT → RESUME), interactions (commands, autocomplete, buttons,
 * modals; 3 s rule; double acks), the interaction webhook, command registration and DMs.
 * No gpubot code is involved.
 */
import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  ChannelType,
  Client,
  DiscordAPIError,
  EmbedBuilder,
  Events,
  GatewayIntentBits,
  MessageFlags,
  ModalBuilder,
  Routes,
  SlashCommandBuilder,
  TextInputBuilder,
  TextInputStyle,
  type Interaction,
  type TextChannel,
} from 'discord.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDiscordStandin, type DiscordStandin } from '../support/discord-standin.js';
import { waitFor } from '../support/wait.js';

const ALICE = '111111111111111111';
const BOB = '222222222222222222';
const CAROL = '333333333333333333';
const GPU_ROLE = '444444444444444444';
const OTHER_GUILD = '555555555555555555';
const CHART = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'); // the start of a PNG

function gpuCommand(): SlashCommandBuilder {
  const b = new SlashCommandBuilder().setName('gpu').setDescription('GPUs on the shared servers');
  b.addSubcommand((s) => s.setName('status').setDescription('Who uses which GPU'));
  b.addSubcommand((s) => s.setName('help').setDescription('Help'));
  b.addSubcommand((s) => s.setName('slow').setDescription('Answers too late'));
  b.addSubcommand((s) => s.setName('twice').setDescription('Acknowledges twice'));
  b.addSubcommand((s) => s.setName('big').setDescription('Sends too much'));
  b.addSubcommand((s) => s.setName('followup').setDescription('Defers, then follows up'));
  b.addSubcommand((s) => s.setName('whoami').setDescription('Where the interaction came from'));
  b.addSubcommand((s) => s.setName('chart').setDescription('Defers, then edits in a file'));
  b.addSubcommand((s) =>
    s
      .setName('run')
      .setDescription('Start a container')
      .addIntegerOption((o) => o.setName('gpus').setDescription('How many GPUs').setRequired(true).setMinValue(1).setMaxValue(8))
      .addStringOption((o) => o.setName('host').setDescription('Host').setAutocomplete(true))
      .addUserOption((o) => o.setName('for').setDescription('On behalf of')),
  );
  return b;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Discord stand-in with a real discord.js Client', () => {
  let standin: DiscordStandin;
  let client: Client;
  const errors = new Map<string, unknown>(); // interaction id → error its handler got
  const seen: { id: string; kind: string; detail: string }[] = [];
  const notes = new Map<string, unknown>(); // interaction id → what its handler observed
  let shardResumes = 0;

  async function handle(i: Interaction): Promise<void> {
    if (i.isAutocomplete()) {
      const focused = i.options.getFocused(true);
      seen.push({ id: i.id, kind: 'autocomplete', detail: `${focused.name}=${focused.value}` });
      await i.respond([{ name: `${focused.value}1 (2 free)`, value: `${focused.value}1` }]);
      return;
    }
    if (i.isChatInputCommand()) {
      const sub = i.options.getSubcommand();
      seen.push({ id: i.id, kind: 'command', detail: `${sub} ${i.inGuild() ? 'guild' : 'dm'} ${i.user.globalName ?? i.user.username}` });
      switch (sub) {
        case 'status': {
          await i.deferReply({ flags: MessageFlags.Ephemeral });
          const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
            new ButtonBuilder().setCustomId('gpubot:stop x').setLabel('Stop').setStyle(ButtonStyle.Danger),
            new ButtonBuilder().setCustomId('open-modal').setLabel('Launch…').setStyle(ButtonStyle.Primary),
          );
          await i.editReply({ embeds: [new EmbedBuilder().setTitle('hi').setDescription('2 GPUs free')], components: [row] });
          return;
        }
        case 'help':
          await i.reply({ content: `help for ${i.user.username}` });
          return;
        case 'slow':
          await sleep(3500);
          await i.reply({ content: 'too late' });
          return;
        case 'twice':
          await i.reply({ content: 'first' });
          // discord.js refuses a second reply itself; go around it to see what Discord says.
          await i.client.rest.post(Routes.interactionCallback(i.id, i.token), { body: { type: 4, data: { content: 'second' } }, auth: false });
          return;
        case 'big':
          await i.reply({ content: 'x'.repeat(2001) });
          return;
        case 'followup': {
          await i.deferReply();
          const loading = await i.fetchReply(); // GET …/messages/@original
          notes.set(i.id, loading.flags.has(MessageFlags.Loading));
          await i.followUp({ content: 'done (first follow-up)', flags: MessageFlags.Ephemeral });
          await i.followUp({ content: 'second follow-up', flags: MessageFlags.Ephemeral });
          return;
        }
        case 'whoami': {
          // In the stand-in's guild the member is cached (a GuildMember); elsewhere it is raw API data.
          const roles = !i.member ? [] : Array.isArray(i.member.roles) ? i.member.roles : [...i.member.roles.cache.keys()].filter((id) => id !== i.guildId);
          await i.reply({
            content: `whoami ${i.guildId ?? 'dm'} ${i.inCachedGuild() ? 'cached' : 'not cached'} roles=${roles.join(',')} @everyone`,
            allowedMentions: { parse: [] },
            flags: MessageFlags.Ephemeral | MessageFlags.SuppressEmbeds,
          });
          return;
        }
        case 'chart':
          await i.deferReply();
          await i.editReply({ content: 'GPU hours this week', files: [{ attachment: CHART, name: 'chart.png', description: 'GPU hours by user' }], allowedMentions: { parse: [] } });
          return;
        case 'run': {
          const who = i.options.getUser('for');
          const r = await i.reply({
            content: `run ${i.options.getInteger('gpus', true)} on ${i.options.getString('host') ?? 'any'}${who ? ` for ${who.username}` : ''}`,
            flags: MessageFlags.Ephemeral,
            withResponse: true, // ?with_response=true → 200 with the callback response
          });
          notes.set(i.id, r.resource?.message?.id);
          return;
        }
      }
      return;
    }
    if (i.isButton()) {
      seen.push({ id: i.id, kind: 'button', detail: `${i.customId} on ${i.message.id}` });
      if (i.customId === 'gpubot:stop x') {
        await i.update({ content: 'Stopping x…', embeds: [], components: [] });
      } else if (i.customId === 'open-modal') {
        await i.showModal(
          new ModalBuilder()
            .setCustomId('launch')
            .setTitle('Launch')
            .addComponents(new ActionRowBuilder<TextInputBuilder>().addComponents(new TextInputBuilder().setCustomId('cmd').setLabel('Command').setStyle(TextInputStyle.Short))),
        );
      } else if (i.customId === 'bye') {
        await i.reply({ content: 'going away' });
        await i.deleteReply();
      } else {
        await i.reply({ content: `clicked ${i.customId}`, flags: MessageFlags.Ephemeral });
      }
      return;
    }
    if (i.isModalSubmit()) {
      seen.push({ id: i.id, kind: 'modal', detail: i.fields.getTextInputValue('cmd') });
      await i.reply({ content: `launching ${i.fields.getTextInputValue('cmd')}`, flags: MessageFlags.Ephemeral });
    }
  }

  beforeAll(async () => {
    standin = await startDiscordStandin({
      users: { [ALICE]: { username: 'alice', global_name: 'Alice A.' }, [BOB]: { username: 'bob', roles: [GPU_ROLE] }, [CAROL]: { username: 'carol', dmsClosed: true } },
      roles: { [GPU_ROLE]: 'gpu-users' },
      heartbeatIntervalMs: 1000,
    });
    client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: standin.apiUrl, retries: 0, timeout: 5000 } });
    client.on(Events.InteractionCreate, (i) => {
      handle(i).catch((err: unknown) => errors.set(i.id, err));
    });
    client.on(Events.ShardResume, () => {
      shardResumes += 1;
    });
    // The ready listener goes on before login(): READY + GUILD_CREATE can be processed before login() resolves.
    const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
    await client.login(standin.token);
    await ready;
  });

  afterEach(() => {
    // Every test consumes the violations it provokes.
    expect(standin.violations).toEqual([]);
  });

  afterAll(async () => {
    // Order matters: destroy the client first, or it tries to resume against a closed server.
    await client?.destroy();
    await standin?.close();
  });

  it('logs in: GET /gateway/bot, IDENTIFY with the token, READY + GUILD_CREATE cached, heartbeats acked', async () => {
    expect(standin.requestsTo('GET', /^\/gateway\/bot$/)).toHaveLength(1);
    expect(standin.requestsTo('GET', /^\/gateway\/bot$/)[0]!.authorization).toBe(`Bot ${standin.token}`);
    expect(standin.identifies()).toBe(1);
    expect(standin.resumes()).toBe(0);
    expect(client.user?.id).toBe(standin.botUserId);
    expect(client.user?.bot).toBe(true);
    expect(client.application?.id).toBe(standin.appId);
    const guild = client.guilds.cache.get(standin.guildId);
    expect(guild?.name).toBe(standin.guildName);
    expect(guild?.available).toBe(true);
    expect(guild?.channels.cache.get(standin.channelId)?.type).toBe(ChannelType.GuildText);
    expect(guild?.members.cache.get(ALICE)?.user.username).toBe('alice');
    expect(guild?.members.me?.id).toBe(standin.botUserId);
    await waitFor(() => standin.heartbeats() >= 1 && client.ws.ping >= 0, { timeoutMs: 5000, what: 'an acked heartbeat' });
  });

  it('registers guild commands: the PUT carries the builder JSON and the answer echoes it with ids', async () => {
    const body = [gpuCommand().toJSON()];
    const echoed = (await client.rest.put(Routes.applicationGuildCommands(standin.appId, standin.guildId), { body })) as { id: string; name: string; application_id: string; guild_id: string }[];
    const put = await standin.waitForRequest('PUT', new RegExp(`^/applications/${standin.appId}/guilds/${standin.guildId}/commands$`));
    expect(put.body).toEqual(JSON.parse(JSON.stringify(body)));
    expect(put.status).toBe(200);
    expect(echoed).toHaveLength(1);
    expect(echoed[0]).toMatchObject({ name: 'gpu', application_id: standin.appId, guild_id: standin.guildId });
    expect(echoed[0]!.id).toMatch(/^\d{17,20}$/);
    // Registering again keeps the id, as Discord does for an unchanged name.
    const again = (await client.rest.put(Routes.applicationGuildCommands(standin.appId, standin.guildId), { body })) as { id: string }[];
    expect(again[0]!.id).toBe(echoed[0]!.id);
    expect(standin.commands(standin.guildId)[0]!.options.map((o: { name: string }) => o.name)).toContain('run');

    // Discord's rules: an upper-case name is rejected with 50035.
    const bad = new SlashCommandBuilder().setName('gpu').setDescription('x').toJSON();
    await expect(client.rest.put(Routes.applicationCommands(standin.appId), { body: [{ ...bad, name: 'GPU' }] })).rejects.toMatchObject({ code: 50035, status: 400 });
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('command registration rejected')]);

    // Global commands through discord.js's manager: the echo must satisfy its ApplicationCommand.
    const set = await client.application!.commands.set([new SlashCommandBuilder().setName('ping').setDescription('Ping').toJSON()]);
    expect(set.first()).toMatchObject({ name: 'ping', applicationId: standin.appId, guildId: null });
    expect(standin.commands()[0]).toMatchObject({ name: 'ping', application_id: standin.appId });
    const app = await client.application!.fetch();
    expect(app.id).toBe(standin.appId);
    expect(standin.requestsTo('GET', /^\/applications\/@me$/)).toHaveLength(1);
  });

  it('slash command: deferReply (ephemeral) then editReply with an embed and buttons', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'status' }));
    const cb = await h.callback;
    expect(cb).toMatchObject({ type: 5, data: { flags: MessageFlags.Ephemeral }, status: 204 });
    expect(cb.ms).toBeLessThan(3000);
    const original = await standin.waitForOriginal(h.token, (m) => m.embeds.length > 0);
    expect(original.embeds[0]).toMatchObject({ title: 'hi', description: '2 GPUs free' });
    expect(original.components[0].components.map((c: { custom_id: string }) => c.custom_id)).toEqual(['gpubot:stop x', 'open-modal']);
    expect(original.flags).toBe(MessageFlags.Ephemeral); // the loading flag is gone after the edit
    const patch = standin.requestsTo('PATCH', /^\/webhooks\/\d+\/[^/]+\/messages\/@original$/).at(-1)!;
    expect(patch.path).toBe(`/webhooks/${standin.appId}/${h.token}/messages/@original`);
    expect(patch.authorization).toBeUndefined(); // interaction webhooks go without the bot token
    expect(seen.find((s) => s.id === h.id)?.detail).toBe('status guild Alice A.');
  });

  it('button on that reply: update() edits the message the button is on', async () => {
    const first = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'status' }));
    const msg = await standin.waitForOriginal(first.token, (m) => m.components.length > 0);
    const click = standin.dispatchInteraction(standin.button({ userId: ALICE, customId: 'gpubot:stop x', messageId: msg.id }));
    expect(await click.callback).toMatchObject({ type: 7, data: { content: 'Stopping x…', embeds: [], components: [] } });
    // The clicked message is the @original of both interactions.
    expect(standin.original(click.token)).toMatchObject({ id: msg.id, content: 'Stopping x…', embeds: [], components: [] });
    expect(standin.original(first.token)).toMatchObject({ id: msg.id, content: 'Stopping x…' });
    expect(seen.find((s) => s.id === click.id)?.detail).toBe(`gpubot:stop x on ${msg.id}`);
    // A button that is not on the message cannot be clicked.
    expect(() => standin.button({ userId: ALICE, customId: 'nope', messageId: msg.id })).toThrow(/no component/);
  });

  it('button on a made-up message: reply()', async () => {
    const click = standin.dispatchInteraction(standin.button({ userId: BOB, customId: 'other' }));
    expect(await click.callback).toMatchObject({ type: 4, data: { content: 'clicked other', flags: MessageFlags.Ephemeral } });
    expect(standin.original(click.token)).toMatchObject({ content: 'clicked other', flags: MessageFlags.Ephemeral, interaction_metadata: { id: click.id, type: 3 } });
    // reply() then deleteReply(): the original is gone.
    const bye = standin.dispatchInteraction(standin.button({ userId: BOB, customId: 'bye' }));
    await bye.callback;
    await standin.waitForRequest('DELETE', /\/messages\/@original$/, undefined, 5000);
    expect(standin.original(bye.token)).toBeUndefined();
  });

  it('reply() within 3 s; options are typed from the registered command, users resolved', async () => {
    const help = standin.dispatchInteraction(standin.slashCommand({ userId: BOB, subcommand: 'help' }));
    expect(await help.callback).toMatchObject({ type: 4, data: { content: 'help for bob' }, status: 204 });
    expect(standin.original(help.token)).toMatchObject({ content: 'help for bob', flags: 0, author: { id: standin.botUserId, bot: true } });

    const run = standin.dispatchInteraction(
      standin.slashCommand({ userId: ALICE, subcommand: 'run', options: [{ name: 'gpus', value: 2 }, { name: 'host', value: 'h1' }, { name: 'for', value: BOB }] }),
    );
    expect(await run.callback).toMatchObject({ status: 200, data: { content: 'run 2 on h1 for bob' } });
    await waitFor(() => notes.get(run.id), { timeoutMs: 5000, what: 'the withResponse message id' });
    expect(notes.get(run.id)).toBe(standin.original(run.token).id);
    // Payloads Discord would never send are refused when the command is registered.
    expect(() => standin.slashCommand({ userId: ALICE, subcommand: 'run', options: [{ name: 'gpus', value: 99 }] })).toThrow(/outside/);
    expect(() => standin.slashCommand({ userId: ALICE, subcommand: 'run', options: [{ name: 'host', value: 'h1' }] })).toThrow(/required option gpus/);
    expect(() => standin.slashCommand({ userId: ALICE, subcommand: 'nope' })).toThrow(/no subcommand/);
  });

  it('slash command in the bot DM', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'help', dm: true }));
    expect(await h.callback).toMatchObject({ type: 4, data: { content: 'help for alice' } });
    expect(seen.find((s) => s.id === h.id)?.detail).toBe('help dm Alice A.');
    expect(standin.original(h.token)?.channel_id).toBe(standin.dmChannelId(ALICE));
  });

  it('autocomplete: respond() → callback type 8 with the choices', async () => {
    const h = standin.dispatchInteraction(standin.autocomplete({ userId: ALICE, subcommand: 'run', focused: 'host', value: 'gpu', options: [{ name: 'gpus', value: 1 }] }));
    const cb = await h.callback;
    expect(cb).toMatchObject({ type: 8, data: { choices: [{ name: 'gpu1 (2 free)', value: 'gpu1' }] }, status: 204 });
    expect(seen.find((s) => s.id === h.id)?.detail).toBe('host=gpu');
    const payload = standin.autocomplete({ userId: ALICE, subcommand: 'run', focused: 'host', value: 'g' });
    expect(payload.data.options[0].options).toEqual([{ type: 3, name: 'host', value: 'g', focused: true }]);
  });

  it('a button opens a modal; its submission is answered', async () => {
    const click = standin.dispatchInteraction(standin.button({ userId: ALICE, customId: 'open-modal' }));
    expect(await click.callback).toMatchObject({ type: 9, data: { custom_id: 'launch', title: 'Launch' } });
    const submit = standin.dispatchInteraction(standin.modalSubmit({ userId: ALICE, customId: 'launch', fields: { cmd: 'python train.py' } }));
    expect(await submit.callback).toMatchObject({ type: 4, data: { content: 'launching python train.py' } });
    expect(seen.find((s) => s.id === submit.id)?.detail).toBe('python train.py');
  });

  it('a handler that answers after 3.5 s gets 10062 Unknown interaction, and a violation is listed', { timeout: 15_000 }, async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'slow' }));
    const cb = await h.callback;
    expect(cb.status).toBe(404);
    expect(cb.ms).toBeGreaterThan(3000);
    const err = await waitFor(() => errors.get(h.id), { timeoutMs: 5000, what: 'the handler error' });
    expect(err).toBeInstanceOf(DiscordAPIError);
    expect(err).toMatchObject({ code: 10062, status: 404, message: 'Unknown interaction' });
    expect(standin.violations.splice(0)).toEqual([expect.stringMatching(/\/gpu slow\) was not acknowledged within 3000 ms/)]);
  });

  it('a second callback gets 40060 Interaction has already been acknowledged', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'twice' }));
    await h.callback;
    const err = await waitFor(() => errors.get(h.id), { timeoutMs: 5000, what: 'the handler error' });
    expect(err).toMatchObject({ code: 40060, status: 400 });
    expect(standin.callbacks.filter((c) => c.interactionId === h.id).map((c) => c.status)).toEqual([204, 400]);
    expect(standin.original(h.token)?.content).toBe('first');
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('acknowledged twice')]);
  });

  it('message limits: content over 2000 characters is rejected with 50035', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'big' }));
    expect(await h.callback).toMatchObject({ status: 400, error: { code: 50035 } });
    expect(await waitFor(() => errors.get(h.id), { timeoutMs: 5000 })).toMatchObject({ code: 50035, rawError: { errors: { data: { content: {} } } } });
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('data.content: Must be 2000 or fewer in length.')]);
    // The interaction was never acknowledged, so the 3 s rule fires as well.
    await waitFor(() => standin.violations.length > 0, { timeoutMs: 5000 });
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('not acknowledged within 3000 ms')]);
  });

  it('followUp after deferReply replaces the loading message (Discord’s compatibility rule), the next one is new', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: BOB, subcommand: 'followup' }));
    expect(await h.callback).toMatchObject({ type: 5, data: { flags: 0 } });
    await waitFor(() => standin.followUps(h.token).length === 1, { timeoutMs: 5000, what: 'a follow-up' });
    expect(notes.get(h.id)).toBe(true); // fetchReply() saw the loading message
    expect(standin.original(h.token)).toMatchObject({ content: 'done (first follow-up)', flags: 0 }); // the ephemeral flag is ignored
    expect(standin.followUps(h.token)[0]).toMatchObject({ content: 'second follow-up', flags: MessageFlags.Ephemeral });
  });

  it('DMs: users.send → POST /users/@me/channels + POST /channels/:id/messages; closed DMs → 50007', async () => {
    const sent = await client.users.send(ALICE, 'your job finished');
    const open = await standin.waitForRequest('POST', /^\/users\/@me\/channels$/, (b) => b.recipient_id === ALICE);
    expect(open.authorization).toBe(`Bot ${standin.token}`);
    const dm = standin.dmChannelId(ALICE)!;
    const post = await standin.waitForRequest('POST', new RegExp(`^/channels/${dm}/messages$`));
    expect(post.body).toMatchObject({ content: 'your job finished' });
    expect(sent.channelId).toBe(dm);
    expect(standin.dmsTo(ALICE).map((m) => m.content)).toEqual(['your job finished']);

    const bob = await client.users.fetch(BOB, { force: true });
    expect(standin.requestsTo('GET', new RegExp(`^/users/${BOB}$`))).toHaveLength(1);
    await bob.send({ embeds: [new EmbedBuilder().setTitle('Reservation ends soon')] });
    expect(standin.dmsTo(BOB)[0]?.embeds[0]).toMatchObject({ title: 'Reservation ends soon' });

    await expect(client.users.send(CAROL, 'x')).rejects.toMatchObject({ code: 50007, status: 403 });
    await expect(client.users.fetch('999999999999999999')).rejects.toMatchObject({ code: 10013 });
  });

  it('a multipart body (files) is parsed: payload_json plus the file parts', async () => {
    const sent = await client.users.send(ALICE, { content: 'logs attached', files: [{ attachment: Buffer.from('line 1\nline 2\n'), name: 'logs.txt' }] });
    const post = standin.requestsTo('POST', /^\/channels\/\d+\/messages$/).at(-1)!;
    expect(post.body).toMatchObject({ content: 'logs attached', attachments: [{ id: '0' }] }); // discord.js names the file in the part only
    expect(post.files).toEqual([expect.objectContaining({ field: 'files[0]', name: 'logs.txt', size: 14 })]);
    expect(sent.attachments.first()?.name).toBe('logs.txt');
  });

  it('access: an interaction from another server, from a DM, and with given member roles', async () => {
    const foreign = standin.slashCommand({ userId: ALICE, subcommand: 'whoami', guildId: OTHER_GUILD });
    expect(foreign).toMatchObject({ guild_id: OTHER_GUILD, guild: { id: OTHER_GUILD }, channel: { guild_id: OTHER_GUILD }, member: { roles: [] }, authorizing_integration_owners: { '0': OTHER_GUILD } });
    expect(foreign.channel_id).not.toBe(standin.channelId);
    expect(foreign.data.guild_id).toBeUndefined(); // the /gpu registered in our guild is not that server's command
    const fromElsewhere = standin.dispatchInteraction(foreign);
    expect(await fromElsewhere.callback).toMatchObject({ type: 4, status: 204, data: { content: `whoami ${OTHER_GUILD} not cached roles= @everyone` } });
    expect(standin.original(fromElsewhere.token)?.channel_id).toBe(foreign.channel_id);

    const dm = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'whoami', dm: true }));
    expect(await dm.callback).toMatchObject({ data: { content: 'whoami dm not cached roles= @everyone' } });

    // Roles: the user's configured ones by default, or exactly those given.
    const bob = standin.dispatchInteraction(standin.slashCommand({ userId: BOB, subcommand: 'whoami' }));
    expect(await bob.callback).toMatchObject({ data: { content: `whoami ${standin.guildId} cached roles=${GPU_ROLE} @everyone` } });
    const alice = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'whoami', roles: [GPU_ROLE] }));
    expect(await alice.callback).toMatchObject({ data: { content: `whoami ${standin.guildId} cached roles=${GPU_ROLE} @everyone` } });
    const bare = standin.dispatchInteraction(standin.slashCommand({ userId: BOB, subcommand: 'whoami', roles: [] }));
    expect(await bare.callback).toMatchObject({ data: { content: `whoami ${standin.guildId} cached roles= @everyone` } });

    // A button click from another server comes from that server's channel too.
    const click = standin.button({ userId: BOB, customId: 'other', guildId: OTHER_GUILD });
    expect(click).toMatchObject({ guild_id: OTHER_GUILD, channel_id: foreign.channel_id, message: { channel_id: foreign.channel_id }, member: { roles: [] } });
    // …as does a click on a message there, unless the test says otherwise.
    const again = standin.button({ userId: BOB, customId: 'other', messageId: click.message.id });
    expect(again).toMatchObject({ guild_id: OTHER_GUILD, channel_id: foreign.channel_id });
  });

  it('records allowed_mentions and flags of every message the bot sends', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'whoami' }));
    await h.callback;
    const reply = await standin.waitForSent((s) => s.interactionId === h.id);
    expect(reply).toMatchObject({ kind: 'reply', status: 204, messageId: standin.original(h.token).id, channelId: standin.channelId, flags: MessageFlags.Ephemeral | MessageFlags.SuppressEmbeds, allowedMentions: { parse: [] } });
    expect(reply.content).toContain('@everyone');

    // Deferred, then follow-ups: each body is recorded with its own flags; none set allowed_mentions.
    const f = standin.dispatchInteraction(standin.slashCommand({ userId: BOB, subcommand: 'followup' }));
    await standin.waitForSent((s) => s.interactionId === f.id && s.kind === 'follow-up' && s.content === 'second follow-up');
    expect(standin.sent.filter((s) => s.interactionId === f.id).map((s) => [s.kind, s.flags, s.allowedMentions])).toEqual([
      ['defer', 0, undefined],
      ['follow-up', MessageFlags.Ephemeral, undefined],
      ['follow-up', MessageFlags.Ephemeral, undefined],
    ]);

    // Channel (DM) messages and their edits.
    const msg = await client.users.send(ALICE, { content: 'ping @here', allowedMentions: { parse: ['users'] }, flags: MessageFlags.SuppressNotifications });
    await msg.edit({ content: 'ping edited', allowedMentions: { parse: [] } });
    expect(standin.sent.slice(-2)).toMatchObject([
      { kind: 'message', status: 200, channelId: standin.dmChannelId(ALICE), messageId: msg.id, flags: MessageFlags.SuppressNotifications, allowedMentions: { parse: ['users'] } },
      { kind: 'message-edit', status: 200, messageId: msg.id, content: 'ping edited', allowedMentions: { parse: [] } },
    ]);
  });

  it('mentions: who a stored message pings follows allowed_mentions; a contradictory allowed_mentions is refused', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'whoami' }));
    await h.callback;
    expect(standin.original(h.token)).toMatchObject({ mention_everyone: false, mentions: [], mention_roles: [] }); // "@everyone" with parse: []

    const channel = client.channels.cache.get(standin.channelId) as TextChannel;
    const loud = await channel.send(`@everyone <@${ALICE}> <@&${GPU_ROLE}>`);
    expect(standin.messages.get(loud.id)).toMatchObject({ mention_everyone: true, mentions: [{ id: ALICE }], mention_roles: [GPU_ROLE] });
    const quiet = await channel.send({ content: `@here <@${ALICE}> <@${BOB}>`, allowedMentions: { users: [BOB] } });
    expect(standin.messages.get(quiet.id)).toMatchObject({ mention_everyone: false, mentions: [{ id: BOB }], mention_roles: [] });
    await loud.edit({ content: `@everyone <@${ALICE}>`, allowedMentions: { parse: [] } });
    expect(standin.messages.get(loud.id)).toMatchObject({ mention_everyone: false, mentions: [] });

    await expect(channel.send({ content: 'x', allowedMentions: { parse: ['users'], users: [ALICE] } })).rejects.toMatchObject({ code: 50035, status: 400 });
    expect(standin.violations.splice(0)).toEqual([expect.stringContaining('allowed_mentions.users: parse:["users"] and users: [ids...] are mutually exclusive.')]);
  });

  it('attachments: files of an editReply are stored with their bytes and served at their URL', async () => {
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'chart' }));
    const original = await standin.waitForOriginal(h.token, (m) => m.attachments.length > 0);
    const stored = standin.attachments.find((a) => a.messageId === original.id)!;
    expect(stored).toMatchObject({ field: 'files[0]', filename: 'chart.png', description: 'GPU hours by user', channelId: standin.channelId, contentType: 'image/png', size: CHART.length });
    expect(stored.data).toEqual(CHART);
    expect(original.attachments[0]).toMatchObject({ id: stored.id, filename: 'chart.png', url: stored.url, description: 'GPU hours by user' });
    const edit = standin.sent.find((s) => s.interactionId === h.id && s.kind === 'edit')!;
    expect(edit).toMatchObject({ status: 200, messageId: original.id, files: [{ field: 'files[0]', name: 'chart.png' }], allowedMentions: { parse: [] } });
    const served = await fetch(stored.url);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer())).toEqual(stored.data);
  });

  it('rate limits: a 429 makes discord.js wait and retry', async () => {
    standin.failNext('POST', /^\/channels\/\d+\/messages$/, 429, undefined, { retryAfter: 0.3 });
    const t0 = Date.now();
    await client.users.send(ALICE, 'after a rate limit');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(standin.requestsTo('POST', /^\/channels\/\d+\/messages$/).slice(-2).map((r) => r.status)).toEqual([429, 200]);
  });

  it('op 7 RECONNECT: the client resumes on resume_gateway_url (no new IDENTIFY) and still gets interactions', { timeout: 20_000 }, async () => {
    await standin.sendReconnect();
    expect(standin.resumes()).toBe(1);
    expect(standin.identifies()).toBe(1);
    expect(standin.connections()).toBe(2);
    await waitFor(() => shardResumes === 1, { timeoutMs: 5000, what: 'shardResume' });
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: BOB, subcommand: 'help' }));
    expect(await h.callback).toMatchObject({ type: 4, data: { content: 'help for bob' } });
  });

  it('a dropped connection (4000) is resumed too; events sent meanwhile are replayed', { timeout: 20_000 }, async () => {
    const back = standin.dropConnection(4000);
    // Dispatched while the client is away: replayed after RESUME.
    await sleep(50);
    const h = standin.dispatchInteraction(standin.slashCommand({ userId: ALICE, subcommand: 'help' }));
    expect(await back).toBe('resumed');
    expect(await h.callback).toMatchObject({ type: 4 });
    expect(standin.resumes()).toBe(2);
    expect(standin.identifies()).toBe(1);
  });

  it('client.destroy() closes the gateway socket', async () => {
    await client.destroy();
    await waitFor(() => standin.openSockets() === 0, { timeoutMs: 5000, what: 'the socket to close' });
    expect(standin.connections()).toBe(3);
  });
});
