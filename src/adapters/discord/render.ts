import { ActionRowBuilder, ButtonBuilder, ButtonStyle, EmbedBuilder, type APIEmbedField } from 'discord.js';
import type { Action, Block, Reply, Tone } from '../../core/reply.js';

const colour: Record<Tone, number> = { info: 0x5865f2, success: 0x57f287, warning: 0xfee75c, error: 0xed4245 };
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A button runs its command; one that asks first carries the "!" prefix until confirmed. */
export const BUTTON_PREFIX = 'gpubot:';
export const CONFIRM_PREFIX = 'gpubot!:';

/** Discord markdown: keep what people typed from turning into formatting or mentions. */
const escape = (s: string): string => s.replace(/([\\*_~`|>])/g, '\\$1').replace(/@/g, '@\u200b');

function rows(columns: string[], rows: string[][]): string {
  return rows.map(([first, ...rest]) => `\`${first ?? ''}\` ${rest.filter((c) => c !== '').map(escape).join(' · ')}`).join('\n');
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
        description.push(`\`\`\`\n${b.text.replace(/```/g, '``\u200b`')}\n\`\`\``);
        break;
      case 'table':
        if (b.rows.length) description.push(rows(b.columns, b.rows));
        break;
      case 'fields':
        for (const f of b.fields) fields.push({ name: clip(f.label, 256), value: clip(escape(f.value) || '-', 1024), inline: true });
        break;
      case 'section': {
        // One field per host: its heading and its GPU lines.
        const inner = describe(b.blocks);
        fields.push({ name: clip(`${b.tone === 'error' ? '✘ ' : b.tone === 'warning' ? '! ' : ''}${b.heading}`, 256), value: clip([...inner.description, ...inner.fields.map((f) => `${f.name}: ${f.value}`)].join('\n') || '-', 1024) });
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
  const embed = new EmbedBuilder().setColor(colour[reply.tone]).setTitle(clip(reply.title, 256));
  if (description.length) embed.setDescription(clip(description.join('\n'), 4000));
  if (fields.length) embed.addFields(fields.slice(0, 25));
  // A custom id holds at most 100 characters: a longer command is left out, never cut short
  // (a cut command would run something else). The reply's text says what to type instead.
  const buttons = actions.filter((a) => `${a.confirm ? CONFIRM_PREFIX : BUTTON_PREFIX}${a.command}`.length <= 100).slice(0, 25).map(actionButton);
  const components = Array.from({ length: Math.ceil(buttons.length / 5) }, (_, i) => new ActionRowBuilder<ButtonBuilder>().addComponents(buttons.slice(i * 5, i * 5 + 5)));
  return { embeds: [embed], components };
}
