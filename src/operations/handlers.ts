import type { Handlers } from '../core/engine.js';
import { adminCommand } from './admin.js';
import { keepContainer } from './keep.js';
import { showQuota } from './quota.js';
import { link } from './link.js';
import { queueCommand } from './queue.js';
import { containerLogs, extendContainer, removeContainer, startContainer, stopContainer } from './containers.js';
import type { OpsDeps } from './deps.js';
import { listImages } from './images.js';
import { listMine } from './ls.js';
import { releaseReservation, reserveGpus } from './reservations.js';
import { runContainer } from './run.js';
import { imageCommand } from './user-images.js';
import { showUsage } from './usage.js';
import { keyCommand, sshConfig } from './keys.js';
import { withSlurm } from './slurm.js';
import { dashboardCommand } from './dashboard.js';
import { statusChart, usageChart } from './charts.js';

/** The commands that read or change allocations and containers. */
export function createHandlers(deps: OpsDeps): Handlers {
  const handlers: Handlers = {
    run: (r, ctx) => runContainer(deps, r, ctx),
    reserve: (r, ctx) => reserveGpus(deps, r, ctx),
    release: (r, ctx) => releaseReservation(deps, r, ctx),
    ls: (r, ctx) => listMine(deps, r, ctx),
    stop: (r, ctx) => stopContainer(deps, r, ctx),
    start: (r, ctx) => startContainer(deps, r, ctx),
    rm: (r, ctx) => removeContainer(deps, r, ctx),
    logs: (r, ctx) => containerLogs(deps, r, ctx),
    extend: (r, ctx) => extendContainer(deps, r, ctx),
    images: (r) => listImages(deps, r),
    keep: (r, ctx) => keepContainer(deps, r, ctx),
    quota: (r, ctx) => showQuota(deps, r, ctx),
    link: (r, ctx) => link(deps, r, ctx),
    queue: (r, ctx) => queueCommand(deps, r, ctx),
    // Plain "status" is the engine's own; only the chart needs the database.
    status: (r) => statusChart(deps, r),
    usage: (r, ctx) => (r.chart ? usageChart(deps, r, ctx) : showUsage(deps, r, ctx)),
    admin: (r, ctx) => adminCommand(deps, r, ctx),
    image: (r, ctx) => imageCommand(deps, r, ctx),
    key: (r, ctx) => keyCommand(deps, r, ctx),
    'ssh-config': (r, ctx) => sshConfig(deps, r, ctx),
    dashboard: (r, ctx) => dashboardCommand(deps, r, ctx),
  };
  return deps.slurm ? withSlurm(deps, deps.slurm, handlers) : handlers;
}
