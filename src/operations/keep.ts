import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import type { OpsDeps } from './deps.js';
import { ownedContainer } from './ownership.js';
import { lifetimeEnd, settled } from './containers.js';

/**
 * Stopped: holds off the cleanup for cleanup.keepFor. Running: marks it keep-alive against idle
 * reclaim for idle.keepFor, never past its end time (the quota's maxHours still rules there).
 */
export async function keepContainer(deps: OpsDeps, req: Extract<Request, { command: 'keep' }>, { actor }: CommandContext): Promise<Reply> {
  const c = await ownedContainer(deps.db, actor, req.name);
  const starting = settled(c);
  if (starting) return starting;
  if (c.state !== 'stopped' && c.state !== 'running') return refuse('still-starting', `${c.name} is ${c.state}`, 'Try again in a moment.');
  const now = deps.now().getTime();
  const forMs = c.state === 'stopped' ? deps.config.cleanup.keepFor : deps.config.idle.keepFor;
  const lastMoment = lifetimeEnd(deps, c).getTime();
  if (lastMoment <= now)
    return refuse('over-quota', `${c.name} cannot be kept: it reached quotas.maxLifetimeHours (${deps.config.quotas.maxLifetimeHours} h from its start)`, 'Nothing was changed.');
  const keepUntil = new Date(Math.min(c.state === 'running' && c.endsAt ? Math.min(now + forMs, c.endsAt.getTime()) : now + forMs, lastMoment));
  await deps.db.container.update({ where: { id: c.id }, data: { keepUntil } });
  await audit(deps.db, { actor: actor.handle, action: 'keep', target: c.name, result: 'ok', detail: keepUntil.toISOString() });
  return reply('success', c.state === 'stopped' ? `${c.name} is kept until at least ${isoMinute(keepUntil)}` : `${c.name} stays up even if idle until ${isoMinute(keepUntil)}`);
}
