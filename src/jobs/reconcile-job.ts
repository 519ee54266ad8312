import type { Job } from './job.js';
import { reconcile } from './reconcile.js';

export const reconcileJob: Job = {
  name: 'reconcile',
  description: 'Put the database and the hosts back in agreement (orphans, gone or exited containers).',
  async run(deps) {
    await deps.pool.settled();
    const r = await reconcile(deps);
    return `${r.removedOrphans.length} orphan(s) removed, ${r.goneContainers.length} gone, ${r.exitedContainers.length} exited, ${r.releasedAllocations.length} stray allocation(s) freed${r.skippedHosts.length ? `; skipped ${r.skippedHosts.join(', ')}` : ''}`;
  },
};
