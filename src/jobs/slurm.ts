import { reply } from '../core/reply.js';
import type { SlurmJob } from '../hosts/slurm.js';
import type { OpsDeps } from '../operations/deps.js';
import { isActive, jobOwner, jobWaited, recordJobs } from '../operations/slurm.js';
import type { Job } from './job.js';

/** Last state seen per job id, per app: transitions since the last round become DMs. */
const seen = new WeakMap<OpsDeps, Map<string, string>>();

/** COMPLETED -> finished (exit 0); FAILED -> failed (exit 3); TIMEOUT -> hit its time limit. */
function endText(job: SlurmJob, exitCode: string | undefined): string {
  const code = exitCode?.split(':')[0];
  if (job.state === 'COMPLETED') return `finished (exit ${code ?? 0})`;
  if (job.state === 'TIMEOUT') return 'hit its time limit and was ended';
  if (job.state === 'CANCELLED') return 'was cancelled';
  return `${job.state.toLowerCase().replace(/_/g, ' ')}${code !== undefined && code !== '0' ? ` (exit ${code})` : ''}`;
}

/**
 * gpubot's jobs on the Slurm cluster as events: started (after how long in the queue) and ended
 * (how), each told to its owner by DM. The first round after a start only records what it sees.
 */
export const slurmJob: Job = {
  name: 'slurm',
  description: 'Tell owners when their Slurm jobs start and end, and record their GPU-hours (squeue polling).',
  async run(deps) {
    const slurm = deps.slurm;
    if (!slurm) return 'no Slurm cluster configured';
    const listedAt = deps.now();
    const jobs = (await slurm.jobs()).flatMap((job) => {
      const owner = jobOwner(deps, job);
      return owner ? [{ job, owner }] : [];
    });
    await recordJobs(deps, slurm, jobs, listedAt);
    const first = !seen.has(deps);
    const last = seen.get(deps) ?? new Map<string, string>();
    const next = new Map<string, string>();
    let told = 0;
    for (const { job, owner } of jobs) {
      next.set(job.id, job.state);
      const before = last.get(job.id);
      if (first || before === job.state) continue;
      const user = await deps.db.user.findUnique({ where: { handle: owner } });
      if (!user) continue;
      if (job.state === 'RUNNING' && (before === undefined || before === 'PENDING')) {
        const waited = jobWaited(job);
        await deps.notify(
          user.id,
          reply('info', `${job.name} started on ${job.nodes}${waited ? ` after ${waited} in the queue` : ''}`, [{ type: 'text', text: `Slurm job ${job.id} on ${slurm.name}.` }]),
        );
        told++;
      } else if (!isActive(job) && (before === undefined || ['PENDING', 'RUNNING', 'COMPLETING', 'CONFIGURING'].includes(before))) {
        const detail = await slurm.job(job.id).catch(() => undefined);
        const how = endText(job, detail?.ExitCode);
        await deps.notify(
          user.id,
          reply(job.state === 'COMPLETED' ? 'info' : 'warning', `${job.name} ${how}`, [
            { type: 'text', text: `Slurm job ${job.id} on ${slurm.name}, after ${job.timeUsed}. "logs ${job.name}" shows its output.` },
          ]),
        );
        told++;
      }
    }
    seen.set(deps, next);
    return `${jobs.length} gpubot job(s) on ${slurm.name}, ${told} owner(s) told`;
  },
};
