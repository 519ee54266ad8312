import type { Action, Block, Reply, Tone } from '../../core/reply.js';

/** Block Kit JSON; typed loosely on purpose: Slack validates it, and tests check it. */
export type SlackBlock = Record<string, unknown>;

const emoji: Record<Tone, string> = { info: '', success: ':white_check_mark: ', warning: ':warning: ', error: ':x: ' };
const MAX_TEXT = 2900; // Slack's limit for a section is 3000 characters
const MAX_BLOCKS = 50;

/**
 * Slack's mrkdwn: &, <, > escaped, so no text from a container, host or person (logs, process and
 * container names, display names) becomes a mention (<!channel>, <@U…>) or a link; and no ``` can
 * open or close a code block around what follows.
 */
export const escapeText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/```/g, '``\u200b`');
const clip = (s: string): string => (s.length > MAX_TEXT ? `${s.slice(0, MAX_TEXT)}…` : s);
const section = (text: string): SlackBlock => ({ type: 'section', text: { type: 'mrkdwn', text: clip(text) } });

/** A table as one line per row: Slack has no tables, and a code block wraps badly on phones. */
function tableLines(columns: string[], rows: string[][]): string {
  return rows
    .map((row) => {
      const [first, ...rest] = row;
      const parts = rest.map((cell, i) => ({ label: columns[i + 1] ?? '', cell })).filter((p) => p.cell !== '');
      return `\`${escapeText(first ?? '')}\` ${parts.map((p) => escapeText(p.cell)).join(' · ')}`;
    })
    .join('\n');
}

function button(a: Action, index: number): SlackBlock {
  return {
    type: 'button',
    action_id: `gpubot_${index}_${a.id}`,
    text: { type: 'plain_text', text: a.label },
    value: a.command,
    ...(a.style ? { style: a.style } : {}),
    ...(a.confirm
      ? {
          confirm: {
            title: { type: 'plain_text', text: `${a.label}?` },
            text: { type: 'mrkdwn', text: escapeText(a.confirm) },
            confirm: { type: 'plain_text', text: a.label },
            deny: { type: 'plain_text', text: 'Cancel' },
            ...(a.style === 'danger' ? { style: 'danger' } : {}),
          },
        }
      : {}),
  };
}

function blocks(b: Block): SlackBlock[] {
  switch (b.type) {
    case 'text':
      return [section(escapeText(b.text))];
    case 'code':
      return [section(`\`\`\`${escapeText(b.text)}\`\`\``)];
    case 'fields':
      // Slack allows 10 fields per section.
      return Array.from({ length: Math.ceil(b.fields.length / 10) }, (_, i) => ({
        type: 'section',
        fields: b.fields.slice(i * 10, i * 10 + 10).map((f) => ({ type: 'mrkdwn', text: clip(`*${escapeText(f.label)}*\n${escapeText(f.value)}`) })),
      }));
    case 'table':
      return b.rows.length ? [section(tableLines(b.columns, b.rows))] : [];
    case 'section':
      return [section(`${emoji[b.tone ?? 'info']}*${escapeText(b.heading)}*`), ...b.blocks.flatMap(blocks)];
    case 'actions':
      return [{ type: 'actions', elements: b.actions.slice(0, 25).map(button) }];
  }
}

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

/** A Reply as a Slack message: a header line, then the blocks; `text` is the notification fallback. */
export function toSlackMessage(reply: Reply): SlackMessage {
  const all = [section(`${emoji[reply.tone]}*${escapeText(reply.title)}*`), ...reply.blocks.flatMap(blocks)];
  const out = all.length > MAX_BLOCKS ? [...all.slice(0, MAX_BLOCKS - 1), section('_…more than Slack can show in one message; narrow it down, e.g. `/gpu status HOST`._')] : all;
  // The fallback text is mrkdwn too (notifications, screen readers): escaped like the rest.
  return { text: escapeText(reply.title), blocks: out };
}
