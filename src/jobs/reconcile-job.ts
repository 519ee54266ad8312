import type { Job } from './job.js';
import { reconcile } from './reconcile.js';

export const reconcileJob: Job = {
  name: 'reconcile',
  description: 'Put the database and the hosts back in agreement (adopts unknown containers, removes only unfinished launches).',
  async run(deps) {
    await deps.pool.settled();
    const r = await reconcile(deps);
    return `${r.adopted.length} adopted, ${r.otherInstallations.length} of another gpubot left alone, ${r.removedOrphans.length} orphan(s) removed, ${r.goneContainers.length} gone, ${r.exitedContainers.length} exited, ${r.releasedAllocations.length} stray allocation(s) freed${r.skippedHosts.length ? `; skipped ${r.skippedHosts.join(', ')}` : ''}`;
  },
};
