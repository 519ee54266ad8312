import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { CommandContext } from '../core/engine.js';
import { reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { errorMessage } from '../util/errors.js';
import type { OpsDeps } from './deps.js';
import { historyState } from './dashboard.js';

const HOUR_MS = 3_600_000;
/** How far back "status --chart" looks. */
const STATUS_CHART_HOURS = 6;
const W = 900;
const H = 380;
const PAD = { left: 60, right: 170, top: 46, bottom: 46 };
const PALETTE = ['#5b8def', '#2ea44f', '#e36209', '#8250df', '#bf3989', '#1b7c83', '#9a6700', '#cf222e'];

/** Text from hosts and people goes into the SVG as character data only. */
const xml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The font the charts are drawn with, shipped with gpubot (static/fonts): the same picture on every machine. */
const FONT = ['../static/fonts/DejaVuSans.ttf', '../../static/fonts/DejaVuSans.ttf'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((p) => existsSync(p));

/**
 * An SVG drawn here, turned into a PNG without a browser (resvg). Loaded on first use: a machine
 * without resvg's native binary still runs the bot, and only the charts are refused.
 */
export async function svgToPng(svg: string): Promise<Buffer> {
  const { Resvg } = await import('@resvg/resvg-js');
  const font = { fontFiles: FONT ? [FONT] : [], loadSystemFonts: !FONT, defaultFontFamily: 'DejaVu Sans' };
  return new Resvg(svg, { font, background: '#ffffff' }).render().asPng();
}

/** The chart as a PNG, or undefined (logged) when this machine cannot draw one: the reply keeps its text. */
async function drawn(deps: OpsDeps, svg: string): Promise<Buffer | undefined> {
  try {
    return await svgToPng(svg);
  } catch (err) {
    deps.log.warn({ err: errorMessage(err) }, 'could not draw a chart (is @resvg/resvg-js installed for this platform?)');
    return undefined;
  }
}

function frame(title: string, yLabel: string, yMax: number, body: string[], legend: { label: string; colour: string }[], xTicks: { x: number; label: string }[]): string {
  const plotH = H - PAD.top - PAD.bottom;
  const lines: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${PAD.left}" y="28" font-size="17" font-weight="bold" fill="#1d2330">${xml(title)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + plotH - (plotH * i) / 4;
    lines.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" stroke="#e3e6eb"/>`);
    lines.push(`<text x="${PAD.left - 8}" y="${y + 4}" font-size="11" text-anchor="end" fill="#6b7280">${Math.round(((yMax * i) / 4) * 10) / 10}</text>`);
  }
  lines.push(`<text x="16" y="${PAD.top + plotH / 2}" font-size="12" fill="#6b7280" transform="rotate(-90 16 ${PAD.top + plotH / 2})" text-anchor="middle">${xml(yLabel)}</text>`);
  for (const t of xTicks) lines.push(`<text x="${t.x}" y="${H - PAD.bottom + 18}" font-size="11" text-anchor="middle" fill="#6b7280">${xml(t.label)}</text>`);
  lines.push(...body);
  legend.forEach((l, i) => {
    const y = PAD.top + 10 + i * 20;
    lines.push(`<rect x="${W - PAD.right + 16}" y="${y - 9}" width="12" height="12" fill="${l.colour}"/>`);
    lines.push(`<text x="${W - PAD.right + 34}" y="${y + 1}" font-size="12" fill="#1d2330">${xml(clip(l.label, 18))}</text>`);
  });
  lines.push('</svg>');
  return lines.join('\n');
}

/** Mean utilization per host per minute over the last hours, from the minute means (GpuSample). */
export async function statusChart(deps: OpsDeps, req: Extract<Request, { command: 'status' }>): Promise<Reply> {
  const now = deps.now().getTime();
  const from = now - STATUS_CHART_HOURS * HOUR_MS;
  const hosts = req.host ? [req.host] : deps.pool.hostNames();
  const samples = await deps.db.gpuSample.findMany({ where: { at: { gte: new Date(from) }, hostName: { in: hosts }, utilization: { not: null } }, orderBy: { at: 'asc' } });
  const perHost = new Map<string, Map<number, number[]>>();
  for (const s of samples) {
    const minutes = perHost.get(s.hostName) ?? perHost.set(s.hostName, new Map()).get(s.hostName)!;
    const t = s.at.getTime();
    (minutes.get(t) ?? minutes.set(t, []).get(t)!).push(s.utilization!);
  }
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const x = (t: number) => PAD.left + ((t - from) / (now - from)) * plotW;
  const y = (u: number) => PAD.top + plotH - (Math.max(0, Math.min(100, u)) / 100) * plotH;
  const body: string[] = [];
  const legend: { label: string; colour: string }[] = [];
  const rows: string[][] = [];
  hosts.forEach((host, i) => {
    const colour = PALETTE[i % PALETTE.length]!;
    const points = [...(perHost.get(host) ?? new Map<number, number[]>()).entries()].map(([t, us]) => [t, us.reduce((a, b) => a + b, 0) / us.length] as const);
    legend.push({ label: host, colour });
    if (points.length)
      body.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map(([t, u]) => `${x(t).toFixed(1)},${y(u).toFixed(1)}`).join(' ')}"/>`);
    const mean = points.length ? points.reduce((n, [, u]) => n + u, 0) / points.length : null;
    rows.push([host, mean === null ? 'not measured' : `${Math.round(mean)} %`, String(points.length)]);
  });
  const xTicks = Array.from({ length: STATUS_CHART_HOURS + 1 }, (_, i) => {
    const t = from + i * HOUR_MS;
    return { x: x(t), label: `${new Date(t).toISOString().slice(11, 16)}` };
  });
  const title = `GPU utilization per host, last ${STATUS_CHART_HOURS} h (UTC)`;
  const png = await drawn(deps, frame(title, 'mean utilization %', 100, body, legend, xTicks));
  const alt = `Line chart: ${rows.map(([h, m]) => `${h} ${m}`).join(', ')} mean utilization over the last ${STATUS_CHART_HOURS} hours.`;
  return {
    ...reply('info', title, [{ type: 'table', columns: ['Host', 'Mean utilization', 'Minutes measured'], rows }], 'channel'),
    ...(png ? { image: { png, filename: 'gpubot-utilization.png', alt } } : {}),
  };
}

