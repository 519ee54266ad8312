import { release } from '../db/allocations.js';
import { audit } from '../db/audit.js';
import { markRemoved, markStopped } from '../db/containers.js';
import { ContainerNotFound } from '../hosts/errors.js';
import { LABEL } from '../hosts/labels.js';
import { ensureStopped, type ContainerSummary } from '../hosts/runtime.js';
import { adopt } from './adopt.js';
import { failpoint } from '../operations/launch.js';
import type { OpsDeps } from '../operations/deps.js';
import { tellEnded } from '../operations/exits.js';
import { errorMessage } from '../util/errors.js';

export interface ReconcileReport {
  /** Containers of this installation made during a launch that never finished: removed. */
  removedOrphans: string[];
  /** Managed containers the database did not know (a new or restored database): recorded, GPUs leased. */
  adopted: string[];
  /** Containers of another gpubot installation: left alone (their GPUs show as held). */
  otherInstallations: string[];
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

/** Clock skew allowed between the bot and a host when matching a container to its launch. */
const CLOCK_SLACK_MS = 5 * 60_000;

/**
 * Puts the database and the hosts back in agreement, so a bot killed mid-launch leaks no GPU, and
 * never destroys what it does not own. The only container ever removed is one of this
 * installation whose launch row is still "creating" long after it began, made during that launch
 * (same name and allocation, created within the launch window): the user was told it failed.
 * Every other managed container the database does not know is adopted (owner, GPUs, image and end
 * time from its labels); another installation's are left alone. Nothing on a host that cannot
 * answer is touched. Rows are read before the host is asked, and every change is conditional on
 * the row being unchanged since, so a command finishing meanwhile wins.
 */
export async function reconcile(deps: OpsDeps): Promise<ReconcileReport> {
  const { db, log } = deps;
  const report: ReconcileReport = {
    removedOrphans: [],
    adopted: [],
    otherInstallations: [],
    goneContainers: [],
    exitedContainers: [],
    restopped: [],
    releasedAllocations: [],
    skippedHosts: [],
  };
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
    const byId = new Map(listed.map((c) => [c.id, c]));
    /** Docker ids a row accounts for: never adopted. */
    const claimed = new Set<string>();
    for (const r of rows) if (r.dockerId) claimed.add(r.dockerId);

    for (const row of rows) {
      if (!row.dockerId) {
        // A launch not recorded as finished: its container, if any, carries its name, allocation and our instance.
        const made = listed.filter(
          (c) =>
            c.labels[LABEL.name] === row.name &&
            row.allocationId !== null &&
            c.labels[LABEL.allocation] === String(row.allocationId) &&
            c.labels[LABEL.instance] === deps.instanceId,
        );
        for (const c of made) claimed.add(c.id);
        if (busy(row.name) || row.state !== 'creating' || !stale(row.updatedAt)) continue;
        const start = row.createdAt.getTime();
        const inWindow = made.filter((c) => c.createdAt.getTime() >= start - CLOCK_SLACK_MS && c.createdAt.getTime() <= start + CREATING_GRACE_MS);
        // Made outside the launch window, it is not this launch's: adopted below, never removed.
        for (const c of made) if (!inWindow.includes(c)) claimed.delete(c.id);
        let removedAll = true;
        for (const c of inWindow) {
          try {
            await host.runtime.remove(c.id, { force: true });
          } catch (err) {
            if (err instanceof ContainerNotFound) continue;
            removedAll = false;
            log.warn({ host: host.name, container: row.name, err: errorMessage(err) }, 'could not remove the container of an unfinished launch; its GPUs stay held');
          }
        }
        if (removedAll && (await markRemoved(deps, row, 'launch did not finish', now, true))) report.removedOrphans.push(`${host.name}/${row.name}`);
        continue;
      }
      if (busy(row.name)) continue;
      const live = byId.get(row.dockerId);
      if (!live) {
        if (await markRemoved(deps, row, 'container gone', now, true)) report.goneContainers.push(`${host.name}/${row.name}`);
      } else if (row.state === 'running' && live.state !== 'running') {
        if (await markStopped(deps, row, 'container exited', now, true)) {
          report.exitedContainers.push(`${host.name}/${row.name}`);
          // Fire and forget: a chat outage must not hold up reconciliation. The same notice as the
          // die event's, under the same key: the owner gets one message, whichever saw it first.
          void tellEnded(deps, row, host, live.id).catch(() => {});
        }
      } else if (row.state === 'stopped' && live.state === 'running') {
        try {
          if ((await ensureStopped(host.runtime, live.id)) === 'stopped') report.restopped.push(`${host.name}/${row.name}`);
        } catch (err) {
          log.warn({ host: host.name, container: row.name, err: errorMessage(err) }, 'could not stop a container that should be stopped');
        }
      }
    }

    for (const c of listed) {
      if (claimed.has(c.id)) continue;
      const label = c.labels[LABEL.name] ?? c.name;
      const instance = c.labels[LABEL.instance];
      if (instance && instance !== deps.instanceId) {
        report.otherInstallations.push(`${host.name}/${label}`);
        continue;
      }
      if (busy(label)) continue;
      try {
        const adopted = await adopt(deps, host.name, c, now);
        if (adopted) report.adopted.push(`${host.name}/${adopted}`);
        failpoint(deps, 'during-reconcile');
      } catch (err) {
        log.warn({ host: host.name, container: label, err: errorMessage(err) }, 'could not adopt a container; it is left as it is');
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

  const changed =
    report.adopted.length +
    report.removedOrphans.length +
    report.goneContainers.length +
    report.exitedContainers.length +
    report.restopped.length +
    report.releasedAllocations.length;
  if (changed) {
    log.warn({ ...report }, 'reconciled hosts and database');
    await audit(db, { actor: 'gpubot', action: 'reconcile', result: 'ok', detail: JSON.stringify(report) });
  }
  return report;
}
