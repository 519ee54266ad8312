import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { release } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import type { OpsDeps } from './deps.js';
import { isReply, takeGpus } from './take-gpus.js';

export async function reserveGpus(deps: OpsDeps, req: Extract<Request, { command: 'reserve' }>, { actor }: CommandContext): Promise<Reply> {
  const taken = await takeGpus(deps, actor, 'reservation', req);
  if (isReply(taken)) return taken;
  const { endsAt } = taken;
  const gpus = taken.indexes.join(',');
  await audit(deps.db, { actor: actor.handle, action: 'reserve', target: String(taken.allocation.id), result: 'ok', detail: `${taken.host} GPUs ${gpus}` });
  return reply('success', `Reserved GPU${taken.indexes.length === 1 ? '' : 's'} ${gpus} on ${taken.host} until ${isoMinute(endsAt)}`, [
    {
      type: 'fields',
      fields: [
        { label: 'Reservation', value: String(taken.allocation.id) },
        { label: 'Host', value: taken.host },
        { label: 'GPUs', value: gpus },
        { label: 'Ends', value: isoMinute(endsAt) },
      ],
    },
    { type: 'text', text: 'Use them over SSH with:' },
    { type: 'code', text: `CUDA_VISIBLE_DEVICES=${gpus} python train.py` },
    {
      type: 'actions',
      actions: [{ id: 'release', label: 'Release', command: `release ${taken.allocation.id}`, style: 'danger', confirm: `Give back GPUs ${gpus} on ${taken.host}?` }],
    },
  ]);
}

export async function releaseReservation(deps: OpsDeps, req: Extract<Request, { command: 'release' }>, { actor }: CommandContext): Promise<Reply> {
  if (req.target === 'all') {
    const mine = await deps.db.allocation.findMany({ where: { userId: actor.userId, kind: 'reservation', state: 'active' } });
    for (const a of mine) await release(deps.txDb, a.id, 'released', deps.now());
    await audit(deps.db, { actor: actor.handle, action: 'release', target: 'all', result: 'ok', detail: mine.map((a) => a.id).join(',') });
    return reply(mine.length ? 'success' : 'info', mine.length ? `Released ${mine.length} reservation${mine.length === 1 ? '' : 's'}` : 'You have no reservations');
  }
  const a = await deps.db.allocation.findUnique({ where: { id: req.target }, include: { user: true } });
  if (!a || a.kind !== 'reservation' || a.state !== 'active') return refuse('not-found', `There is no active reservation ${req.target}`, 'See "ls" for yours.');
  if (a.userId !== actor.userId && !actor.isAdmin) {
    return refuse('not-owner', `Reservation ${a.id} belongs to ${a.user.handle}`, 'Only they or an admin can release it.');
  }
  await release(deps.txDb, a.id, actor.userId === a.userId ? 'released' : `released by admin ${actor.handle}`, deps.now());
  await audit(deps.db, { actor: actor.handle, action: 'release', target: String(a.id), result: 'ok' });
  return reply('success', `Released reservation ${a.id}: GPUs ${a.gpuIndexes} on ${a.hostName} are free again`);
}
