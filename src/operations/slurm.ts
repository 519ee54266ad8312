import { randomBytes } from 'node:crypto';
import type { CommandContext, Handlers } from '../core/engine.js';
import { duration, isoMinute } from '../core/format.js';
import { imageAllowed } from '../core/policy/images.js';
import { checkRequest, quotaCode } from '../core/policy/quota.js';
import { refuse, reply, type Block, type Reply } from '../core/reply.js';
import type { Actor, Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { usageOf } from '../db/usage.js';
import { recordClusterJob, syncClusterJobs } from '../db/cluster-jobs.js';
import { HostUnavailable, Timeout } from '../hosts/errors.js';
import { shellWords, SlurmRefused, type SlurmCluster, type SlurmJob } from '../hosts/slurm.js';
import { errorMessage } from '../util/errors.js';
import type { OpsDeps } from './deps.js';

// The Slurm backend: `run --host CLUSTER` becomes an sbatch, and stop/rm/logs/extend/ls/queue act
// on gpubot's jobs there. Slurm is the record: a job is gpubot's when its comment carries this
// installation's marker, and a user's when the comment names them AND Slurm runs it as their
// mapped Unix user. Jobs without the marker are never touched.

type Req<K extends Request['command']> = Extract<Request, { command: K }>;

const MARKER = /^gpubot:([0-9a-f]{1,64}):([a-z0-9-]{1,36})$/;
const UNIX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
/** States in which a job still holds or waits for GPUs. */
const ACTIVE = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'RESIZING', 'SIGNALING', 'STAGE_OUT']);

export const isActive = (job: SlurmJob): boolean => ACTIVE.has(job.state);

/** The Unix user a gpubot user runs as on the cluster, or undefined when they have none. */
export function unixUserFor(deps: OpsDeps, handle: string): string | undefined {
  const cfg = deps.config.slurm!;
  const name = cfg.users[handle]?.unixUser ?? cfg.unixUser?.replace('{handle}', handle);
  return name !== undefined && UNIX_USER.test(name) ? name : undefined;
}

export const workspaceOf = (deps: OpsDeps, handle: string, unixUser: string): string =>
  deps.config.slurm!.workspace.replaceAll('{unixUser}', unixUser).replaceAll('{handle}', handle);

const markerFor = (deps: OpsDeps, handle: string): string => `gpubot:${deps.instanceId}:${handle}`;

/** The gpubot user a job belongs to, when it is this installation's. */
export function jobOwner(deps: OpsDeps, job: SlurmJob): string | undefined {
  const m = MARKER.exec(job.comment);
  return m && m[1] === deps.instanceId ? m[2] : undefined;
}

/** gpubot's jobs, each with its owner; everything else Slurm runs is left out. */
async function ourJobs(deps: OpsDeps, slurm: SlurmCluster): Promise<{ job: SlurmJob; owner: string }[]> {
  return (await slurm.jobs()).flatMap((job) => {
    const owner = jobOwner(deps, job);
    return owner ? [{ job, owner }] : [];
  });
}

/**
 * The record of gpubot's jobs (for the weekly GPU-hours) brought in line with a full listing
 * of them taken from `listedAt` on: starts, and ends with Slurm's own end time.
 */
export async function recordJobs(deps: OpsDeps, slurm: SlurmCluster, jobs: { job: SlurmJob; owner: string }[], listedAt: Date): Promise<void> {
  const seen = jobs.map(({ job, owner }) => ({
    jobId: job.id,
    handle: owner,
    gpus: job.gpus,
    submittedAt: job.submittedAt,
    startedAt: job.state === 'PENDING' ? undefined : job.startAt,
    endedAt: isActive(job) ? undefined : (job.endAt ?? listedAt),
  }));
  await syncClusterJobs(deps.db, slurm.name, seen, listedAt);
}

