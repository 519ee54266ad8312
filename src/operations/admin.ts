import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { jobNamed, jobs } from '../jobs/index.js';
import type { OpsDeps } from './deps.js';
import { setQuota } from './quota.js';

export async function adminCommand(deps: OpsDeps, req: Extract<Request, { command: 'admin' }>, { actor }: CommandContext): Promise<Reply> {
  if (!actor.isAdmin) return refuse('not-admin', 'Only admins can do that', 'Ask one of the admins listed in the config.');
  if (req.action === 'quota') return setQuota(deps, req, actor.handle);
  if (req.action === 'audit') return auditLog(deps, req.count);
  if (req.action === 'hosts') return hostsView(deps);
  if (req.action === 'drain' || req.action === 'undrain') return drain(deps, req.host, req.action === 'drain', actor.handle);
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
    { type: 'table', columns: ['When', 'Who', 'What', 'Target', 'Result', 'Detail'], rows: events.map((e) => [isoMinute(e.at), e.actor, e.action, e.target ?? '', e.result, (e.detail ?? '').slice(0, 80)]) },
  ]);
}

async function hostsView(deps: OpsDeps): Promise<Reply> {
  const [rows, gpus] = await Promise.all([deps.db.host.findMany(), deps.db.gpu.groupBy({ by: ['hostId'], _count: { _all: true } })]);
  const count = new Map(gpus.map((g) => [g.hostId, g._count._all]));
  return reply('info', `${deps.pool.hostNames().length} host(s)`, [
    {
      type: 'table',
      columns: ['Host', 'Connection', 'Last error', 'GPUs', 'Drained'],
      rows: deps.pool.all().map((h) => {
        const row = rows.find((r) => r.name === h.name);
        const c = h.connection();
        return [h.name, c.state, c.lastError ?? '', row ? String(count.get(row.id) ?? 0) : '?', row?.drained ? 'yes' : 'no'];
      }),
    },
    ...(deps.gateway
      ? [{ type: 'text' as const, text: `SSH gateway: ${deps.gateway.publicHost} port ${deps.gateway.port}, host key ${deps.gateway.hostKeyFingerprint}, ${deps.gateway.activeContainers().size} container(s) with open sessions` }]
      : []),
  ]);
}

async function drain(deps: OpsDeps, host: string, drained: boolean, by: string): Promise<Reply> {
  if (!deps.pool.get(host)) return refuse('not-found', `There is no host "${host}"`, `Known hosts: ${deps.pool.hostNames().join(', ')}`);
  await deps.db.host.upsert({ where: { name: host }, create: { name: host, drained }, update: { drained } });
  await audit(deps.db, { actor: by, action: drained ? 'drain' : 'undrain', target: host, result: 'ok' });
  return reply('success', drained ? `${host} is drained: nothing new goes there; what runs keeps running` : `${host} takes work again`);
}
