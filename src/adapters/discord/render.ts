import { ActionRowBuilder, AttachmentBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder, MessageFlags, type APIEmbedField } from 'discord.js';
import type { Action, Block, Reply, Tone } from '../../core/reply.js';

const colour: Record<Tone, number> = { info: 0x5865f2, success: 0x57f287, warning: 0xfee75c, error: 0xed4245 };
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A button runs its command; one that asks first carries the "!" prefix until confirmed. */
export const BUTTON_PREFIX = 'gpubot:';
export const CONFIRM_PREFIX = 'gpubot!:';

/**
 * Discord markdown: text from containers, hosts and people (logs, process and container names,
 * display names) stays text: no formatting, masked links, headings, lists or mentions.
 */
export const escapeMarkdown = (s: string): string =>
  s
    .replace(/([\\*_~`|>[\]<])/g, '\\$1')
    .replace(/^(\s*)([#-]|\d+\.)/gm, '$1\\$2')
    .replace(/@/g, '@\u200b');
const escape = escapeMarkdown;
/** A code block whose text cannot close it early. */
export const codeBlock = (text: string): string => `\`\`\`\n${text.replace(/```/g, '``\u200b`')}\n\`\`\``;

/** No message of the bot's ever pings anyone, whatever its text says (@everyone, <@id>, roles). */
export const NO_MENTIONS = { parse: [] as [] };

function rows(columns: string[], rows: string[][]): string {
  return rows
    .map(
      ([first, ...rest]) =>
        `\`${(first ?? '').replace(/`/g, "'")}\` ${rest
          .filter((c) => c !== '')
          .map(escape)
          .join(' · ')}`,
    )
    .join('\n');
}

function describe(blocks: Block[]): { description: string[]; fields: APIEmbedField[]; actions: Action[] } {
  const description: string[] = [];
  const fields: APIEmbedField[] = [];
  const actions: Action[] = [];
  for (const b of blocks) {
    switch (b.type) {
      case 'text':
        description.push(escape(b.text));
        break;
      case 'code':
        description.push(codeBlock(b.text));
        break;
      case 'table':
        if (b.rows.length) description.push(rows(b.columns, b.rows));
        break;
      case 'fields':
        for (const f of b.fields) fields.push({ name: clip(escape(f.label), 256), value: clip(escape(f.value) || '-', 1024), inline: true });
        break;
      case 'section': {
        // One field per host: its heading and its GPU lines.
        const inner = describe(b.blocks);
        fields.push({
          name: clip(`${b.tone === 'error' ? '✘ ' : b.tone === 'warning' ? '! ' : ''}${escape(b.heading)}`, 256),
          value: clip([...inner.description, ...inner.fields.map((f) => `${f.name}: ${f.value}`)].join('\n') || '-', 1024),
        });
        actions.push(...inner.actions);
        break;
      }
      case 'actions':
        actions.push(...b.actions);
        break;
    }
  }
  return { description, fields, actions };
}

export interface DiscordMessage {
  content?: string;
  embeds: EmbedBuilder[];
  components: ActionRowBuilder<ButtonBuilder>[];
  allowedMentions: typeof NO_MENTIONS;
  /** A chart, as an attachment the embed shows. */
  files?: AttachmentBuilder[];
}

/**
 * A plain-content message (progress lines, questions): escaped, no mentions, and SUPPRESS_EMBEDS
 * so no URL in it unfurls. (Replies carry their text in embeds, which Discord never unfurls;
 * the flag would hide those embeds themselves, so it is not set there.)
 */
export function plainMessage(text: string) {
  return { content: clip(escape(text), 2000), embeds: [], allowedMentions: NO_MENTIONS, flags: MessageFlags.SuppressEmbeds as const };
}

export function actionButton(a: Action): ButtonBuilder {
  const style = a.style === 'danger' ? ButtonStyle.Danger : a.style === 'primary' ? ButtonStyle.Primary : ButtonStyle.Secondary;
  return new ButtonBuilder()
    .setCustomId(clip(`${a.confirm ? CONFIRM_PREFIX : BUTTON_PREFIX}${a.command}`, 100))
    .setLabel(a.label)
    .setStyle(style);
}

/** A Reply as one embed (title, description, fields; a field per host for status) plus buttons. */
export function toDiscordMessage(reply: Reply): DiscordMessage {
  const { description, fields, actions } = describe(reply.blocks);
  const embed = new EmbedBuilder().setColor(colour[reply.tone]).setTitle(clip(escape(reply.title), 256));
  if (description.length) embed.setDescription(clip(description.join('\n'), 4000));
  if (fields.length) embed.addFields(fields.slice(0, 25));
  // A custom id holds at most 100 characters: a longer command is left out, never cut short
  // (a cut command would run something else). The reply's text says what to type instead.
  const buttons = actions
    .filter((a) => `${a.confirm ? CONFIRM_PREFIX : BUTTON_PREFIX}${a.command}`.length <= 100)
    .slice(0, 25)
    .map(actionButton);
  const components = Array.from({ length: Math.ceil(buttons.length / 5) }, (_, i) => new ActionRowBuilder<ButtonBuilder>().addComponents(buttons.slice(i * 5, i * 5 + 5)));
  if (!reply.image) return { embeds: [embed], components, allowedMentions: NO_MENTIONS };
  const name = reply.image.filename.replace(/[^A-Za-z0-9._-]/g, '_');
  embed.setImage(`attachment://${name}`);
  const file = new AttachmentBuilder(Buffer.from(reply.image.png), { name, description: clip(reply.image.alt, 1024) });
  return { embeds: [embed], components, allowedMentions: NO_MENTIONS, files: [file] };
}