/** GPU-hours per user over the last 7 days, a bar each (the same numbers as the dashboard's chart). */
export async function usageChart(deps: OpsDeps, _req: Extract<Request, { command: 'usage' }>, { actor }: CommandContext): Promise<Reply> {
  const history = await historyState(deps, actor);
  const totals = history.gpuHours.map((u) => ({ user: u.user, hours: u.hours.reduce((a, b) => a + b, 0) })).sort((a, b) => b.hours - a.hours);
  const top = totals.slice(0, 16);
  const yMax = Math.max(1, Math.ceil(Math.max(0, ...top.map((t) => t.hours))));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, top.length);
  const body = top.map((t, i) => {
    const h = (t.hours / yMax) * plotH;
    const colour = t.user === actor.handle ? '#e36209' : '#5b8def';
    return `<rect x="${(PAD.left + i * slot + slot * 0.15).toFixed(1)}" y="${(PAD.top + plotH - h).toFixed(1)}" width="${(slot * 0.7).toFixed(1)}" height="${h.toFixed(1)}" fill="${colour}"/>`;
  });
  const xTicks = top.map((t, i) => ({ x: PAD.left + i * slot + slot / 2, label: clip(t.user, Math.max(4, Math.floor(slot / 7))) }));
  const title = `GPU-hours per user, last 7 days (${history.days[0]} to ${history.days.at(-1)})`;
  const png = await drawn(
    deps,
    frame(
      title,
      'GPU-hours',
      yMax,
      body,
      [
        { label: 'you', colour: '#e36209' },
        { label: 'others', colour: '#5b8def' },
      ],
      xTicks,
    ),
  );
  const rows = totals.map((t) => [t.user, (Math.round(t.hours * 10) / 10).toString()]);
  const alt = totals.length
    ? `Bar chart of GPU-hours per user over the last 7 days: ${rows.map(([u, h]) => `${u} ${h}`).join(', ')}.`
    : 'Bar chart: nobody held GPUs in the last 7 days.';
  return {
    ...reply(
      'info',
      title,
      totals.length ? [{ type: 'table', columns: ['User', 'GPU-hours'], rows }] : [{ type: 'text', text: 'Nobody held GPUs in the last 7 days.' }],
      'channel',
    ),
    ...(png ? { image: { png, filename: 'gpubot-gpu-hours.png', alt } } : {}),
  };
}
