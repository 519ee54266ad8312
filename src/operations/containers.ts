import type { CommandContext } from '../core/engine.js';
import { HOUR_MS, isoMinute } from '../core/format.js';
import { checkRequest, defaultHours, quotaCode } from '../core/policy/quota.js';
import { usageOf } from '../db/usage.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { allocate, gpuKey, leaseHolders, parseIndexes, release } from '../db/allocations.js';
import { markRemoved, markStopped } from '../db/containers.js';
import { audit } from '../db/audit.js';
import type { Container } from '../db/client.js';
import { ContainerNotFound } from '../hosts/errors.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import { ensureStopped } from '../hosts/runtime.js';
import { errorMessage } from '../util/errors.js';
import { SNAPSHOT_MAX_AGE_MS, type OpsDeps } from './deps.js';
import { ownedContainer } from './ownership.js';
import { failpoint } from './launch.js';
import { holdersChanged } from '../db/shared-read.js';

type Named<C extends string> = Extract<Request, { command: C }>;

/**
 * The host of a container, once connected (waiting up to timeouts.hostMs for a connection in
 * progress, as right after start); acting on a down host is refused, not guessed.
 */
async function reachable(deps: OpsDeps, c: Container): Promise<GpuHost | Reply> {
  const host = deps.pool.get(c.hostName);
  if (!host) return refuse('host-unavailable', `${c.name} is on ${c.hostName}, which is no longer configured`);
  if (await host.waitUp(deps.config.timeouts.hostMs)) return host;
  const conn = host.connection();
  const what = conn.down ? 'is down' : `did not connect within ${deps.config.timeouts.hostMs} ms`;
  return refuse(
    'host-unavailable',
    `${c.hostName} ${what}`,
    `${c.name} cannot be reached right now (${conn.lastError ?? conn.state}). Nothing was changed; try again when the host is back.`,
  );
}

/**
 * A container still being launched is left to its launch. Docker is reached only by the exact
 * full id the database holds: a name (or a short id) would be matched as an ID prefix, and could
 * reach a stranger's container.
 */
export function settled(c: Container): Reply | null {
  return c.state === 'creating' || !c.dockerId ? refuse('still-starting', `${c.name} is still starting; try in a moment`, 'Nothing was done.') : null;
}

export async function stopContainer(deps: OpsDeps, req: Named<'stop'>, { actor }: CommandContext): Promise<Reply> {
  const c = await ownedContainer(deps.db, actor, req.name);
  const busy = settled(c);
  if (busy) return busy;
  if (c.state === 'stopped') return refuse('conflict', `${c.name} is already stopped`, `Start it with "start ${c.name}" or remove it with "rm ${c.name}".`);
  const host = await reachable(deps, c);
  if (!('runtime' in host)) return host;
  if ((await ensureStopped(host.runtime, c.dockerId!)) === 'gone') {
    await markRemoved(deps, c, 'container gone', deps.now());
    return refuse('not-found', `${c.name} no longer exists on ${c.hostName}`, 'Its GPUs were released.');
  }
  failpoint(deps, 'after-container-stop');
  await markStopped(deps, c, 'stopped', deps.now());
  await audit(deps.db, { actor: actor.handle, action: 'stop', target: c.name, result: 'ok' });
  return reply('success', `${c.name} is stopped; GPUs ${c.gpuIndexes} on ${c.hostName} are free again`, [
    { type: 'text', text: `Its files stay. "start ${c.name}" takes the same GPUs again if they are free.` },
  ]);
}

