import type { Block, Reply } from '../../core/reply.js';

const mark = { info: '', success: '✔ ', warning: '! ', error: '✘ ' } as const;

/** Display width, counting wide East Asian characters as two columns. */
function width(s: string): number {
  let w = 0;
  for (const ch of s) w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u.test(ch) ? 2 : 1;
  return w;
}

const pad = (s: string, n: number): string => s + ' '.repeat(Math.max(0, n - width(s)));

/** A terminal is assumed this wide: tables wider than that wrap their cells. */
export const COLUMNS = 100;

/**
 * `text` in lines of at most `max` columns, broken at spaces outside brackets when it can be
 * ("[--host HOST]" stays whole), at any space when not; continuation lines start with `hang`.
 */
function wrap(text: string, max: number, hang = ''): string[] {
  const units: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '[' || ch === '(') depth++;
    if ((ch === ']' || ch === ')') && depth > 0) depth--;
    if (ch === ' ' && depth === 0) {
      units.push(current);
      current = '';
    } else current += ch;
  }
  units.push(current);
  // A unit that cannot fit on a line is split at its own spaces.
  const words = units.flatMap((u) => (width(u) > max - width(hang) ? u.split(' ') : [u]));
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    const candidate = line === '' ? w : `${line} ${w}`;
    if (line !== '' && width((lines.length ? hang : '') + candidate) > max) {
      lines.push((lines.length ? hang : '') + line);
      line = w;
    } else line = candidate;
  }
  lines.push((lines.length ? hang : '') + line);
  return lines;
}

function table(columns: string[], rows: string[][], indent: string): string[] {
  // Drop columns that are empty in every row (e.g. no unmanaged processes anywhere).
  const keep = columns.map((_, i) => rows.some((r) => (r[i] ?? '') !== ''));
  const cols = columns.filter((_, i) => keep[i]);
  const body = rows.map((r) => r.filter((_, i) => keep[i]));
  const widths = cols.map((c, i) => Math.max(width(c), ...body.map((r) => width(r[i] ?? ''))));
  const available = COLUMNS - width(indent) - 2 * (cols.length - 1);
  if (cols.length > 1 && widths.reduce((a, b) => a + b, 0) > available) fit(widths, available);
  const line = (cells: string[]) => indent + cells.map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i]!))).join('  ');
  // A row whose cells wrap takes several lines; continuation lines of the first cell are indented.
  const rowLines = (cells: string[]): string[] => {
    const wrapped = cells.map((c, i) => (width(c) <= widths[i]! ? [c] : wrap(c, widths[i]!, i === 0 ? '  ' : '')));
    const height = Math.max(...wrapped.map((w) => w.length));
    return Array.from({ length: height }, (_, n) => line(wrapped.map((w) => w[n] ?? ''))).map((l) => l.trimEnd());
  };
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...body.flatMap(rowLines)];
}

/** Narrows column widths to `available` in place: the last column keeps a readable share. */
function fit(widths: number[], available: number): void {
  const last = widths.length - 1;
  const lastWidth = Math.min(widths[last]!, Math.max(30, Math.floor(available * 0.45)));
  let others = available - lastWidth;
  while (widths.slice(0, last).reduce((a, b) => a + b, 0) > others) {
    const widest = widths.slice(0, last).reduce((best, w, i) => (w > widths[best]! ? i : best), 0);
    if (widths[widest]! <= 8) break;
    widths[widest]!--;
  }
  others = widths.slice(0, last).reduce((a, b) => a + b, 0);
  widths[last] = Math.max(10, available - others);
}

function block(b: Block, indent: string): string[] {
  switch (b.type) {
    case 'text':
      return b.text.split('\n').map((l) => indent + l);
    case 'code':
      return b.text.split('\n').map((l) => `${indent}  ${l}`);
    case 'fields':
      return b.fields.map((f) => `${indent}${f.label}: ${f.value}`);
    case 'table':
      return table(b.columns, b.rows, indent);
    case 'section':
      return [`${indent}${mark[b.tone ?? 'info']}${b.heading}`, ...b.blocks.flatMap((x) => block(x, `${indent}  `))];
    case 'actions':
      return [`${indent}Next: ${b.actions.map((a) => `"${a.command}"`).join(', ')}`];
  }
}

/** Plain terminal text for a Reply. */
export function renderText(reply: Reply): string {
  return [`${mark[reply.tone]}${reply.title}`, ...reply.blocks.flatMap((b) => block(b, '  '))].join('\n');
}