/** Slurm failures as replies: the cluster away, or Slurm's own refusal in its words. */
function failure(slurm: SlurmCluster, what: string, err: unknown, refusedCode: 'failed' | 'not-allowed' = 'failed'): Reply {
  if (err instanceof Timeout)
    return refuse('failed', `The cluster ${slurm.name} did not answer in time`, `${errorMessage(err)}. Slurm may still have done it: "ls" shows what it has.`);
  if (err instanceof HostUnavailable) return refuse('host-unavailable', `The cluster ${slurm.name} is not reachable`, `${errorMessage(err)}. Nothing was done.`);
  if (err instanceof SlurmRefused) return refuse(refusedCode, `Slurm refused to ${what}`, err.message);
  throw err;
}

const minutesOf = (limit: string): number | undefined => {
  // [D-]HH:MM:SS, MM:SS or MM
  const m = /^(?:(\d+)-)?(?:(\d+):)?(\d+)(?::(\d+))?$/.exec(limit);
  if (!m) return undefined;
  const [, d, a, b, c] = m;
  if (c !== undefined) return Number(d ?? 0) * 1440 + Number(a ?? 0) * 60 + Number(b) + Number(c) / 60;
  if (a !== undefined) return Number(d ?? 0) * 1440 + Number(a) + Number(b) / 60;
  return Number(d ?? 0) * 1440 + Number(b);
};

const stateText = (job: SlurmJob): string => {
  if (job.state === 'PENDING') return `pending (${job.reason})`;
  if (job.state === 'RUNNING') return `running on ${job.nodes}`;
  return job.state.toLowerCase();
};

const startText = (job: SlurmJob): string =>
  job.state === 'PENDING' ? (job.startAt ? `expected ${isoMinute(job.startAt)}` : 'no estimate yet') : job.startAt ? isoMinute(job.startAt) : '-';

/** What a job runs: a plain command, or (containers: docker) an image and a command in it. */
export interface JobPayload {
  cmd?: string[];
  container?: { image: string; shm: string; dockerSocket: string; mountPath: string };
}

/** The batch script: fixed text around validated values; every word from chat is single-quoted. */
export function batchScript(name: string, handle: string, workspace: string, payload: JobPayload): string {
  const head = ['#!/bin/bash', `# gpubot job ${name} for ${handle}`, `export HOME=${shellWords([workspace])}`];
  const c = payload.container;
  if (!c) return [...head, `exec ${shellWords(payload.cmd?.length ? payload.cmd : ['sleep', 'infinity'])}`, ''].join('\n');
  // The socket path is validated to [A-Za-z0-9_./-] and "{node}", which becomes the node the job landed on.
  const docker = `docker -H "unix://${c.dockerSocket.replaceAll('{node}', '${SLURMD_NODENAME}')}"`;
  const run = shellWords([
    '--rm',
    '--label',
    `gpubot.slurm-job=${name}`,
    '-v',
    `${workspace}:${c.mountPath}`,
    '-w',
    c.mountPath,
    '-e',
    `HOME=${c.mountPath}`,
    `--shm-size=${c.shm}`,
  ]);
  const image = shellWords([c.image, ...(payload.cmd ?? [])]);
  // The GPUs are the allocation's (CUDA_VISIBLE_DEVICES from Slurm's gres); a cancelled job stops its container.
  return [
    ...head,
    'cname="gpubot-slurm-$SLURM_JOB_ID"',
    `${docker} run ${run} --name "$cname" --user "$(id -u):$(id -g)" --gpus "\\"device=$CUDA_VISIBLE_DEVICES\\"" ${image} &`,
    'pid=$!',
    `trap '${docker} stop -t 10 "$cname" >/dev/null 2>&1' TERM INT`,
    'wait "$pid"; code=$?',
    'while kill -0 "$pid" 2>/dev/null; do wait "$pid"; code=$?; done',
    'exit "$code"',
    '',
  ].join('\n');
}

