import type { Block, Reply } from '../../core/reply.js';

const mark = { info: '', success: '✔ ', warning: '! ', error: '✘ ' } as const;

/** Display width, counting wide East Asian characters as two columns. */
function width(s: string): number {
  let w = 0;
  for (const ch of s) w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u.test(ch) ? 2 : 1;
  return w;
}

const pad = (s: string, n: number): string => s + ' '.repeat(Math.max(0, n - width(s)));

function table(columns: string[], rows: string[][], indent: string): string[] {
  // Drop columns that are empty in every row (e.g. no unmanaged processes anywhere).
  const keep = columns.map((_, i) => rows.some((r) => (r[i] ?? '') !== ''));
  const cols = columns.filter((_, i) => keep[i]);
  const body = rows.map((r) => r.filter((_, i) => keep[i]));
  const widths = cols.map((c, i) => Math.max(width(c), ...body.map((r) => width(r[i] ?? ''))));
  const line = (cells: string[]) => indent + cells.map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i]!))).join('  ');
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)];
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
