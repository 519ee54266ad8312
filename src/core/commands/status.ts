import type { GpuView, HostSnapshot } from '../cluster.js';
import { memory, percent } from '../format.js';
import { reply, type Block, type Reply } from '../reply.js';

const holderText = (g: GpuView): string => {
  const held = g.holders.map((h) => (h.otherGpubot ? `${h.owner} (${h.container}, other gpubot)` : h.container ? `${h.owner} (${h.container})` : `${h.owner} (reserved)`));
  return held.length ? held.join(', ') : 'free';
};

const unmanagedText = (g: GpuView): string =>
  g.unmanaged.length
    ? g.unmanaged.map((p) => `pid ${p.pid} ${p.name}${p.foreignContainer ? ` in container ${p.foreignContainer}` : ''} (not gpubot)`).join('; ')
    : '';

export const isFree = (g: GpuView): boolean => g.holders.length === 0 && g.unmanaged.length === 0;

function hostSection(h: HostSnapshot): Block {
  if (h.state === 'down') return { type: 'section', heading: `${h.name}: down`, tone: 'error', blocks: [{ type: 'text', text: h.error ?? 'not reachable' }] };
  if (!h.gpus) return { type: 'section', heading: `${h.name}: GPUs unknown`, tone: 'warning', blocks: [{ type: 'text', text: h.gpuError ?? 'nvidia-smi gave no answer' }] };
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
  return { type: 'section', heading: `${h.name}: ${free}/${h.gpus.length} GPUs free${drained}`, tone: h.gpuError || h.dockerError ? 'warning' : 'info', blocks };
}

export function statusReply(hosts: HostSnapshot[]): Reply {
  const up = hosts.filter((h) => h.state === 'up');
  const gpus = up.flatMap((h) => h.gpus ?? []);
  const free = gpus.filter(isFree).length;
  const down = hosts.length - up.length;
  const title = `${free}/${gpus.length} GPUs free on ${up.length} host${up.length === 1 ? '' : 's'}${down ? `, ${down} down` : ''}`;
  return reply(down ? 'warning' : 'info', title, hosts.map(hostSection), 'channel');
}
