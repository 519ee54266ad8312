import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import type { ContainerState } from '../core/views.js';
import { LABEL } from '../hosts/labels.js';
import type { OpsDeps } from './deps.js';

/** What each host says about gpubot's containers right now; null for a host that cannot say. */
async function liveStates(deps: OpsDeps, hosts: string[]): Promise<Map<string, Map<string, string> | null>> {
  const out = new Map<string, Map<string, string> | null>();
  await Promise.all(
    [...new Set(hosts)].map(async (name) => {
      const host = deps.pool.get(name);
      if (!host || !(await host.waitUp(deps.config.timeouts.hostMs))) return void out.set(name, null);
      try {
        const list = await host.runtime.listManaged();
        out.set(name, new Map(list.map((c) => [c.labels[LABEL.name] ?? c.name, c.state])));
      } catch {
        out.set(name, null);
      }
    }),
  );
  return out;
}

export async function listMine(deps: OpsDeps, req: Extract<Request, { command: 'ls' }>, { actor }: CommandContext): Promise<Reply> {
  const who = req.all ? {} : { userId: actor.userId };
  const [containers, reservations] = await Promise.all([
    deps.db.container.findMany({ where: { ...who, state: { not: 'removed' } }, include: { user: true }, orderBy: { createdAt: 'asc' } }),
    deps.db.allocation.findMany({ where: { ...who, kind: 'reservation', state: 'active' }, include: { user: true }, orderBy: { createdAt: 'asc' } }),
  ]);
  const live = await liveStates(
    deps,
    containers.map((c) => c.hostName),
  );
  const stateOf = (c: (typeof containers)[number]): ContainerState | string => {
    const hostView = live.get(c.hostName);
    if (hostView === null) return 'unknown (host down)';
    const docker = hostView?.get(c.name);
    if (c.state === 'creating') return 'creating';
    if (!docker) return 'missing on host';
    return docker === 'running' ? 'running' : docker === 'exited' || docker === 'created' ? 'stopped' : docker;
  };
  if (containers.length === 0 && reservations.length === 0)
    return reply('info', req.all ? 'Nobody holds anything' : 'You have no containers or reservations', [{ type: 'text', text: 'Start one with "run --gpus 1".' }]);
  const blocks: Reply['blocks'] = [];
  if (containers.length) {
    blocks.push({
      type: 'table',
      columns: req.all ? ['Container', 'Owner', 'Host', 'GPUs'] : ['Container', 'Host', 'GPUs', 'State', 'Image', 'Ends'],
      rows: containers.map((c) =>
        req.all
          ? [c.name, c.user.handle, c.hostName, c.state === 'running' ? c.gpuIndexes : '-']
          : [c.name, c.hostName, c.gpuIndexes, stateOf(c), c.image, c.endsAt ? isoMinute(c.endsAt) : '-'],
      ),
    });
  }
  if (reservations.length) {
    blocks.push({
      type: 'table',
      columns: req.all ? ['Reservation', 'Owner', 'Host', 'GPUs'] : ['Reservation', 'Host', 'GPUs', 'Ends'],
      rows: reservations.map((a) =>
        req.all ? [String(a.id), a.user.handle, a.hostName, a.gpuIndexes] : [String(a.id), a.hostName, a.gpuIndexes, a.endsAt ? isoMinute(a.endsAt) : '-'],
      ),
    });
  }
  const title = req.all
    ? `${containers.length} container(s), ${reservations.length} reservation(s) in use`
    : `Your ${containers.length} container(s) and ${reservations.length} reservation(s)`;
  return reply('info', title, blocks, req.all ? 'channel' : 'personal');
}
