import { reply } from '../core/reply.js';
import { sendOnce } from '../db/notices.js';
import type { SlurmJob } from '../hosts/slurm.js';
import { isActive, jobOwner, jobWaited, recordJobs } from '../operations/slurm.js';
import type { Job } from './job.js';

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
 * (how), each told to its owner by DM once, across restarts and processes (the notice ledger): a
 * job that started or ended while gpubot was down is told on the next round.
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
    let told = 0;
    for (const { job, owner } of jobs) {
      const running = job.state === 'RUNNING';
      if (!running && isActive(job)) continue;
      const user = await deps.db.user.findUnique({ where: { handle: owner } });
      if (!user) continue;
      const key = `slurm-${running ? 'start' : 'end'}:${slurm.name}:${job.id}`;
      const sent = await sendOnce(deps.db, key, user.id, async () => {
        if (running) {
          const waited = jobWaited(job);
          await deps.notify(
            user.id,
            reply('info', `${job.name} started on ${job.nodes}${waited ? ` after ${waited} in the queue` : ''}`, [{ type: 'text', text: `Slurm job ${job.id} on ${slurm.name}.` }]),
          );
          return;
        }
        const detail = await slurm.job(job.id).catch(() => undefined);
        await deps.notify(
          user.id,
          reply(job.state === 'COMPLETED' ? 'info' : 'warning', `${job.name} ${endText(job, detail?.ExitCode)}`, [
            { type: 'text', text: `Slurm job ${job.id} on ${slurm.name}, after ${job.timeUsed}. "logs ${job.name}" shows its output.` },
          ]),
        );
      });
      if (sent) told++;
    }
    return `${jobs.length} gpubot job(s) on ${slurm.name}, ${told} owner(s) told`;
  },
};