/**
 * What run and reserve check before anything reaches Slurm: a mapped Unix user, the user's jobs as of
 * now (recorded, so the weekly GPU-hours count them up to this moment), the cluster's longest job, and
 * gpubot's own limits over the GPUs held on the hosts plus those of the user's jobs still in Slurm.
 */
async function admit(
  deps: OpsDeps,
  slurm: SlurmCluster,
  actor: Actor,
  gpus: number,
  askedHours: number | undefined,
): Promise<Reply | { unixUser: string; jobs: Awaited<ReturnType<typeof ourJobs>>; hours: number }> {
  const cfg = deps.config.slurm!;
  const unixUser = unixUserFor(deps, actor.handle);
  if (!unixUser)
    return refuse(
      'not-allowed',
      `You have no Unix user on ${slurm.name}`,
      'An admin maps chat users to cluster users under slurm.users (unixUser) or slurm.unixUser in the config.',
    );
  let jobs;
  const listedAt = deps.now();
  try {
    jobs = await ourJobs(deps, slurm);
  } catch (err) {
    return failure(slurm, 'list jobs', err);
  }
  await recordJobs(deps, slurm, jobs, listedAt);
  const usage = await usageOf(deps.db, deps.config, actor.userId, actor.handle, deps.now());
  const hours = askedHours ?? Math.min(cfg.defaultHours, cfg.maxHours, usage.limits.maxHours);
  if (hours > cfg.maxHours)
    return refuse('over-quota', 'That is longer than the cluster allows', `${slurm.name} takes jobs of at most ${cfg.maxHours} h; you asked for ${hours} h.`);
  const heldOnCluster = jobs.filter(({ job, owner }) => owner === actor.handle && isActive(job)).reduce((n, { job }) => n + job.gpus, 0);
  const quota = checkRequest(usage.limits, usage.heldGpus + heldOnCluster, gpus, hours, usage.used);
  if (!quota.ok) return refuse(quotaCode(quota.limit), 'Over your quota', `${quota.reason}.`);
  return { unixUser, jobs, hours };
}
export async function runOnSlurm(deps: OpsDeps, slurm: SlurmCluster, req: Req<'run'>, { actor, progress }: CommandContext): Promise<Reply> {
  const cfg = deps.config.slurm!;
  const docker = cfg.containers === 'docker';
  if (req.jupyter) return refuse('invalid', `--jupyter does not apply on ${slurm.name}`, 'JupyterLab needs the SSH gateway into a host container.');
  if (!docker && (req.image !== undefined || req.shm !== undefined))
    return refuse('invalid', `--image and --shm do not apply on ${slurm.name}`, 'The cluster runs plain commands (slurm.containers: none); give the command after "--".');
  const image = req.image ?? deps.config.images.default;
  if (docker && !imageAllowed(image, deps.config.images.allowed))
    return refuse('not-allowed', 'That image is not allowed', `${image} is not on the allow-list: ${deps.config.images.allowed.join(', ')}`);
  const admitted = await admit(deps, slurm, actor, req.gpus, req.hours);
  if ('tone' in admitted) return admitted;
  const { unixUser, jobs, hours } = admitted;
  const name = req.name ?? `${actor.handle}-${randomBytes(2).toString('hex')}`;
  if (jobs.some(({ job }) => job.name === name && isActive(job)) || (await deps.db.container.findFirst({ where: { name, state: { not: 'removed' } } })))
    return refuse('conflict', `The name "${name}" is taken`, 'Pick another --name, or stop the old job with "stop".');

  const workspace = workspaceOf(deps, actor.handle, unixUser);
  await progress(`Submitting ${name} to ${slurm.name}`);
  let id: string;
  try {
    id = await slurm.submit({
      name,
      unixUser,
      gpus: req.gpus,
      minutes: Math.max(1, Math.ceil(hours * 60)),
      comment: markerFor(deps, actor.handle),
      workdir: workspace,
      script: batchScript(name, actor.handle, workspace, {
        cmd: req.cmd,
        container: docker ? { image, shm: req.shm ?? deps.config.storage.shmSize, dockerSocket: cfg.dockerSocket, mountPath: deps.config.storage.mountPath } : undefined,
      }),
    });
  } catch (err) {
    await audit(deps.db, { actor: actor.handle, action: 'run', target: name, result: 'refused', detail: `${slurm.name}: ${errorMessage(err)}` });
    return failure(slurm, `take ${name}`, err, 'not-allowed');
  }
  await recordClusterJob(deps.db, slurm.name, { jobId: id, handle: actor.handle, gpus: req.gpus, submittedAt: deps.now() });
  await audit(deps.db, { actor: actor.handle, action: 'run', target: name, result: 'ok', detail: `${slurm.name} job ${id} as ${unixUser}, ${req.gpus} GPU(s), ${hours} h` });
  deps.log.info({ job: id, container: name, unixUser, gpus: req.gpus }, 'Slurm job submitted');
  const job = await slurm
    .jobs()
    .then((all) => all.find((j) => j.id === id))
    .catch(() => undefined);
  const fields = [
    { label: 'Job', value: id },
    { label: 'State', value: job ? stateText(job) : 'submitted' },
    { label: 'GPUs', value: String(req.gpus) },
    { label: 'Time limit', value: `${hours} h` },
    { label: 'Runs as', value: unixUser },
    ...(docker ? [{ label: 'Image', value: image }] : []),
    { label: 'Output', value: `${workspace}/gpubot-${name}-${id}.out` },
  ];
  if (job?.state === 'PENDING') fields.push({ label: 'Start', value: startText(job) });
  return reply(
    'success',
    `${name} is job ${id} on ${slurm.name}${job?.state === 'PENDING' ? `, waiting: ${job.reason}` : job?.state === 'RUNNING' ? `, running on ${job.nodes}` : ''}`,
    [
      { type: 'fields', fields },
      { type: 'actions', actions: [{ id: 'stop', label: 'Stop', command: `stop ${name}`, style: 'danger', confirm: `Cancel job ${id} (${name})?` }] },
    ],
  );
}

