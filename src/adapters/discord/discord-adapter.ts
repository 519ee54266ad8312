import {
  ActionRowBuilder,
  ButtonBuilder,
  ButtonStyle,
  Client,
  Events,
  GatewayIntentBits,
  InteractionContextType,
  MessageFlags,
  Routes,
  type ButtonInteraction,
  type ChatInputCommandInteraction,
  type Interaction,
} from 'discord.js';
import type { ChatPort } from '../../core/port.js';
import { refuse, type Reply } from '../../core/reply.js';
import { InputError } from '../../core/validate.js';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../util/errors.js';
import type { ChatAdapter } from '../adapter.js';
import { choices } from './autocomplete.js';
import { commandWords, gpuCommand } from './command.js';
import { discordRefusal, guildIdList, type DiscordAccess } from './access.js';
import { BUTTON_PREFIX, CONFIRM_PREFIX, NO_MENTIONS, plainMessage, toDiscordMessage } from './render.js';
import type { DiscordSettings } from './settings.js';

const CANCEL_ID = 'gpubot-cancel';

/** `/gpu` in Discord: native subcommands, autocomplete, embeds with buttons, DMs. */
export class DiscordAdapter implements ChatAdapter {
  readonly name = 'discord';
  private client: Client | undefined;

  constructor(
    private readonly settings: DiscordSettings,
    private readonly log: Logger,
  ) {}

  private access: DiscordAccess = { guildIds: [], allowDMs: false, roles: [] };

  async start(port: ChatPort): Promise<void> {
    const s = this.settings;
    const { discord } = port.accessPolicy();
    const guildIds = guildIdList(s.guildId);
    if (!guildIds.length && !discord.allowAnyServer) {
      // Discord apps are public by default: without a server list anyone's server could add the bot.
      throw new Error(
        'Discord: DISCORD_GUILD_ID is not set, so any server that adds the bot could use /gpu on your hosts. Set DISCORD_GUILD_ID to your server id (several: comma-separated), or set discord.allowAnyServer: true in gpubot.yaml if that is what you want.',
      );
    }
    this.access = { guildIds, allowDMs: discord.allowDMs, roles: discord.roles };
    // allowedMentions here is the default for every message; each message also says it.
    const client = new Client({ intents: [GatewayIntentBits.Guilds], allowedMentions: NO_MENTIONS, rest: s.apiUrl ? { api: s.apiUrl } : {} });
    this.client = client;
    client.on(Events.InteractionCreate, (interaction) => {
      this.handle(port, interaction).catch((err) => this.log.error({ user: interaction.user.id, err: errorMessage(err) }, 'discord interaction failed'));
    });
    client.on(Events.Error, (err) => this.log.error({ err: errorMessage(err) }, 'discord client error'));
    const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
    await client.login(s.token);
    await ready;
    const jobs = (await port.choices('job')).map((c) => c.value);
    if (guildIds.length) {
      for (const g of guildIds) await client.rest.put(Routes.applicationGuildCommands(s.appId, g), { body: [gpuCommand({ job: jobs }).toJSON()] });
      // Server commands never show in DMs: with discord.allowDMs, /gpu is also registered for DMs with the bot only.
      if (discord.allowDMs)
        await client.rest.put(Routes.applicationCommands(s.appId), {
          body: [gpuCommand({ job: jobs }).setDMPermission(undefined).setContexts(InteractionContextType.BotDM).toJSON()],
        });
    } else {
      await client.rest.put(Routes.applicationCommands(s.appId), { body: [gpuCommand({ job: jobs }).setDMPermission(discord.allowDMs).toJSON()] });
    }
    port.registerNotifier('discord', async (userId, reply) => {
      await client.users.send(userId, toDiscordMessage(reply));
    });
    this.log.info({ guilds: guildIds.length ? guildIds : 'global' }, 'discord adapter started, /gpu registered');
  }

  private async handle(port: ChatPort, i: Interaction): Promise<void> {
    if (!(await this.admitted(port, i))) return;
    if (i.isAutocomplete() && i.commandName === 'gpu') return i.respond(await choices(port, i));
    if (i.isChatInputCommand() && i.commandName === 'gpu') return this.command(port, i);
    if (i.isButton()) return this.button(port, i);
  }

