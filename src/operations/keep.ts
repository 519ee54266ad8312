import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import type { OpsDeps } from './deps.js';
import { ownedContainer } from './ownership.js';

/** Holds off the cleanup of a stopped container for cleanup.keepFor. */
export async function keepContainer(deps: OpsDeps, req: Extract<Request, { command: 'keep' }>, { actor }: CommandContext): Promise<Reply> {
  const c = await ownedContainer(deps.db, actor, req.name);
  if (c.state !== 'stopped') return refuse(`${c.name} is ${c.state}`, 'Only stopped containers are cleaned up; a running one ends at its end time (see "extend").');
  const keepUntil = new Date(deps.now().getTime() + deps.config.cleanup.keepFor);
  await deps.db.container.update({ where: { id: c.id }, data: { keepUntil } });
  await audit(deps.db, { actor: actor.handle, action: 'keep', target: c.name, result: 'ok', detail: keepUntil.toISOString() });
  return reply('success', `${c.name} is kept until at least ${isoMinute(keepUntil)}`);
}