/** The job name of an allocation made by `reserve` (they are numbered by their job id). */
export const RESERVATION = 'gpubot-reserve';

/** `reserve N --host CLUSTER`: a Slurm allocation (salloc --no-shell), granted now or refused. */
export async function reserveOnSlurm(deps: OpsDeps, slurm: SlurmCluster, req: Req<'reserve'>, actor: Actor): Promise<Reply> {
  const admitted = await admit(deps, slurm, actor, req.gpus, req.hours);
  if ('tone' in admitted) return admitted;
  const { unixUser, hours } = admitted;
  let id: string;
  try {
    id = await slurm.allocate({
      name: RESERVATION,
      unixUser,
      gpus: req.gpus,
      minutes: Math.max(1, Math.ceil(hours * 60)),
      comment: markerFor(deps, actor.handle),
      workdir: workspaceOf(deps, actor.handle, unixUser),
    });
  } catch (err) {
    return failure(slurm, `allocate ${req.gpus} GPU(s) now`, err, 'not-allowed');
  }
  await recordClusterJob(deps.db, slurm.name, { jobId: id, handle: actor.handle, gpus: req.gpus, submittedAt: deps.now() });
  await audit(deps.db, {
    actor: actor.handle,
    action: 'reserve',
    target: id,
    result: 'ok',
    detail: `${slurm.name} salloc job ${id} as ${unixUser}, ${req.gpus} GPU(s), ${hours} h`,
  });
  const job = (await slurm.jobs().catch(() => [])).find((j) => j.id === id);
  return reply('success', `Allocated ${req.gpus} GPU${req.gpus === 1 ? '' : 's'} on ${slurm.name}${job?.nodes ? ` (${job.nodes})` : ''} for ${hours} h: job ${id}`, [
    { type: 'text', text: 'A Slurm allocation with no command: use it from the login node with' },
    { type: 'code', text: `srun --jobid=${id} --pty bash` },
    { type: 'actions', actions: [{ id: 'release', label: 'Release', command: `release ${id}`, style: 'danger', confirm: `Give back the allocation ${id}?` }] },
  ]);
}

