import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { placeGpus } from '../core/policy/allocation.js';
import { checkRequest, defaultHours, limitsFor, overQuota } from '../core/policy/quota.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { allocate, release } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import { drainedHosts } from '../db/hosts.js';
import { candidates } from './cluster-state.js';
import { SNAPSHOT_MAX_AGE_MS, type OpsDeps } from './deps.js';

const HOUR = 3_600_000;

export async function reserveGpus(deps: OpsDeps, req: Extract<Request, { command: 'reserve' }>, { actor }: CommandContext): Promise<Reply> {
  const limits = limitsFor(actor.handle, deps.config.quotas.default, deps.config.quotas.users);
  const hours = req.hours ?? defaultHours(limits);
  if (req.host && !deps.pool.get(req.host)) return refuse(`There is no host "${req.host}"`, `Known hosts: ${deps.pool.hostNames().join(', ')}`);
  const [snapshots, drained] = await Promise.all([deps.pool.recentSnapshot(SNAPSHOT_MAX_AGE_MS, req.host ? [req.host] : undefined), drainedHosts(deps.db)]);
  const endsAt = new Date(deps.now().getTime() + hours * HOUR);
  const taken = await allocate(deps.txDb, {
    userId: actor.userId,
    kind: 'reservation',
    endsAt,
    quota: (held) => checkRequest(limits, held, req.gpus, hours),
    place: (leased) => placeGpus(candidates(snapshots, drained, leased), req.gpus, req.host),
  });
  if (!taken.ok) {
    return refuse(overQuota(taken.reason) ? 'Over your quota' : 'No GPUs for you right now', `${taken.reason}.`);
  }
  const gpus = taken.indexes.join(',');
  await audit(deps.db, { actor: actor.handle, action: 'reserve', target: String(taken.allocation.id), result: 'ok', detail: `${taken.host} GPUs ${gpus}` });
  return reply('success', `Reserved GPU${taken.indexes.length === 1 ? '' : 's'} ${gpus} on ${taken.host} until ${isoMinute(endsAt)}`, [
    { type: 'fields', fields: [{ label: 'Reservation', value: String(taken.allocation.id) }, { label: 'Host', value: taken.host }, { label: 'GPUs', value: gpus }, { label: 'Ends', value: isoMinute(endsAt) }] },
    { type: 'text', text: 'Use them over SSH with:' },
    { type: 'code', text: `CUDA_VISIBLE_DEVICES=${gpus} python train.py` },
    { type: 'actions', actions: [{ id: 'release', label: 'Release', command: `release ${taken.allocation.id}`, style: 'danger', confirm: `Give back GPUs ${gpus} on ${taken.host}?` }] },
  ]);
}

export async function releaseReservation(deps: OpsDeps, req: Extract<Request, { command: 'release' }>, { actor }: CommandContext): Promise<Reply> {
  if (req.target === 'all') {
    const mine = await deps.db.allocation.findMany({ where: { userId: actor.userId, kind: 'reservation', state: 'active' } });
    for (const a of mine) await release(deps.txDb, a.id, 'released');
    await audit(deps.db, { actor: actor.handle, action: 'release', target: 'all', result: 'ok', detail: mine.map((a) => a.id).join(',') });
    return reply(mine.length ? 'success' : 'info', mine.length ? `Released ${mine.length} reservation${mine.length === 1 ? '' : 's'}` : 'You have no reservations');
  }
  const a = await deps.db.allocation.findUnique({ where: { id: req.target }, include: { user: true } });
  if (!a || a.kind !== 'reservation' || a.state !== 'active') return refuse(`There is no active reservation ${req.target}`, 'See "ls" for yours.');
  if (a.userId !== actor.userId && !actor.isAdmin) {
    return refuse(`Reservation ${a.id} belongs to ${a.user.handle}`, 'Only they or an admin can release it.');
  }
  await release(deps.txDb, a.id, actor.userId === a.userId ? 'released' : `released by admin ${actor.handle}`);
  await audit(deps.db, { actor: actor.handle, action: 'release', target: String(a.id), result: 'ok' });
  return reply('success', `Released reservation ${a.id}: GPUs ${a.gpuIndexes} on ${a.hostName} are free again`);
}