  /**
   * Only the configured servers (and roles); DMs only with discord.allowDMs, except buttons on
   * messages the bot sent that person. Anyone else gets an ephemeral refusal, audited, and
   * nothing else happens (not even a gpubot user made for them).
   */
  private async admitted(port: ChatPort, i: Interaction): Promise<boolean> {
    const member = i.member;
    const memberRoles = member ? (Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()]) : null;
    const who = { platform: 'discord' as const, id: i.user.id };
    const dmButtonOfKnownUser = i.guildId === null && i.isButton() && (await port.knows(who));
    const refusal = discordRefusal(this.access, { guildId: i.guildId, memberRoles, dmButtonOfKnownUser });
    if (!refusal) return true;
    const what =
      i.isChatInputCommand() || i.isAutocomplete() ? `/gpu ${i.options.getSubcommand(false) ?? ''}`.trim() : i.isButton() ? `button ${i.customId}` : `interaction type ${i.type}`;
    port.refusedAtTheDoor(who, `${refusal.reason}: ${what}`);
    if (i.isAutocomplete()) await i.respond([]);
    else if (i.isRepliable()) await i.reply({ ...toDiscordMessage(refuse('not-allowed', refusal.title, refusal.detail)), flags: MessageFlags.Ephemeral });
    return false;
  }

  private async command(port: ChatPort, i: ChatInputCommandInteraction): Promise<void> {
    const sub = i.options.getSubcommand();
    const team = sub === 'status' || (sub === 'ls' && i.options.getBoolean('all') === true);
    // Within Discord's 3 s, before any slow work.
    await i.deferReply(team ? {} : { flags: MessageFlags.Ephemeral });
    let words: string[];
    try {
      words = commandWords(i.options);
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      await i.editReply(toDiscordMessage(refuse(err.code, 'That command was not understood', err.message)));
      return;
    }
    let progressShown = false;
    const reply = await this.run(port, i, words, async (line) => {
      await i.editReply({ ...plainMessage(`⏳ ${line}`), components: [] });
      progressShown = true;
    });
    // A progress line set SUPPRESS_EMBEDS; the answer is an embed, so that flag comes off again.
    await i.editReply({ content: '', ...toDiscordMessage(reply), ...(progressShown ? { flags: [] } : {}) });
  }

  /** Buttons run their command as whoever clicked; destructive ones ask first. */
  private async button(port: ChatPort, i: ButtonInteraction): Promise<void> {
    if (i.customId === CANCEL_ID) {
      await i.update({ ...plainMessage('Cancelled: nothing was changed.'), components: [] });
      return;
    }
    if (i.customId.startsWith(CONFIRM_PREFIX)) {
      const command = i.customId.slice(CONFIRM_PREFIX.length);
      const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
        new ButtonBuilder().setCustomId(`${BUTTON_PREFIX}${command}`).setLabel('Yes, do it').setStyle(ButtonStyle.Danger),
        new ButtonBuilder().setCustomId(CANCEL_ID).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
      );
      await i.reply({
        content: `Sure? This runs \`${command.replace(/`/g, "'")}\`.`,
        components: [row],
        allowedMentions: NO_MENTIONS,
        flags: MessageFlags.Ephemeral | MessageFlags.SuppressEmbeds,
      });
      return;
    }
    if (!i.customId.startsWith(BUTTON_PREFIX)) return;
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    let progressShown = false;
    const reply = await this.run(port, i, i.customId.slice(BUTTON_PREFIX.length), async (line) => {
      await i.editReply(plainMessage(`⏳ ${line}`));
      progressShown = true;
    });
    await i.editReply({ content: '', ...toDiscordMessage(reply), ...(progressShown ? { flags: [] } : {}) });
  }

  private run(port: ChatPort, i: ChatInputCommandInteraction | ButtonInteraction, input: string | string[], progress: (line: string) => Promise<void>): Promise<Reply> {
    return port.handle({ platform: 'discord', id: i.user.id, name: i.user.username }, input, progress);
  }

  async stop(): Promise<void> {
    await this.client?.destroy();
  }
}