/** `release JOBID` / `release all` for the cluster's allocations (scancel as the owner's user). */
export async function releaseOnSlurm(deps: OpsDeps, slurm: SlurmCluster, target: number | 'all', actor: Actor): Promise<Reply | undefined> {
  let jobs;
  try {
    jobs = (await ourJobs(deps, slurm)).filter(({ job }) => job.name === RESERVATION && isActive(job));
  } catch (err) {
    return failure(slurm, 'list allocations', err);
  }
  const mine = (owner: string, user: string) => owner === actor.handle && user === unixUserFor(deps, actor.handle);
  const chosen = target === 'all' ? jobs.filter(({ job, owner }) => mine(owner, job.user)) : jobs.filter(({ job }) => job.id === String(target));
  if (target !== 'all' && !chosen.length) return undefined;
  for (const { job, owner } of chosen) {
    if (!mine(owner, job.user) && !actor.isAdmin) return refuse('not-owner', `Allocation ${job.id} belongs to ${owner}`, 'Only they or an admin can release it.');
    try {
      await slurm.cancel(job.id, job.user);
    } catch (err) {
      return failure(slurm, `release ${job.id}`, err);
    }
    await audit(deps.db, { actor: actor.handle, action: 'release', target: job.id, result: 'ok', detail: `${slurm.name} scancel ${job.id}` });
  }
  if (!chosen.length) return undefined;
  return reply('success', `Released ${chosen.map(({ job }) => `allocation ${job.id}`).join(', ')} on ${slurm.name}`);
}

/** The one job a command names: the user's own (admins: anyone's), never a job gpubot did not start. */
async function findJob(deps: OpsDeps, slurm: SlurmCluster, actor: Actor, name: string): Promise<{ job: SlurmJob; owner: string } | Reply> {
  let jobs;
  try {
    jobs = await ourJobs(deps, slurm);
  } catch (err) {
    return failure(slurm, 'list jobs', err);
  }
  const isMine = ({ job, owner }: { job: SlurmJob; owner: string }) => owner === actor.handle && job.user === unixUserFor(deps, actor.handle);
  // Ended jobs may share a name: the asker's own come first.
  const all = jobs.filter(({ job }) => job.name === name);
  const named = all.some(isMine) ? all.filter(isMine) : all;
  // The newest still active, else the newest ended one.
  const pick = named.filter(({ job }) => isActive(job)).at(-1) ?? named.sort((a, b) => Number(a.job.id) - Number(b.job.id)).at(-1);
  if (!pick) return refuse('not-found', `You have no job "${name}" on ${slurm.name}`, '"ls" lists yours.');
  if (!isMine(pick) && !actor.isAdmin) return refuse('not-owner', `${name} is not yours`, `It belongs to ${pick.owner}.`);
  return pick;
}

export async function stopOnSlurm(deps: OpsDeps, slurm: SlurmCluster, name: string, command: 'stop' | 'rm', actor: Actor): Promise<Reply> {
  const found = await findJob(deps, slurm, actor, name);
  if ('tone' in found) return found;
  const { job, owner } = found;
  if (!isActive(job))
    return command === 'rm'
      ? reply('info', `${name} already ended (${job.state.toLowerCase()})`, [{ type: 'text', text: 'Slurm forgets it by itself.' }])
      : refuse('conflict', `${name} already ended (${job.state.toLowerCase()})`);
  try {
    // As the job's own Unix user (an admin's cancel too): Slurm checks ownership once more.
    await slurm.cancel(job.id, job.user);
  } catch (err) {
    return failure(slurm, `cancel ${name}`, err);
  }
  await audit(deps.db, {
    actor: actor.handle,
    action: command,
    target: name,
    result: 'ok',
    detail: `${slurm.name} scancel ${job.id}${owner !== actor.handle ? ` (owner ${owner})` : ''}`,
  });
  return reply('success', `${name} (job ${job.id}) is cancelled`, [
    { type: 'text', text: job.state === 'PENDING' ? 'It had not started.' : `It ran on ${job.nodes} for ${job.timeUsed}.` },
  ]);
}

