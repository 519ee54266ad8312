import type Docker from 'dockerode';
import { reply } from '../core/reply.js';
import { release } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import { withTimeout } from '../hosts/errors.js';
import { LABEL } from '../hosts/labels.js';
import type { OpsDeps } from '../operations/deps.js';
import { errorMessage } from '../util/errors.js';

export interface ReconcileReport {
  /** Managed containers the database did not know (a launch cut short): removed. */
  removedOrphans: string[];
  /** Rows whose container is gone from its host: marked removed, GPUs freed. */
  goneContainers: string[];
  /** Rows marked running whose container has exited: marked stopped, GPUs freed. */
  exitedContainers: string[];
  /** Active container allocations with no container at all: freed. */
  releasedAllocations: number[];
  /** Hosts that could not say; nothing on them was touched. */
  skippedHosts: string[];
}

/**
 * Puts the database and the hosts back in agreement, so a bot killed mid-launch leaks no GPU and
 * leaves no managed container unknown. Nothing on a host that cannot answer is touched: its
 * allocations stay held until the host itself says the container is gone.
 */
export async function reconcile(deps: OpsDeps): Promise<ReconcileReport> {
  const { db, log } = deps;
  const report: ReconcileReport = { removedOrphans: [], goneContainers: [], exitedContainers: [], releasedAllocations: [], skippedHosts: [] };
  const now = deps.now();
  const answered = new Set<string>();

  for (const host of deps.pool.all()) {
    let listed: Docker.ContainerInfo[];
    try {
      if (host.connection().state !== 'up') throw new Error('down');
      listed = (await withTimeout(host.docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`] } }), deps.config.timeouts.hostMs, 'listing')) as Docker.ContainerInfo[];
    } catch {
      report.skippedHosts.push(host.name);
      continue;
    }
    answered.add(host.name);
    const rows = await db.container.findMany({ where: { hostName: host.name, state: { not: 'removed' } } });
    const byName = new Map(rows.map((r) => [r.name, r]));
    const onHost = new Map(listed.map((c) => [c.Labels[LABEL.name] ?? c.Names[0]!.slice(1), c]));

    for (const [name, c] of onHost) {
      if (deps.launching.has(name)) continue;
      const row = byName.get(name);
      if (row && row.state !== 'creating') continue;
      // Unknown to the database, or left in "creating" by a launch that never finished.
      try {
        await host.docker.getContainer(c.Id).remove({ force: true });
        report.removedOrphans.push(`${host.name}/${name}`);
      } catch (err) {
        log.warn({ host: host.name, container: name, err: errorMessage(err) }, 'could not remove an orphan container');
      }
      const allocationId = Number(c.Labels[LABEL.allocation]);
      if (Number.isInteger(allocationId) && allocationId > 0) await release(db, allocationId, 'launch did not finish');
      if (row) await db.container.update({ where: { id: row.id }, data: { state: 'removed', removedAt: now, name: `#${row.id}:${row.name}` } });
    }

    for (const row of rows) {
      if (deps.launching.has(row.name)) continue;
      const live = onHost.get(row.name);
      if (!live && row.state !== 'creating') {
        if (row.allocationId) await release(db, row.allocationId, 'container gone');
        await db.container.update({ where: { id: row.id }, data: { state: 'removed', removedAt: now, name: `#${row.id}:${row.name}` } });
        report.goneContainers.push(`${host.name}/${row.name}`);
      } else if (!live && row.state === 'creating') {
        if (row.allocationId) await release(db, row.allocationId, 'launch did not finish');
        await db.container.update({ where: { id: row.id }, data: { state: 'removed', removedAt: now, name: `#${row.id}:${row.name}` } });
        report.removedOrphans.push(`${host.name}/${row.name}`);
      } else if (live && row.state === 'running' && live.State !== 'running') {
        if (row.allocationId) await release(db, row.allocationId, 'container exited');
        await db.container.update({ where: { id: row.id }, data: { state: 'stopped', stoppedAt: now, allocationId: null } });
        report.exitedContainers.push(`${host.name}/${row.name}`);
        await deps.notify(
          row.userId,
          reply('info', `Your container ${row.name} on ${host.name} has ended`, [
            { type: 'text', text: `Its GPUs (${row.gpuIndexes}) went back to the pool. Its files stay; "logs ${row.name}" shows what it printed.` },
            { type: 'actions', actions: [{ id: 'logs', label: 'Logs', command: `logs ${row.name}` }, { id: 'rm', label: 'Remove', command: `rm ${row.name}`, style: 'danger', confirm: `Remove ${row.name}? Files in the workspace stay.` }] },
          ]),
        );
      }
    }
  }

  // Allocations for containers that were never recorded (killed between allocation and row).
  const stray = await db.allocation.findMany({ where: { kind: 'container', state: 'active', container: null } });
  for (const a of stray) {
    if (!answered.has(a.hostName)) continue;
    if (now.getTime() - a.createdAt.getTime() < 60_000 && deps.launching.size > 0) continue;
    await release(db, a.id, 'no container');
    report.releasedAllocations.push(a.id);
  }

  const changed = report.removedOrphans.length + report.goneContainers.length + report.exitedContainers.length + report.releasedAllocations.length;
  if (changed) {
    log.warn({ ...report }, 'reconciled hosts and database');
    await audit(db, { actor: 'gpubot', action: 'reconcile', result: 'ok', detail: JSON.stringify(report) });
  }
  return report;
}