export async function startContainer(deps: OpsDeps, req: Named<'start'>, { actor }: CommandContext): Promise<Reply> {
  const c = await ownedContainer(deps.db, actor, req.name);
  const starting = settled(c);
  if (starting) return starting;
  if (c.state !== 'stopped') return refuse(c.state === 'creating' ? 'still-starting' : 'conflict', `${c.name} is ${c.state}, not stopped`);
  const drained = await deps.db.host.findUnique({ where: { name: c.hostName } });
  if (drained?.drained)
    return refuse('host-unavailable', `${c.name} cannot start: ${c.hostName} is drained by an admin`, `"rm ${c.name}" and "run" again to start on another host (your files stay).`);
  const host = await reachable(deps, c);
  if (!('runtime' in host)) return host;
  const indexes = parseIndexes(c.gpuIndexes);
  const usage = await usageOf(deps.db, deps.config, c.userId, c.user.handle, deps.now());
  const limits = usage.limits;
  const lastMoment = lifetimeEnd(deps, c);
  if (lastMoment.getTime() <= deps.now().getTime()) return pastLifetime(deps, c, lastMoment);
  const endsAt = new Date(Math.min(deps.now().getTime() + defaultHours(limits) * HOUR_MS, lastMoment.getTime()));
  const [snapshot] = await deps.pool.recentSnapshot(SNAPSHOT_MAX_AGE_MS, [c.hostName]);
  const busy = new Set((snapshot?.gpus ?? []).filter((g) => g.unmanaged.length > 0).map((g) => g.index));
  deps.launching.add(c.name);
  try {
    // The same transaction as run: quota against what the owner holds now, and exactly these GPUs.
    const taken = await allocate(deps.txDb, {
      userId: c.userId,
      now: deps.now(),
      kind: 'container',
      endsAt,
      quota: (held) => checkRequest(limits, held + usage.heldOnCluster, indexes.length, defaultHours(limits), usage.used),
      place: (leased) => {
        const blocked = indexes.filter((i) => leased.has(gpuKey(c.hostName, i)) || busy.has(i));
        return blocked.length ? { ok: false, reason: 'taken' } : { ok: true, host: c.hostName, indexes };
      },
    });
    if (!taken.ok) {
      if (taken.limit) return refuse(quotaCode(taken.limit), `${c.name} cannot start`, taken.reason);
      const holders = await leaseHolders(deps.db);
      const who = indexes
        .map((i) => {
          const h = holders.get(gpuKey(c.hostName, i));
          if (h) return `GPU ${i} is held by ${h.owner}${h.container ? ` (container ${h.container})` : ' (reservation)'}`;
          return busy.has(i) ? `GPU ${i} is busy with a process gpubot did not start` : null;
        })
        .filter(Boolean)
        .join('; ');
      return refuse(
        'no-gpus',
        `${c.name} cannot start: its GPUs are taken`,
        `${who} on ${c.hostName}. Ask them, wait, or "rm ${c.name}" and "run" again to get other GPUs (your files stay).`,
      );
    }
    // Tied to the row at once, so reconciliation never sees it as an allocation without a container.
    await deps.db.container.update({ where: { id: c.id }, data: { allocationId: taken.allocation.id } });
    holdersChanged();
    try {
      await host.runtime.start(c.dockerId!);
    } catch (err) {
      await deps.db.container.update({ where: { id: c.id }, data: { allocationId: null } });
      await release(deps.txDb, taken.allocation.id, 'start failed', deps.now());
      return refuse('failed', `Could not start ${c.name}`, errorMessage(err));
    }
    await deps.db.container.update({ where: { id: c.id }, data: { state: 'running', endsAt, stoppedAt: null } });
  } finally {
    deps.launching.delete(c.name);
  }
  await audit(deps.db, { actor: actor.handle, action: 'start', target: c.name, result: 'ok' });
  return reply('success', `${c.name} is running again on ${c.hostName} with GPUs ${c.gpuIndexes}`, [{ type: 'fields', fields: [{ label: 'Ends', value: isoMinute(endsAt) }] }]);
}

export async function removeContainer(deps: OpsDeps, req: Named<'rm'>, { actor }: CommandContext): Promise<Reply> {
  const c = await ownedContainer(deps.db, actor, req.name);
  const busy = settled(c);
  if (busy) return busy;
  const host = await reachable(deps, c);
  if (!('runtime' in host)) return host;
  try {
    await host.runtime.remove(c.dockerId!, { force: true });
  } catch (err) {
    if (!(err instanceof ContainerNotFound)) throw err;
  }
  await markRemoved(deps, c, 'removed', deps.now());
  await audit(deps.db, { actor: actor.handle, action: 'rm', target: c.name, result: 'ok' });
  return reply('success', `${c.name} is removed`, [{ type: 'text', text: `Files in ${deps.config.storage.mountPath} stay in your directory and show up in your next container.` }]);
}

const MAX_LOG_CHARS = 3500;