export async function logsOnSlurm(deps: OpsDeps, slurm: SlurmCluster, req: Req<'logs'>, actor: Actor): Promise<Reply> {
  const found = await findJob(deps, slurm, actor, req.name);
  if ('tone' in found) return found;
  const { job, owner } = found;
  try {
    const detail = await slurm.job(job.id);
    const out = detail?.StdOut;
    const unixUser = unixUserFor(deps, owner);
    // Only a file inside the owner's workspace, read as the job's Unix user.
    if (!out || !unixUser || job.user !== unixUser || !out.startsWith(`${workspaceOf(deps, owner, unixUser)}/`) || out.includes('/../'))
      return refuse('not-found', `No output of ${req.name} to show`, "Its output file is not in its owner's workspace.");
    if (job.state === 'PENDING') return reply('info', `${req.name} has not started yet`, [{ type: 'text', text: `Waiting: ${job.reason}.` }]);
    const text = await slurm.tail(out, req.tail, job.user);
    return reply('info', `Last ${req.tail} lines of ${req.name} (job ${job.id})`, [{ type: 'code', text: text.trimEnd() || '(no output yet)' }]);
  } catch (err) {
    return failure(slurm, `read the output of ${req.name}`, err);
  }
}

export async function extendOnSlurm(deps: OpsDeps, slurm: SlurmCluster, req: Req<'extend'>, actor: Actor): Promise<Reply> {
  const found = await findJob(deps, slurm, actor, req.name);
  if ('tone' in found) return found;
  const { job, owner } = found;
  if (!isActive(job)) return refuse('conflict', `${req.name} already ended`);
  const current = minutesOf(job.timeLimit);
  if (current === undefined) return refuse('conflict', `${req.name} has no time limit to extend`, `Its limit is ${job.timeLimit}.`);
  const wanted = current + req.hours * 60;
  // The owner's own limit; an admin extending someone else's job is held to the cluster's only.
  const ownLimit = owner === actor.handle ? (await usageOf(deps.db, deps.config, actor.userId, owner, deps.now())).limits.maxHours : Infinity;
  const maxHours = Math.min(deps.config.slurm!.maxHours, ownLimit);
  if (wanted > maxHours * 60) return refuse('over-quota', 'That is longer than allowed', `${req.name} would run ${(wanted / 60).toFixed(1)} h in all; the limit is ${maxHours} h.`);
  try {
    await slurm.setTimeLimit(job.id, wanted);
  } catch (err) {
    return failure(slurm, `extend ${req.name}`, err);
  }
  await audit(deps.db, { actor: actor.handle, action: 'extend', target: req.name, result: 'ok', detail: `${slurm.name} job ${job.id} TimeLimit ${Math.ceil(wanted)} min` });
  return reply('success', `${req.name} may now run ${(wanted / 60).toFixed(1)} h in all`, [{ type: 'text', text: `Slurm time limit of job ${job.id}: ${Math.ceil(wanted)} min.` }]);
}

