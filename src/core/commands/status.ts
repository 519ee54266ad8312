import type { GpuView, HostSnapshot } from '../cluster.js';
import { memory, percent } from '../format.js';
import { reply, type Block, type Reply } from '../reply.js';

const holderText = (g: GpuView): string => {
  const held = g.holders.map((h) => (h.otherGpubot ? `${h.owner} (${h.container}, other gpubot)` : h.container ? `${h.owner} (${h.container})` : `${h.owner} (reserved)`));
  return held.length ? held.join(', ') : 'free';
};

const unmanagedText = (g: GpuView): string =>
  g.unmanaged.length ? g.unmanaged.map((p) => `pid ${p.pid} ${p.name}${p.foreignContainer ? ` in container ${p.foreignContainer}` : ''} (not gpubot)`).join('; ') : '';

export const isFree = (g: GpuView): boolean => g.holders.length === 0 && g.unmanaged.length === 0;

const staleText = (h: HostSnapshot): string =>
  h.state === 'stale' && h.sampleAgeMs !== undefined ? `, stale ${Math.round(h.sampleAgeMs / 1000)} s` : h.state === 'stale' ? ', stale' : '';

function hostSection(h: HostSnapshot): Block {
  if (h.state === 'down') return { type: 'section', heading: `${h.name}: down`, tone: 'error', blocks: [{ type: 'text', text: h.error ?? 'not reachable' }] };
  if (h.state === 'connecting')
    return { type: 'section', heading: `${h.name}: connecting`, tone: 'warning', blocks: [{ type: 'text', text: h.error ?? 'connecting to the host' }] };
  if (!h.gpus)
    return {
      type: 'section',
      heading: `${h.name}: GPUs unknown${staleText(h)}`,
      tone: 'warning',
      blocks: [{ type: 'text', text: h.gpuError ?? h.error ?? 'nvidia-smi gave no answer' }],
    };
  const free = h.gpus.filter(isFree).length;
  const blocks: Block[] = [
    {
      type: 'table',
      columns: ['GPU', 'Model', 'Memory', 'Util', 'Held by', 'Not gpubot'],
      rows: h.gpus.map((g) => [String(g.index), g.model, memory(g.memoryUsedMiB, g.memoryTotalMiB), percent(g.utilization), holderText(g), unmanagedText(g)]),
    },
  ];
  if (h.gpuError) blocks.push({ type: 'text', text: `Processes unknown: ${h.gpuError}` });
  if (h.dockerError) blocks.push({ type: 'text', text: `Holders unknown: ${h.dockerError}` });
  const drained = h.drained ? ', drained' : '';
  return {
    type: 'section',
    heading: `${h.name}: ${free}/${h.gpus.length} GPUs free${drained}${staleText(h)}`,
    tone: h.gpuError || h.dockerError || h.state === 'stale' ? 'warning' : 'info',
    blocks,
  };
}

const rendered = new WeakMap<readonly HostSnapshot[], Reply>();

/** The status reply; callers handed the same snapshots (a burst of `status`, see cluster-state.ts) share one rendering. Read-only. */
export function statusReply(hosts: HostSnapshot[]): Reply {
  let reply = rendered.get(hosts);
  if (!reply) rendered.set(hosts, (reply = renderStatus(hosts)));
  return reply;
}

function renderStatus(hosts: HostSnapshot[]): Reply {
  // Stale hosts still show their last sample; connecting and down ones show none.
  const shown = hosts.filter((h) => h.state === 'up' || h.state === 'stale');
  const gpus = shown.flatMap((h) => h.gpus ?? []);
  const free = gpus.filter(isFree).length;
  const count = (state: HostSnapshot['state']) => hosts.filter((h) => h.state === state).length;
  const others = (['stale', 'connecting', 'down'] as const)
    .filter((s) => count(s) > 0)
    .map((s) => `, ${count(s)} ${s}`)
    .join('');
  const title = `${free}/${gpus.length} GPUs free on ${shown.length} host${shown.length === 1 ? '' : 's'}${others}`;
  return reply(others ? 'warning' : 'info', title, hosts.map(hostSection), 'channel');
}
