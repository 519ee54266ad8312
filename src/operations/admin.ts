import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { release } from '../db/allocations.js';
import { markRemoved } from '../db/containers.js';
import { jobNamed, jobs } from '../jobs/index.js';
import type { OpsDeps } from './deps.js';
import { setQuota } from './quota.js';
import { holdersChanged } from '../db/shared-read.js';

export async function adminCommand(deps: OpsDeps, req: Extract<Request, { command: 'admin' }>, { actor }: CommandContext): Promise<Reply> {
  if (!actor.isAdmin) return refuse('not-admin', 'Only admins can do that', 'Ask one of the admins listed in the config.');
  if (req.action === 'quota') return setQuota(deps, req, actor.handle);
  if (req.action === 'audit') return auditLog(deps, req.count);
  if (req.action === 'hosts') return hostsView(deps);
  if (req.action === 'drain' || req.action === 'undrain') return drain(deps, req.host, req.action === 'drain', actor.handle);
  if (req.action === 'forget') return forget(deps, req.host, actor.handle);
  if (req.action !== 'run-job') return refuse('invalid', 'Unknown admin action');
  const job = jobNamed(req.job);
  if (!job) return refuse('not-found', `There is no job "${req.job}"`, `Jobs: ${jobs.map((j) => j.name).join(', ')}`);
  const summary = await job.run(deps);
  await audit(deps.db, { actor: actor.handle, action: 'run-job', target: job.name, result: 'ok', detail: summary });
  return reply('success', `Ran ${job.name}`, [{ type: 'text', text: summary }]);
}

async function auditLog(deps: OpsDeps, count: number): Promise<Reply> {
  const events = await deps.db.auditEvent.findMany({ orderBy: { id: 'desc' }, take: count });
  return reply('info', `The last ${events.length} audit event(s)`, [
    {
      type: 'table',
      columns: ['When', 'Who', 'What', 'Target', 'Result', 'Detail'],
      rows: events.map((e) => [isoMinute(e.at), e.actor, e.action, e.target ?? '', e.result, (e.detail ?? '').slice(0, 80)]),
    },
  ]);
}

/** What the database still holds on hosts the config no longer names: containers and leased GPUs. */
async function strandedHosts(deps: OpsDeps): Promise<Map<string, { containers: number; gpus: number }>> {
  const configured = deps.pool.hostNames();
  const [containers, leases] = await Promise.all([
    deps.db.container.groupBy({ by: ['hostName'], where: { state: { not: 'removed' }, hostName: { notIn: configured } }, _count: { _all: true } }),
    deps.db.gpuLease.groupBy({ by: ['hostName'], where: { hostName: { notIn: configured } }, _count: { _all: true } }),
  ]);
  const out = new Map<string, { containers: number; gpus: number }>();
  for (const c of containers) out.set(c.hostName, { containers: c._count._all, gpus: 0 });
  for (const l of leases) out.set(l.hostName, { containers: out.get(l.hostName)?.containers ?? 0, gpus: l._count._all });
  return out;
}

async function hostsView(deps: OpsDeps): Promise<Reply> {
  const [rows, gpus, stranded] = await Promise.all([deps.db.host.findMany(), deps.db.gpu.groupBy({ by: ['hostId'], _count: { _all: true } }), strandedHosts(deps)]);
  const count = new Map(gpus.map((g) => [g.hostId, g._count._all]));
  const runAsRoot = deps.config.storage.runAs === 'root';
  return reply(runAsRoot || stranded.size ? 'warning' : 'info', `${deps.pool.hostNames().length} host(s)`, [
    {
      type: 'table',
      columns: ['Host', 'Connection', 'Last error', 'GPUs', 'Drained'],
      rows: [
        ...deps.pool.all().map((h) => {
          const row = rows.find((r) => r.name === h.name);
          const c = h.connection();
          return [h.name, c.state, c.lastError ?? '', row ? String(count.get(row.id) ?? 0) : '?', row?.drained ? 'yes' : 'no'];
        }),
        ...[...stranded].map(([name, s]) => [
          name,
          `not in config: ${s.containers} container${s.containers === 1 ? '' : 's'}, ${s.gpus} GPU${s.gpus === 1 ? '' : 's'} held`,
          '',
          '?',
          '',
        ]),
      ],
    },
    ...(stranded.size ? [{ type: 'text' as const, text: `"admin forget HOST" releases what a host that left the config still holds.` }] : []),
    ...(runAsRoot
      ? [
          {
            type: 'text' as const,
            text: "storage.runAs: root: containers run as root, so files in users' directories are root's and other users' containers could read them. Set storage.runAs: user.",
          },
        ]
      : []),
    ...(deps.gateway
      ? [
          {
            type: 'text' as const,
            text: `SSH gateway: ${deps.gateway.publicHost} port ${deps.gateway.port}, host key ${deps.gateway.hostKeyFingerprint}, ${deps.gateway.activeContainers().size} container(s) with open sessions`,
          },
        ]
      : []),
  ]);
}

/**
 * A host that left the config: its containers are recorded removed and its GPUs released, so no
 * one's quota stays charged for a machine gpubot no longer reaches. Nothing on the host is touched.
 */
async function forget(deps: OpsDeps, host: string, by: string): Promise<Reply> {
  if (deps.pool.get(host)) return refuse('conflict', `${host} is still in the config`, 'Remove it from the config (and restart) first; "admin drain" stops new work going there.');
  const containers = await deps.db.container.findMany({ where: { hostName: host, state: { not: 'removed' } } });
  const allocations = await deps.db.allocation.findMany({ where: { hostName: host, state: 'active' } });
  if (!containers.length && !allocations.length) return refuse('not-found', `gpubot holds nothing on ${host}`, 'Nothing was changed.');
  const now = deps.now();
  for (const c of containers) await markRemoved(deps, c, 'host forgotten', now);
  for (const a of allocations) await release(deps.txDb, a.id, 'host forgotten', now);
  const gpus = allocations.reduce((n, a) => n + a.gpuIndexes.split(',').filter(Boolean).length, 0);
  const detail = `${containers.length} container(s) ${containers.map((c) => c.name).join(',')}; ${gpus} GPU(s) released`;
  await audit(deps.db, { actor: by, action: 'forget', target: host, result: 'ok', detail });
  return reply('success', `${host} is forgotten: ${containers.length} container${containers.length === 1 ? '' : 's'} recorded gone, ${gpus} GPU${gpus === 1 ? '' : 's'} released`, [
    { type: 'text', text: 'Nothing on the host itself was touched: if it comes back into the config, reconciliation adopts what still runs there.' },
  ]);
}

async function drain(deps: OpsDeps, host: string, drained: boolean, by: string): Promise<Reply> {
  if (!deps.pool.get(host)) return refuse('not-found', `There is no host "${host}"`, `Known hosts: ${deps.pool.hostNames().join(', ')}`);
  await deps.db.host.upsert({ where: { name: host }, create: { name: host, drained }, update: { drained } });
  holdersChanged();
  await audit(deps.db, { actor: by, action: drained ? 'drain' : 'undrain', target: host, result: 'ok' });
  return reply('success', drained ? `${host} is drained: nothing new goes there; what runs keeps running` : `${host} takes work again`);
}