/** The user's jobs (or everyone's gpubot jobs) as a section for ls. */
export async function jobsSection(deps: OpsDeps, slurm: SlurmCluster, actor: Actor, all: boolean): Promise<Block | undefined> {
  let jobs;
  try {
    jobs = (await ourJobs(deps, slurm)).filter(({ owner }) => all || owner === actor.handle);
  } catch (err) {
    return { type: 'section', heading: `${slurm.name}: not reachable`, tone: 'error', blocks: [{ type: 'text', text: errorMessage(err) }] };
  }
  if (!jobs.length) return undefined;
  return {
    type: 'section',
    heading: `Jobs on ${slurm.name}`,
    blocks: [
      {
        type: 'table',
        columns: ['Name', ...(all ? ['Owner'] : []), 'Job', 'State', 'GPUs', 'Time', 'Start'],
        rows: jobs.map(({ job, owner }) => [job.name, ...(all ? [owner] : []), job.id, stateText(job), String(job.gpus), `${job.timeUsed} of ${job.timeLimit}`, startText(job)]),
      },
    ],
  };
}

/** The user's pending jobs with their place among all pending jobs of the partition, Slurm's reason and estimate. */
export async function queueSection(deps: OpsDeps, slurm: SlurmCluster, actor: Actor): Promise<Block | undefined> {
  let all;
  try {
    all = await slurm.jobs();
  } catch (err) {
    return { type: 'section', heading: `${slurm.name}: not reachable`, tone: 'error', blocks: [{ type: 'text', text: errorMessage(err) }] };
  }
  // squeue lists pending jobs in priority order: their place is the order here.
  const pending = all.filter((j) => j.state === 'PENDING' && j.partition === deps.config.slurm!.partition);
  const mine = pending.flatMap((job, i) => (jobOwner(deps, job) === actor.handle ? [{ job, place: i + 1 }] : []));
  if (!mine.length) return undefined;
  return {
    type: 'section',
    heading: `Waiting on ${slurm.name} (${pending.length} pending in ${deps.config.slurm!.partition})`,
    blocks: [
      {
        type: 'table',
        columns: ['Name', 'Job', 'Place', 'Reason', 'GPUs', 'Start'],
        rows: mine.map(({ job, place }) => [job.name, job.id, `${place} of ${pending.length}`, job.reason, String(job.gpus), startText(job)]),
      },
    ],
  };
}

/** The cluster's nodes for status: GPUs in use, drained and down nodes, the queue's length. */
export async function statusSection(deps: OpsDeps, slurm: SlurmCluster): Promise<Block> {
  try {
    const [nodes, jobs] = await Promise.all([slurm.nodes(), slurm.jobs()]);
    const gpus = nodes.reduce((n, x) => n + x.gpus, 0);
    const used = nodes.reduce((n, x) => n + x.gpusUsed, 0);
    const pending = jobs.filter((j) => j.state === 'PENDING').length;
    const unwell = nodes.filter((n) => /DRAIN|DOWN|FAIL|NOT_RESPONDING|\*/.test(n.state));
    return {
      type: 'section',
      heading: `${slurm.name} (Slurm): ${used}/${gpus} GPUs in use on ${nodes.length} nodes, ${pending} job(s) pending${unwell.length ? `, ${unwell.length} drained or down` : ''}`,
      tone: unwell.length ? 'warning' : undefined,
      blocks: [
        {
          type: 'table',
          columns: ['Node', 'State', 'GPUs in use', 'Reason'],
          rows: nodes.map((n) => [n.name, nodeState(n.state), `${n.gpusUsed}/${n.gpus}`, n.reason ?? '']),
        },
      ],
    };
  } catch (err) {
    return { type: 'section', heading: `${slurm.name} (Slurm): not reachable`, tone: 'error', blocks: [{ type: 'text', text: errorMessage(err) }] };
  }
}

/** MIXED+DRAIN -> drained (mixed); DOWN* -> down (not responding). */
function nodeState(state: string): string {
  const s = state.toLowerCase();
  if (s.includes('drain')) return `drained (${s.split('+')[0]!.replace('*', '')})`;
  if (s.startsWith('down')) return s.endsWith('*') ? 'down (not responding)' : 'down';
  return s.replace('*', ' (not responding)');
}

