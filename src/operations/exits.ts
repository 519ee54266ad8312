import { duration } from '../core/format.js';
import { reply, type Reply } from '../core/reply.js';
import { markStopped } from '../db/containers.js';
import type { Container } from '../db/client.js';
import { sendOnce } from '../db/notices.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import type { ContainerEvent } from '../hosts/host-monitor.js';
import { LABEL } from '../hosts/labels.js';
import type { ContainerSummary } from '../hosts/runtime.js';
import { errorMessage } from '../util/errors.js';
import type { OpsDeps } from './deps.js';

/** After a kill (someone's stop, the expiry or idle job), whoever stopped it records it; this only catches what nobody records. */
const KILLED_GRACE_MS = 5_000;
const LAUNCH_RETRY_MS = 1_000;
const LAUNCH_RETRIES = 30;
const LOG_LINES = 20;
const MAX_LOG_CHARS = 3000;

export interface ExitInfo {
  exitCode: number | null;
  oom: boolean;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** How long it ran: seconds for a short run, else "3 h 12 min". */
const ranFor = (ms: number): string => (ms < 60_000 ? `${Math.max(1, Math.round(ms / 1000))} s` : duration(ms));
// An end a little before the start is clock granularity (an event stamped in whole seconds, say), not an unknown time.
const ranTime = (exit: ExitInfo): string | undefined => (exit.startedAt && exit.finishedAt ? ranFor(Math.max(0, exit.finishedAt.getTime() - exit.startedAt.getTime())) : undefined);

const signalName: Record<number, string> = { 130: 'interrupted', 134: 'aborted', 137: 'killed', 139: 'segmentation fault', 143: 'terminated' };

/** "exp1 finished (exit 0) after 3 h 12 min" or "exp1 crashed (exit 137, out of memory)". */
export function endedTitle(name: string, exit: ExitInfo): string {
  const ran = ranTime(exit);
  if (exit.exitCode === 0 && !exit.oom) return `${name} finished (exit 0)${ran ? ` after ${ran}` : ''}`;
  const why = exit.oom ? 'out of memory' : exit.exitCode !== null ? signalName[exit.exitCode] : undefined;
  return `${name} crashed (exit ${exit.exitCode ?? '?'}${why ? `, ${why}` : ''})`;
}

export function endedReply(row: Pick<Container, 'name' | 'hostName' | 'gpuIndexes'>, exit: ExitInfo, logs: string | null): Reply {
  const ran = ranTime(exit) ? ` after ${ranTime(exit)}` : '';
  return reply(exit.exitCode === 0 && !exit.oom ? 'info' : 'warning', endedTitle(row.name, exit), [
    { type: 'text', text: `It ended on ${row.hostName}${exit.exitCode === 0 ? '' : ran}; its GPUs (${row.gpuIndexes}) went back to the pool. Its files stay.` },
    ...(logs === null ? [] : [{ type: 'code' as const, text: logs.trimEnd() || '(no output)' }]),
    {
      type: 'actions',
      actions: [
        { id: 'logs', label: 'Logs', command: `logs ${row.name}` },
        { id: 'rm', label: 'Remove', command: `rm ${row.name}`, style: 'danger', confirm: `Remove ${row.name}? Files in the workspace stay.` },
      ],
    },
  ]);
}

async function exitOf(host: GpuHost, id: string, fallback: Partial<ExitInfo>): Promise<ExitInfo> {
  try {
    const info = await host.runtime.inspect(id);
    return {
      exitCode: info.exitCode ?? fallback.exitCode ?? null,
      oom: info.oomKilled === true || fallback.oom === true,
      startedAt: info.startedAt ?? fallback.startedAt ?? null,
      finishedAt: info.finishedAt ?? fallback.finishedAt ?? null,
    };
  } catch {
    return { exitCode: fallback.exitCode ?? null, oom: fallback.oom ?? false, startedAt: fallback.startedAt ?? null, finishedAt: fallback.finishedAt ?? null };
  }
}

async function lastLogLines(host: GpuHost, id: string): Promise<string | null> {
  try {
    const text = await host.runtime.logs(id, LOG_LINES);
    return text.length > MAX_LOG_CHARS ? text.slice(-MAX_LOG_CHARS) : text;
  } catch {
    return null;
  }
}

/**
 * Tells a container's owner it ended, once per run: the die event and reconciliation (and any
 * second process) share the notice key, so whichever notices first sends the only message.
 */
export async function tellEnded(deps: OpsDeps, row: Container, host: GpuHost, dockerId: string, fallback: Partial<ExitInfo> = {}): Promise<void> {
  const key = `ended:${row.id}:${row.allocationId ?? row.updatedAt.toISOString()}`;
  await sendOnce(deps.db, key, row.userId, async () => {
    const [exit, logs] = await Promise.all([exitOf(host, dockerId, { startedAt: row.createdAt, finishedAt: deps.now(), ...fallback }), lastLogLines(host, dockerId)]);
    await deps.notify(row.userId, endedReply(row, exit, logs));
  });
}

/**
 * Frees the GPUs of a gpubot container the moment its host says it exited, and tells its owner.
 * A container that was killed (stopped by a command or a job) is left to whoever stopped it for a
 * few seconds; one being launched is waited for.
 */
export function exitWatcher(deps: OpsDeps) {
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const later = (ms: number, work: () => Promise<void>) => {
    if (closed) return;
    const t = setTimeout(() => {
      timers.delete(t);
      void work();
    }, ms);
    t.unref();
    timers.add(t);
  };

  async function ended(hostName: string, dockerId: string, name: string, fallback: Partial<ExitInfo>, attempt = 0): Promise<void> {
    if (closed) return;
    const host = deps.pool.get(hostName);
    if (!host) return;
    try {
      if (deps.launching.has(name)) {
        if (attempt < LAUNCH_RETRIES) later(LAUNCH_RETRY_MS, () => ended(hostName, dockerId, name, fallback, attempt + 1));
        return;
      }
      const row = await deps.db.container.findFirst({ where: { hostName, name, state: 'running' } });
      if (!row || (row.dockerId && row.dockerId !== dockerId)) return;
      // Only what the host shows now: a container started again since (start right after a stop) is running.
      const now = await host.runtime.inspect(dockerId).catch(() => null);
      if (!now || now.running) return;
      if (!(await markStopped(deps, row, 'container exited', deps.now(), true))) return;
      deps.log.info({ host: hostName, container: name, exitCode: fallback.exitCode }, 'container exited: GPUs freed');
      await tellEnded(deps, row, host, dockerId, fallback);
    } catch (err) {
      deps.log.warn({ host: hostName, container: name, err: errorMessage(err) }, 'could not record a container exit');
    }
  }

  return {
    onEvent(e: ContainerEvent): void {
      if (e.action !== 'die' || e.labels[LABEL.managed] !== 'true') return;
      const name = e.labels[LABEL.name] ?? e.name;
      const fallback = { exitCode: e.exitCode ?? null, oom: e.oom === true };
      if (e.killed) later(KILLED_GRACE_MS, () => ended(e.host, e.id, name, fallback));
      else void ended(e.host, e.id, name, fallback);
    },
    /** After a gap in the event stream: rows still running whose container has exited are handled as if the die event came. */
    onResync(hostName: string, list: ContainerSummary[]): void {
      void (async () => {
        const rows = await deps.db.container.findMany({ where: { hostName, state: 'running' } });
        for (const row of rows) {
          const c = list.find((x) => x.labels[LABEL.managed] === 'true' && (x.id === row.dockerId || x.labels[LABEL.name] === row.name));
          if (c && c.state !== 'running' && c.state !== 'restarting' && c.state !== 'created') await ended(hostName, c.id, row.name, {});
        }
      })().catch((err) => deps.log.warn({ host: hostName, err: errorMessage(err) }, 'resync after a gap failed'));
    },
    close(): void {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
