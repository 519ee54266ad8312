import { isFree } from '../core/commands/status.js';
import type { Choice, ChoiceSource } from '../core/port.js';
import type { Actor } from '../core/requests.js';
import { withTimeout } from '../hosts/errors.js';
import { allowedImagesOnHosts } from '../hosts/images.js';
import { jobs } from '../jobs/index.js';
import type { OpsDeps } from './deps.js';

/**
 * Values for an option (Discord autocomplete, the Slack launch form), built within `budgetMs`:
 * a host that has not answered by then is left out. Containers: the actor's own (an admin's: all).
 */
export async function choicesFor(deps: OpsDeps, source: ChoiceSource, actor: Actor | undefined, budgetMs: number): Promise<Choice[]> {
  const within = <T>(work: Promise<T>, fallback: T) => withTimeout(work, budgetMs, 'choices').catch(() => fallback);
  switch (source) {
    case 'container': {
      if (!actor) return [];
      const containers = await deps.db.container.findMany({
        where: { state: { not: 'removed' }, ...(actor.isAdmin ? {} : { userId: actor.userId }) },
        include: { user: true },
        orderBy: { createdAt: 'desc' },
        take: 100,
      });
      return containers.map((c) => ({ value: c.name, label: `${c.name} (${c.state} on ${c.hostName}${actor.isAdmin ? `, ${c.user.handle}` : ''})` }));
    }
    case 'image':
      return (await allowedImagesOnHosts(deps.pool.all(), deps.config.images, budgetMs)).map((tag) => ({ value: tag, label: tag }));
    case 'free-host': {
      const snapshots = await within(deps.pool.recentSnapshot(5000), []);
      return snapshots
        .filter((s) => s.state === 'up' && s.gpus)
        .map((s) => ({ name: s.name, free: s.gpus!.filter(isFree).length }))
        .filter((h) => h.free > 0)
        .sort((a, b) => b.free - a.free)
        .map((h): Choice => ({ value: h.name, label: `${h.name} (${h.free} free)`, free: h.free }))
        .concat(deps.slurm ? [{ value: deps.slurm.name, label: `${deps.slurm.name} (Slurm: queues)` }] : []);
    }
    case 'host':
      return deps.pool
        .all()
        .map((h): Choice => ({ value: h.name, label: h.connection().state === 'up' ? h.name : `${h.name} (${h.connection().state})` }))
        .concat(deps.slurm ? [{ value: deps.slurm.name, label: `${deps.slurm.name} (Slurm)` }] : []);
    case 'job':
      return jobs.map((j) => ({ value: j.name, label: j.name }));
  }
}