const withSection = (base: Reply, section: Block | undefined, emptyTitle: RegExp, title: string): Reply => {
  if (!section) return base;
  // "You have nothing" plus jobs on the cluster: the jobs are the answer.
  if (emptyTitle.test(base.title)) return { ...base, title, blocks: [section] };
  return { ...base, blocks: [...base.blocks, section] };
};

/**
 * Puts the cluster behind the same commands: run to it when asked for (--host NAME, or by
 * default with slurm.default), the other commands by name when no container has that name.
 */
export function withSlurm(deps: OpsDeps, slurm: SlurmCluster, base: Handlers): Handlers {
  const ownContainer = async (name: string) => (await deps.db.container.findFirst({ where: { name, state: { not: 'removed' } } })) !== null;
  const byName =
    <K extends 'stop' | 'rm' | 'logs' | 'extend'>(command: K, onSlurm: (r: Req<K>, ctx: CommandContext) => Promise<Reply>) =>
    async (r: Req<K>, ctx: CommandContext): Promise<Reply> => {
      const handler = base[command] as ((r: Req<K>, ctx: CommandContext) => Promise<Reply>) | undefined;
      if (handler && (await ownContainer((r as { name: string }).name))) return handler(r, ctx);
      return onSlurm(r, ctx);
    };
  return {
    ...base,
    run: (r, ctx) => {
      const toCluster = r.host === slurm.name || (r.host === undefined && deps.config.slurm!.default);
      return toCluster ? runOnSlurm(deps, slurm, r, ctx) : base.run!(r, ctx);
    },
    reserve: (r, ctx) => (r.host === slurm.name || (r.host === undefined && deps.config.slurm!.default) ? reserveOnSlurm(deps, slurm, r, ctx.actor) : base.reserve!(r, ctx)),
    release: async (r, ctx) => {
      // A reservation on the hosts with that number comes first; else the cluster's allocation.
      if (r.target !== 'all' && (await deps.db.allocation.findFirst({ where: { id: r.target, kind: 'reservation', state: 'active' } }))) return base.release!(r, ctx);
      const onCluster = await releaseOnSlurm(deps, slurm, r.target, ctx.actor);
      if (r.target !== 'all') return onCluster ?? base.release!(r, ctx);
      const own = await base.release!(r, ctx);
      return onCluster ? { ...onCluster, blocks: [{ type: 'text', text: own.title }] } : own;
    },
    stop: byName('stop', (r, ctx) => stopOnSlurm(deps, slurm, r.name, 'stop', ctx.actor)),
    rm: byName('rm', (r, ctx) => stopOnSlurm(deps, slurm, r.name, 'rm', ctx.actor)),
    logs: byName('logs', (r, ctx) => logsOnSlurm(deps, slurm, r, ctx.actor)),
    extend: byName('extend', (r, ctx) => extendOnSlurm(deps, slurm, r, ctx.actor)),
    ls: async (r, ctx) => {
      const [own, section] = await Promise.all([base.ls!(r, ctx), jobsSection(deps, slurm, ctx.actor, r.all)]);
      return withSection(own, section, /^(You have no|Nobody holds)/, r.all ? `gpubot's jobs on ${slurm.name}` : `Your jobs on ${slurm.name}`);
    },
    admin: async (r, ctx) => {
      const own = await base.admin!(r, ctx);
      // The cluster beside the hosts, for admins only (a refusal carries a code).
      if (r.action !== 'hosts' || own.code) return own;
      return { ...own, blocks: [...own.blocks, await statusSection(deps, slurm)] };
    },
    queue: async (r, ctx) => {
      const own = await base.queue!(r, ctx);
      if (r.cancel !== undefined) return own;
      return withSection(own, await queueSection(deps, slurm, ctx.actor), /^(Nothing|You have nothing|The queue is empty|No )/i, `Your jobs waiting on ${slurm.name}`);
    },
  };
}

export const jobWaited = (job: SlurmJob): string | undefined =>
  job.startAt && job.submittedAt ? duration(Math.max(0, job.startAt.getTime() - job.submittedAt.getTime())) : undefined;
