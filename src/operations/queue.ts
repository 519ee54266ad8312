import type { CommandContext } from '../core/engine.js';
import { reply, refuse, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { commandText, runWords } from '../core/grammar.js';
import type { QueuedRun } from '../db/client.js';
import { audit } from '../db/audit.js';
import { usageOf } from '../db/usage.js';
import type { OpsDeps } from './deps.js';

export const NO_GPUS = 'No GPUs for you right now';

/**
 * Why a refused run may wait in the queue instead: no GPUs fit now, or (quotas.atLimit: queue)
 * its owner is at their weekly GPU-hours. Null for any other refusal.
 */
export function queueableRefusal(refusal: Reply, atLimit: 'refuse' | 'queue'): 'no-gpus' | 'over-hours' | null {
  switch (refusal.code) {
    case 'no-gpus':
      return 'no-gpus';
    case 'over-gpu-hours':
      return atLimit === 'queue' ? 'over-hours' : null;
    default:
      return null;
  }
}

/** A refusal that could wait in the queue, with a button that asks again with --queue. */
export function withQueueButton(refusal: Reply, req: RunRequest): Reply {
  const again = commandText(runWords({ ...req, queue: true }));
  if (!again) return refusal; // a command no line of text reads back exactly: the text says "add --queue"
  return { ...refusal, blocks: [...refusal.blocks, { type: 'actions', actions: [{ id: 'queue', label: 'Queue it', command: again, style: 'primary' }] }] };
}
type RunRequest = Extract<Request, { command: 'run' }>;

/** Waiting runs in launch order: users with less GPU-hours this week first, then the oldest. */
export async function fairOrder(deps: OpsDeps): Promise<(QueuedRun & { handle: string })[]> {
  const waiting = await deps.db.queuedRun.findMany({ where: { state: 'waiting' }, orderBy: { createdAt: 'asc' } });
  const users = await deps.db.user.findMany({ where: { id: { in: [...new Set(waiting.map((w) => w.userId))] } } });
  const used = new Map<number, number>();
  for (const u of users) used.set(u.id, (await usageOf(deps.db, deps.config, u.id, u.handle, deps.now())).used);
  const handle = new Map(users.map((u) => [u.id, u.handle]));
  return waiting
    .map((w) => ({ ...w, handle: handle.get(w.userId) ?? '?' }))
    .sort((a, b) => (used.get(a.userId) ?? 0) - (used.get(b.userId) ?? 0) || a.createdAt.getTime() - b.createdAt.getTime() || a.id - b.id);
}

export async function enqueue(deps: OpsDeps, req: RunRequest, actor: { userId: number; handle: string }, reason: string): Promise<Reply> {
  const { queue: _queue, ...request } = req;
  const limit = deps.config.rateLimits.queuedRuns;
  const full = refuse(
    'rate-limited',
    `You already have ${limit} run(s) waiting`,
    `rateLimits.queuedRuns: nothing was queued. Try again when one of them launches, or cancel one ("queue" lists them).`,
  );
  if ((await deps.db.queuedRun.count({ where: { userId: actor.userId, state: 'waiting' } })) >= limit) return full;
  const row = await deps.db.queuedRun.create({ data: { userId: actor.userId, request: JSON.stringify(request), state: 'waiting', createdAt: deps.now() } });
  // Checked again after writing, so two requests at once (or two bots) cannot both squeeze in.
  if ((await deps.db.queuedRun.count({ where: { userId: actor.userId, state: 'waiting', id: { lte: row.id } } })) > limit) {
    await deps.db.queuedRun.delete({ where: { id: row.id } });
    return full;
  }
  const position = (await fairOrder(deps)).findIndex((w) => w.id === row.id) + 1;
  await audit(deps.db, { actor: actor.handle, action: 'queue', target: String(row.id), result: 'ok', detail: row.request });
  return reply('info', `Queued as #${row.id}, position ${position}`, [
    { type: 'text', text: `${reason} It launches when it can (quotas are checked then), and you will be told. "queue" shows the order.` },
    { type: 'actions', actions: [{ id: 'cancel', label: 'Cancel', command: `queue cancel ${row.id}`, style: 'danger' }] },
  ]);
}

export async function queueCommand(deps: OpsDeps, req: Extract<Request, { command: 'queue' }>, { actor }: CommandContext): Promise<Reply> {
  if (req.cancel !== undefined) {
    const row = await deps.db.queuedRun.findUnique({ where: { id: req.cancel } });
    if (!row || row.state !== 'waiting') return refuse('not-found', `Nothing waiting as #${req.cancel}`);
    if (row.userId !== actor.userId && !actor.isAdmin) return refuse('not-owner', `#${row.id} is not yours`, 'Only its owner or an admin can cancel it.');
    const { count } = await deps.db.queuedRun.updateMany({ where: { id: row.id, state: 'waiting' }, data: { state: 'cancelled', doneAt: deps.now() } });
    if (!count) return refuse('conflict', `#${row.id} is no longer waiting`);
    await audit(deps.db, { actor: actor.handle, action: 'queue cancel', target: String(row.id), result: 'ok' });
    return reply('success', `Cancelled #${row.id}`);
  }
  const order = await fairOrder(deps);
  if (order.length === 0) return reply('info', 'Nobody is waiting');
  return reply(
    'info',
    `${order.length} run(s) waiting`,
    [
      {
        type: 'table',
        columns: ['Pos', 'Id', 'Owner', 'GPUs', 'Waiting since'],
        rows: order.map((w, i) => [
          String(i + 1),
          `#${w.id}`,
          w.handle,
          String((JSON.parse(w.request) as RunRequest).gpus),
          w.createdAt.toISOString().slice(0, 16).replace('T', ' '),
        ]),
      },
    ],
    'channel',
  );
}
