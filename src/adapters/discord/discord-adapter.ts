import { ActionRowBuilder, ButtonBuilder, ButtonStyle, Client, Events, GatewayIntentBits, MessageFlags, Routes, type ButtonInteraction, type ChatInputCommandInteraction, type Interaction } from 'discord.js';
import type { ChatPort } from '../../core/port.js';
import { refuse, type Reply } from '../../core/reply.js';
import { InputError } from '../../core/validate.js';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../util/errors.js';
import type { ChatAdapter } from '../adapter.js';
import { choices } from './autocomplete.js';
import { commandWords, gpuCommand } from './command.js';
import { BUTTON_PREFIX, CONFIRM_PREFIX, toDiscordMessage } from './render.js';
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

  async start(port: ChatPort): Promise<void> {
    const s = this.settings;
    const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: s.apiUrl ? { api: s.apiUrl } : {} });
    this.client = client;
    client.on(Events.InteractionCreate, (interaction) => {
      this.handle(port, interaction).catch((err) => this.log.error({ user: interaction.user.id, err: errorMessage(err) }, 'discord interaction failed'));
    });
    client.on(Events.Error, (err) => this.log.error({ err: errorMessage(err) }, 'discord client error'));
    const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
    await client.login(s.token);
    await ready;
    const route = s.guildId ? Routes.applicationGuildCommands(s.appId, s.guildId) : Routes.applicationCommands(s.appId);
    const jobs = (await port.choices('job')).map((c) => c.value);
    await client.rest.put(route, { body: [gpuCommand({ job: jobs }).toJSON()] });
    port.registerNotifier('discord', async (userId, reply) => {
      await client.users.send(userId, toDiscordMessage(reply));
    });
    this.log.info({ guild: s.guildId ?? 'global' }, 'discord adapter started, /gpu registered');
  }

  private async handle(port: ChatPort, i: Interaction): Promise<void> {
    if (i.isAutocomplete() && i.commandName === 'gpu') return i.respond(await choices(port, i));
    if (i.isChatInputCommand() && i.commandName === 'gpu') return this.command(port, i);
    if (i.isButton()) return this.button(port, i);
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
    const reply = await this.run(port, i, words, async (line) => {
      await i.editReply({ content: `⏳ ${line}`, embeds: [], components: [] });
    });
    await i.editReply({ content: '', ...toDiscordMessage(reply) });
  }

  /** Buttons run their command as whoever clicked; destructive ones ask first. */
  private async button(port: ChatPort, i: ButtonInteraction): Promise<void> {
    if (i.customId === CANCEL_ID) {
      await i.update({ content: 'Cancelled: nothing was changed.', embeds: [], components: [] });
      return;
    }
    if (i.customId.startsWith(CONFIRM_PREFIX)) {
      const command = i.customId.slice(CONFIRM_PREFIX.length);
      const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
        new ButtonBuilder().setCustomId(`${BUTTON_PREFIX}${command}`).setLabel('Yes, do it').setStyle(ButtonStyle.Danger),
        new ButtonBuilder().setCustomId(CANCEL_ID).setLabel('Cancel').setStyle(ButtonStyle.Secondary),
      );
      await i.reply({ content: `Sure? This runs \`${command}\`.`, components: [row], flags: MessageFlags.Ephemeral });
      return;
    }
    if (!i.customId.startsWith(BUTTON_PREFIX)) return;
    await i.deferReply({ flags: MessageFlags.Ephemeral });
    const reply = await this.run(port, i, i.customId.slice(BUTTON_PREFIX.length), async (line) => {
      await i.editReply({ content: `⏳ ${line}` });
    });
    await i.editReply({ content: '', ...toDiscordMessage(reply) });
  }

  private run(port: ChatPort, i: ChatInputCommandInteraction | ButtonInteraction, input: string | string[], progress: (line: string) => Promise<void>): Promise<Reply> {
    return port.handle({ platform: 'discord', id: i.user.id, name: i.user.username }, input, progress);
  }

  async stop(): Promise<void> {
    await this.client?.destroy();
  }
}