export async function containerLogs(deps: OpsDeps, req: Named<'logs'>, { actor }: CommandContext): Promise<Reply> {
  const c = await ownedContainer(deps.db, actor, req.name);
  const starting = settled(c);
  if (starting) return starting;
  const host = await reachable(deps, c);
  if (!('runtime' in host)) return host;
  let text = await host.runtime.logs(c.dockerId!, req.tail);
  const cut = text.length > MAX_LOG_CHARS;
  if (cut) text = text.slice(-MAX_LOG_CHARS);
  return reply('info', `Last ${req.tail} lines of ${c.name}`, [
    { type: 'code', text: text.trimEnd() || '(no output yet)' },
    ...(cut ? [{ type: 'text' as const, text: `Showing the last ${MAX_LOG_CHARS} characters.` }] : []),
  ]);
}

export async function extendContainer(deps: OpsDeps, req: Named<'extend'>, { actor }: CommandContext): Promise<Reply> {
  const c = await ownedContainer(deps.db, actor, req.name);
  const starting = settled(c);
  if (starting) return starting;
  const usage = await usageOf(deps.db, deps.config, c.userId, c.user.handle, deps.now());
  const limits = usage.limits;
  const now = deps.now().getTime();
  const currentEnd = Math.max(now, c.endsAt?.getTime() ?? now);
  const endsAt = new Date(currentEnd + req.hours * HOUR_MS);
  const fromNow = (endsAt.getTime() - now) / HOUR_MS;
  if (fromNow > limits.maxHours) {
    return refuse('over-quota', `${c.name} cannot run that long`, `quota maxHours: it would end ${fromNow.toFixed(1)} h from now; the limit is ${limits.maxHours} h.`);
  }
  const lastMoment = lifetimeEnd(deps, c);
  if (endsAt > lastMoment) return pastLifetime(deps, c, lastMoment, currentEnd);
  // The weekly budget: what is used so far plus what this container would hold until its new end
  // (within this window) may not cross 100 %.
  const gpus = c.gpuIndexes ? c.gpuIndexes.split(',').length : 0;
  const countedEnd = Math.min(endsAt.getTime(), usage.window.end?.getTime() ?? Infinity);
  const committed = usage.used + (gpus * Math.max(0, countedEnd - now)) / HOUR_MS;
  if (c.state === 'running' && gpus > 0 && committed > limits.gpuHoursPerWeek + 1e-9) {
    const room = ((limits.gpuHoursPerWeek - usage.used) / gpus) * HOUR_MS - (currentEnd - now);
    return refuse(
      'over-gpu-hours',
      `${c.name} cannot be extended that far`,
      `quota gpuHoursPerWeek: you have used ${usage.used.toFixed(1)} of your ${limits.gpuHoursPerWeek} GPU-hours this week, and ${gpus} GPU(s) until ${isoMinute(endsAt)} would make ${committed.toFixed(1)}. ${room >= 0.01 * HOUR_MS ? `At most ${(Math.floor((room / HOUR_MS) * 100) / 100).toString()} h more fits.` : 'No more fits this week.'}`,
    );
  }
  await deps.db.container.update({ where: { id: c.id }, data: { endsAt } });
  if (c.allocationId) await deps.db.allocation.update({ where: { id: c.allocationId }, data: { endsAt } });
  await audit(deps.db, { actor: actor.handle, action: 'extend', target: c.name, result: 'ok', detail: endsAt.toISOString() });
  return reply('success', `${c.name} now ends ${isoMinute(endsAt)}`);
}

/** No container lives past quotas.maxLifetimeHours from its start, whatever extends and keeps. */
export function lifetimeEnd(deps: Pick<OpsDeps, 'config'>, c: Pick<Container, 'createdAt'>): Date {
  return new Date(c.createdAt.getTime() + deps.config.quotas.maxLifetimeHours * HOUR_MS);
}

function pastLifetime(deps: OpsDeps, c: Container, lastMoment: Date, currentEnd?: number): Reply {
  const left = currentEnd === undefined ? 0 : (lastMoment.getTime() - currentEnd) / HOUR_MS;
  return refuse(
    'over-quota',
    `${c.name} cannot live past ${isoMinute(lastMoment)}`,
    `quotas.maxLifetimeHours: a container lives at most ${deps.config.quotas.maxLifetimeHours} h from its start (${isoMinute(c.createdAt)}). ${left >= 0.01 ? `At most ${Math.floor(left * 100) / 100} h more fits.` : `Save your work to ${deps.config.storage.mountPath} and "run" a new one.`}`,
  );
}
