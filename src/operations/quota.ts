import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { usageOf, type Usage } from '../db/usage.js';
import type { OpsDeps } from './deps.js';

export function usageBlocks(u: Usage): Reply['blocks'] {
  return [
    {
      type: 'fields',
      fields: [
        { label: 'GPU-hours this week', value: `${u.used.toFixed(1)} / ${u.limits.gpuHoursPerWeek} (${Math.round((100 * u.used) / Math.max(u.limits.gpuHoursPerWeek, 1e-9))} %)` },
        { label: 'Window', value: u.window.end ? `since ${isoMinute(u.window.start)}, ends ${isoMinute(u.window.end)}` : 'the last 7 days (rolling)' },
        {
          label: 'GPUs held now',
          value: `${u.heldGpus + u.heldOnCluster} of at most ${u.limits.maxGpus}${u.heldOnCluster ? ` (${u.heldOnCluster} in Slurm jobs)` : ''}`,
        },
        { label: 'Longest run', value: `${u.limits.maxHours} h` },
      ],
    },
  ];
}

export async function showQuota(deps: OpsDeps, req: Extract<Request, { command: 'quota' }>, { actor }: CommandContext): Promise<Reply> {
  const handle = req.user ?? actor.handle;
  if (handle !== actor.handle && !actor.isAdmin) return refuse('not-admin', 'Only admins can see someone else’s quota', 'Say "quota" for your own.');
  const user = await deps.db.user.findUnique({ where: { handle } });
  if (!user) return refuse('not-found', `There is no user "${handle}"`);
  return reply('info', `Quota of ${handle}`, usageBlocks(await usageOf(deps.db, deps.config, user.id, handle, deps.now())));
}

/** admin quota USER ...: limits set in chat win over the config file, and are audited. */
export async function setQuota(deps: OpsDeps, req: Extract<Request, { command: 'admin'; action: 'quota' }>, actorHandle: string): Promise<Reply> {
  const user = await deps.db.user.findUnique({ where: { handle: req.user } });
  if (!user) return refuse('not-found', `There is no user "${req.user}"`);
  const data = { maxGpus: req.maxGpus, gpuHoursPerWeek: req.gpuHoursPerWeek, maxHours: req.maxHours, updatedBy: actorHandle };
  await deps.db.quotaOverride.upsert({ where: { handle: req.user }, create: { handle: req.user, ...data }, update: data });
  const changed = [
    req.maxGpus !== undefined && `maxGpus ${req.maxGpus}`,
    req.gpuHoursPerWeek !== undefined && `gpuHoursPerWeek ${req.gpuHoursPerWeek}`,
    req.maxHours !== undefined && `maxHours ${req.maxHours}`,
  ]
    .filter(Boolean)
    .join(', ');
  await audit(deps.db, { actor: actorHandle, action: 'admin quota', target: req.user, result: 'ok', detail: changed });
  return reply('success', `New limits for ${req.user}: ${changed}`, usageBlocks(await usageOf(deps.db, deps.config, user.id, req.user, deps.now())));
}
