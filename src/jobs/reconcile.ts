import { reply } from '../core/reply.js';
import { release } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import { markRemoved, markStopped } from '../db/containers.js';
import { LABEL } from '../hosts/labels.js';
import { ensureStopped, type ContainerSummary } from '../hosts/runtime.js';
import type { OpsDeps } from '../operations/deps.js';
import { errorMessage } from '../util/errors.js';

export interface ReconcileReport {
  /** Managed containers the database did not know, or whose launch never finished: removed. */
  removedOrphans: string[];
  /** Rows whose container is gone from its host: marked removed, GPUs freed. */
  goneContainers: string[];
  /** Rows marked running whose container has exited: marked stopped, GPUs freed. */
  exitedContainers: string[];
  /** Rows marked stopped whose container runs anyway (holding GPUs without a lease): stopped. */
  restopped: string[];
  /** Active container allocations with no container at all: freed. */
  releasedAllocations: number[];
  /** Hosts that could not say; nothing on them was touched. */
  skippedHosts: string[];
}

/**
 * A launch in another gpubot process (a one-shot `gpubot chat`, say) looks like an abandoned one
 * from here; only this old is it taken for abandoned. Longer than a stalled pull may take.
 */
export const CREATING_GRACE_MS = 15 * 60_000;

/**
 * Puts the database and the hosts back in agreement, so a bot killed mid-launch leaks no GPU and
 * leaves no managed container unknown. Nothing on a host that cannot answer is touched: its
 * allocations stay held until the host itself says the container is gone. Rows are read before
 * the host is asked, and every change is conditional on the row being unchanged since, so a
 * command finishing meanwhile wins.
 */
export async function reconcile(deps: OpsDeps): Promise<ReconcileReport> {
  const { db, log } = deps;
  const report: ReconcileReport = { removedOrphans: [], goneContainers: [], exitedContainers: [], restopped: [], releasedAllocations: [], skippedHosts: [] };
  const now = deps.now();
  const answered = new Set<string>();
  const stale = (d: Date) => now.getTime() - d.getTime() > CREATING_GRACE_MS;
  const busy = (name: string) => deps.launching.has(name);

  for (const host of deps.pool.all()) {
    const rows = await db.container.findMany({ where: { hostName: host.name, state: { not: 'removed' } } });
    let listed: ContainerSummary[];
    try {
      if (host.connection().state !== 'up') throw new Error('down');
      listed = await host.runtime.listManaged();
    } catch {
      report.skippedHosts.push(host.name);
      continue;
    }
    answered.add(host.name);
    const byName = new Map(rows.map((r) => [r.name, r]));
    const onHost = new Map(listed.map((c) => [c.labels[LABEL.name] ?? c.name, c]));

    for (const [name, c] of onHost) {
      const row = byName.get(name);
      if (busy(name) || (row && (row.state !== 'creating' || !stale(row.updatedAt)))) continue;
      // Unknown to the database (a launch cut short before its row... or another database), or a
      // launch that never finished: the user was told it failed, so it goes.
      try {
        await host.runtime.remove(c.id, { force: true });
      } catch (err) {
        log.warn({ host: host.name, container: name, err: errorMessage(err) }, 'could not remove an orphan container; its GPUs stay held');
        continue;
      }
      report.removedOrphans.push(`${host.name}/${name}`);
      if (row) await markRemoved(deps, row, 'launch did not finish', now, true);
      else {
        const allocationId = Number(c.labels[LABEL.allocation]);
        if (Number.isInteger(allocationId) && allocationId > 0 && !deps.pendingAllocations.has(allocationId)) await release(deps.txDb, allocationId, 'launch did not finish', deps.now());
      }
    }

    for (const row of rows) {
      if (busy(row.name)) continue;
      const live = onHost.get(row.name);
      if (!live) {
        if (row.state === 'creating' && !stale(row.updatedAt)) continue;
        if (await markRemoved(deps, row, row.state === 'creating' ? 'launch did not finish' : 'container gone', now, true)) {
          (row.state === 'creating' ? report.removedOrphans : report.goneContainers).push(`${host.name}/${row.name}`);
        }
      } else if (row.state === 'running' && live.state !== 'running') {
        if (await markStopped(deps, row, 'container exited', now, true)) {
          report.exitedContainers.push(`${host.name}/${row.name}`);
          // Fire and forget: a chat outage must not hold up reconciliation.
          void deps
            .notify(
              row.userId,
              reply('info', `Your container ${row.name} on ${host.name} has ended`, [
                { type: 'text', text: `Its GPUs (${row.gpuIndexes}) went back to the pool. Its files stay; "logs ${row.name}" shows what it printed.` },
                { type: 'actions', actions: [{ id: 'logs', label: 'Logs', command: `logs ${row.name}` }, { id: 'rm', label: 'Remove', command: `rm ${row.name}`, style: 'danger', confirm: `Remove ${row.name}? Files in the workspace stay.` }] },
              ]),
            )
            .catch(() => {});
        }
      } else if (row.state === 'stopped' && live.state === 'running') {
        try {
          if ((await ensureStopped(host.runtime, live.id)) === 'stopped') report.restopped.push(`${host.name}/${row.name}`);
        } catch (err) {
          log.warn({ host: host.name, container: row.name, err: errorMessage(err) }, 'could not stop a container that should be stopped');
        }
      }
    }
  }

  // Allocations for containers that were never recorded (a process killed between the two).
  const stray = await db.allocation.findMany({ where: { kind: 'container', state: 'active', container: null } });
  for (const a of stray) {
    if (!answered.has(a.hostName) || deps.pendingAllocations.has(a.id) || !stale(a.createdAt)) continue;
    await release(deps.txDb, a.id, 'no container', deps.now());
    report.releasedAllocations.push(a.id);
  }

  const changed = report.removedOrphans.length + report.goneContainers.length + report.exitedContainers.length + report.restopped.length + report.releasedAllocations.length;
  if (changed) {
    log.warn({ ...report }, 'reconciled hosts and database');
    await audit(db, { actor: 'gpubot', action: 'reconcile', result: 'ok', detail: JSON.stringify(report) });
  }
  return report;
}
