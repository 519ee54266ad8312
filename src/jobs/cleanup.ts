import { duration, isoMinute } from '../core/format.js';
import { reply } from '../core/reply.js';
import { audit } from '../db/audit.js';
import { markRemoved } from '../db/containers.js';
import { sendOnce } from '../db/notices.js';
import { ContainerNotFound } from '../hosts/errors.js';
import { LABEL } from '../hosts/labels.js';
import type { ContainerDetails } from '../hosts/runtime.js';
import { errorMessage } from '../util/errors.js';
import type { Job } from './job.js';
import { pruneUserImages } from '../operations/user-images.js';

/**
 * Removes managed containers stopped for longer than cleanup.removeStoppedAfter, telling their
 * owner before (with a Keep button) and after. Never touched: a running container, one without
 * the gpubot.managed label, anything on a host that cannot answer, any volume or user directory.
 */
export const cleanupJob: Job = {
  name: 'cleanup',
  description: 'Remove containers stopped for a long time (files stay), with a warning first.',
  async run(deps) {
    const { db, log } = deps;
    const { removeStoppedAfter, warnBefore } = deps.config.cleanup;
    const now = deps.now().getTime();
    let removed = 0;
    let warned = 0;
    const stopped = await db.container.findMany({ where: { state: 'stopped', stoppedAt: { not: null } } });
    for (const c of stopped) {
      const removeAt = Math.max(c.stoppedAt!.getTime() + removeStoppedAfter, c.keepUntil?.getTime() ?? 0);
      if (now < removeAt - warnBefore) continue;
      if (now < removeAt) {
        const sent = await sendOnce(db, `cleanup:warn:${c.id}:${removeAt}`, c.userId, () =>
          deps.notify(
            c.userId,
            reply('warning', `${c.name} will be removed in ${duration(removeAt - now)}`, [
              { type: 'text', text: `It has been stopped since ${isoMinute(c.stoppedAt!)}. Your files in ${deps.config.storage.mountPath} stay either way.` },
              { type: 'actions', actions: [{ id: 'keep', label: `Keep ${duration(deps.config.cleanup.keepFor)} more`, command: `keep ${c.name}`, style: 'primary' }] },
            ]),
          ),
        );
        if (sent) warned++;
        continue;
      }
      const host = deps.pool.get(c.hostName);
      if (!host || host.connection().state !== 'up') continue;
      let info: ContainerDetails | undefined;
      try {
        if (!c.dockerId) continue; // never by name: Docker would match it as an ID prefix
        info = await host.runtime.inspect(c.dockerId);
      } catch (err) {
        if (!(err instanceof ContainerNotFound)) continue; // cannot tell: leave it
      }
      // Only what the host itself shows as a stopped gpubot container.
      if (info && (info.running || info.labels[LABEL.managed] !== 'true')) continue;
      try {
        if (info) await host.runtime.remove(info.id, { force: false });
      } catch (err) {
        log.warn({ host: c.hostName, container: c.name, err: errorMessage(err) }, 'could not remove a stopped container');
        continue;
      }
      if (!(await markRemoved(deps, c, 'cleaned up', deps.now(), true))) continue;
      removed++;
      await audit(db, { actor: 'gpubot', action: 'cleanup', target: c.name, result: 'ok', detail: `stopped since ${c.stoppedAt!.toISOString()}` });
      void deps
        .notify(
          c.userId,
          reply('info', `${c.name} was removed after ${duration(now - c.stoppedAt!.getTime())} stopped`, [
            { type: 'text', text: `Your files in ${deps.config.storage.mountPath} are still there and show up in your next container.` },
          ]),
        )
        .catch(() => {});
    }
    let pruned = 0;
    if (deps.config.cleanup.pruneImages) {
      for (const host of deps.pool.all()) {
        if (host.connection().state !== 'up') continue;
        try {
          pruned += await host.runtime.pruneImages();
        } catch (err) {
          log.warn({ host: host.name, err: errorMessage(err) }, 'could not prune images');
        }
      }
    }
    const oldUserImages = await pruneUserImages(deps);
    return `${removed} stopped container(s) removed, ${warned} warning(s) sent${deps.config.cleanup.pruneImages ? `, ${pruned} dangling image layer(s) pruned` : ''}${oldUserImages ? `, ${oldUserImages} old user image(s) removed` : ''}`;
  },
};
