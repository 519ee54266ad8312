import { isoMinute } from './format.js';
import type { Action, Block } from './reply.js';

export type ContainerState = 'creating' | 'running' | 'stopped' | 'removed';

export interface ContainerView {
  name: string;
  owner: string;
  host: string;
  gpus: number[];
  image: string;
  state: ContainerState;
  endsAt: Date | null;
  mounts: string[];
}

export const gpuList = (gpus: number[]): string => (gpus.length ? gpus.join(',') : '-');

/** The buttons a container offers; they run ordinary commands as whoever clicks. */
export function containerActions(c: ContainerView): Action[] {
  const actions: Action[] = [];
  if (c.state === 'running')
    actions.push({ id: 'stop', label: 'Stop', command: `stop ${c.name}`, style: 'danger', confirm: `Stop ${c.name}? Its GPUs go back to the pool; files in the workspace stay.` });
  if (c.state === 'stopped') actions.push({ id: 'start', label: 'Start', command: `start ${c.name}`, style: 'primary' });
  actions.push({ id: 'logs', label: 'Logs', command: `logs ${c.name}` });
  if (c.state === 'running') actions.push({ id: 'extend', label: 'Extend 4h', command: `extend ${c.name} --hours 4` });
  actions.push({ id: 'rm', label: 'Remove', command: `rm ${c.name}`, style: 'danger', confirm: `Remove ${c.name}? The container goes; files in the workspace stay.` });
  return actions;
}

export function containerBlocks(c: ContainerView): Block[] {
  return [
    {
      type: 'fields',
      fields: [
        { label: 'Container', value: c.name },
        { label: 'Owner', value: c.owner },
        { label: 'Host', value: c.host },
        { label: 'GPUs', value: gpuList(c.gpus) },
        { label: 'State', value: c.state },
        { label: 'Image', value: c.image },
        { label: 'Ends', value: c.endsAt ? isoMinute(c.endsAt) : 'no end' },
        ...(c.mounts.length ? [{ label: 'Mounts', value: c.mounts.join(', ') }] : []),
      ],
    },
  ];
}
