/** Users' own images: "image build|logs|ls|rm", "run --image mine/NAME[:n]" and their housekeeping. */
import type { CommandContext } from '../core/engine.js';
import {
  checkDockerfile,
  DockerfileError,
  finalBase,
  hints,
  instructionText,
  ownBases,
  ownPrefix,
  parseDockerfile,
  withDefaultTag,
  type Dockerfile,
  type LayerInfo,
} from '../core/dockerfile.js';
import { DockerIgnore } from '../core/dockerignore.js';
import { duration, isoMinute } from '../core/format.js';
import { refuse, reply, type ProgressSink, type Reply } from '../core/reply.js';
import type { Actor, Request } from '../core/requests.js';
import { printable, sizeBytes } from '../core/validate.js';
import { audit } from '../db/audit.js';
import type { UserImage } from '../db/client.js';
import { drainedHosts } from '../db/hosts.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import { buildOnHost, copyImage, readWorkspaceFiles, type BuildStep } from '../hosts/image-build.js';
import { userDir } from '../hosts/container-spec.js';
import { errorMessage } from '../util/errors.js';
import type { OpsDeps } from './deps.js';

type ImageRequest = Extract<Request, { command: 'image' }>;

const MB = 1e6;
const GB = 1e9;
/** The most a build context may carry: data and checkpoints belong in .dockerignore. */
export const MAX_CONTEXT_BYTES = 8 * GB;
/** A lock older than the build time limit plus this is a leftover of a process that died. */
const STALE_LOCK_MS = 10 * 60_000;
const COPY_TIMEOUT_MS = 60 * 60_000;

export const size = (bytes: number | null | undefined): string =>
  bytes === null || bytes === undefined ? '?' : bytes >= GB ? `${(bytes / GB).toFixed(2)} GB` : `${(bytes / MB).toFixed(1)} MB`;

export const userImageTag = (handle: string, name: string, version: number): string => `${ownPrefix(handle)}${name}:${version}`;
const hostsOf = (row: Pick<UserImage, 'hosts'>): string[] => row.hosts.split(',').filter(Boolean);

export function imageCommand(deps: OpsDeps, req: ImageRequest, ctx: CommandContext): Promise<Reply> {
  switch (req.action) {
    case 'build':
      return buildImage(deps, req, ctx);
    case 'logs':
      return buildLog(deps, req, ctx.actor);
    case 'ls':
      return listUserImages(deps, ctx.actor);
    case 'rm':
      return removeUserImages(deps, req, ctx.actor);
  }
}

/** Builds in flight in this process, per host: the default host is the least busy one. */
const buildsOnHost = new Map<string, number>();

async function pickHost(deps: OpsDeps, actor: Actor, req: Extract<ImageRequest, { action: 'build' }>): Promise<GpuHost | Reply> {
  const drained = await drainedHosts(deps.db);
  if (req.host) {
    const host = deps.pool.get(req.host);
    if (!host) return refuse('not-found', `There is no host "${req.host}"`, `Known hosts: ${deps.pool.hostNames().join(', ')}`);
    if (drained.has(req.host)) return refuse('host-unavailable', `${req.host} is drained`, 'An admin took it out of service; build on another host.');
    if (host.connection().state !== 'up') return refuse('host-unavailable', `${req.host} cannot be reached`, host.connection().lastError ?? 'Try another host.');
    return host;
  }
  const usable = deps.pool.all().filter((h) => h.connection().state === 'up' && !drained.has(h.name));
  if (usable.length === 0) return refuse('host-unavailable', 'No host can build now', 'Every host is down or drained.');
  // The host that built this name before has its layers in cache.
  const previous = await deps.db.userImage.findFirst({ where: { userId: actor.userId, name: req.name, state: 'ready' }, orderBy: { version: 'desc' } });
  const again = usable.find((h) => h.name === previous?.hostName);
  if (again) return again;
  return usable.reduce((best, h) => ((buildsOnHost.get(h.name) ?? 0) < (buildsOnHost.get(best.name) ?? 0) ? h : best));
}

interface Budget {
  count: number;
  addedBytes: number;
}

async function budgetOf(deps: OpsDeps, userId: number): Promise<Budget> {
  const rows = await deps.db.userImage.findMany({ where: { userId, state: 'ready' }, select: { addedBytes: true } });
  return { count: rows.length, addedBytes: rows.reduce((n, r) => n + (r.addedBytes ?? 0), 0) };
}

function overBudget(deps: OpsDeps, budget: Budget, adding?: number): string | null {
  const { maxCount, maxGB } = deps.config.images.perUser;
  const count = budget.count + (adding === undefined ? 0 : 1);
  if (adding === undefined ? budget.count >= maxCount : count > maxCount)
    return `images.perUser.maxCount: you have ${budget.count} image(s); the limit is ${maxCount}. Remove one with "image rm NAME:n".`;
  const bytes = budget.addedBytes + (adding ?? 0);
  if (adding === undefined ? bytes >= maxGB * GB : bytes > maxGB * GB) {
    return `images.perUser.maxGB: your images add ${size(budget.addedBytes)}${adding === undefined ? '' : ` and this one ${size(adding)}`} on top of their bases; the limit is ${maxGB} GB. Remove some with "image rm NAME:n".`;
  }
  return null;
}

/** One build at a time per user, across processes: a row keyed by the user. */
async function takeBuildLock(deps: OpsDeps, userId: number): Promise<Date | Reply> {
  const startedAt = deps.now();
  const create = () => deps.db.imageBuildLock.create({ data: { userId, imageId: 0, startedAt } });
  try {
    await create();
    return startedAt;
  } catch (err) {
    if ((err as { code?: string }).code !== 'P2002') throw err;
  }
  const held = await deps.db.imageBuildLock.findUnique({ where: { userId } });
  const staleAfter = deps.config.images.build.timeoutMinutes * 60_000 + STALE_LOCK_MS;
  if (held && startedAt.getTime() - held.startedAt.getTime() > staleAfter) {
    // Only the process that still sees the same stale row takes it over.
    const { count } = await deps.db.imageBuildLock.deleteMany({ where: { userId, startedAt: held.startedAt } });
    if (count === 1) {
      try {
        await create();
        return startedAt;
      } catch (err) {
        if ((err as { code?: string }).code !== 'P2002') throw err;
      }
    }
  }
  const running = held?.imageId ? await deps.db.userImage.findUnique({ where: { id: held.imageId } }) : null;
  return refuse(
    'conflict',
    'You have a build running',
    `${running ? `${running.name}:${running.version} on ${running.hostName}, ` : ''}started ${held ? isoMinute(held.startedAt) : 'just now'}. One build at a time: wait for it to finish.`,
  );
}

const releaseBuildLock = (deps: OpsDeps, userId: number, startedAt: Date) => deps.db.imageBuildLock.deleteMany({ where: { userId, startedAt } });

async function buildImage(deps: OpsDeps, req: Extract<ImageRequest, { action: 'build' }>, { actor, progress }: CommandContext): Promise<Reply> {
  const budgetRefusal = overBudget(deps, await budgetOf(deps, actor.userId));
  if (budgetRefusal) return refuse('over-quota', 'Your image budget is used up', budgetRefusal);
  const host = await pickHost(deps, actor, req);
  if ('tone' in host) return host;
  const lock = await takeBuildLock(deps, actor.userId);
  if (!(lock instanceof Date)) return lock;
  buildsOnHost.set(host.name, (buildsOnHost.get(host.name) ?? 0) + 1);
  try {
    return await buildLocked(deps, req, actor, host, progress, lock);
  } finally {
    buildsOnHost.set(host.name, (buildsOnHost.get(host.name) ?? 1) - 1);
    await releaseBuildLock(deps, actor.userId, lock);
  }
}

async function buildLocked(deps: OpsDeps, req: Extract<ImageRequest, { action: 'build' }>, actor: Actor, host: GpuHost, progress: ProgressSink, lock: Date): Promise<Reply> {
  const { config } = deps;
  const dir = userDir(config, actor.handle);
  const shown = `${config.storage.mountPath}/${req.file}`;
  await progress(`reading ${shown} on ${host.name}`);
  let files;
  try {
    files = await readWorkspaceFiles(host, dir, [req.file, '.dockerignore'], config.timeouts.hostMs * 5);
  } catch (err) {
    const missing = /No such file or directory/.test(errorMessage(err));
    return refuse(
      missing ? 'not-found' : 'failed',
      `Could not read your workspace on ${host.name}`,
      missing ? `Your workspace ${config.storage.mountPath} is empty on ${host.name}: put a Dockerfile in it first.` : errorMessage(err),
    );
  }
  const parts = req.file.split('/');
  for (let i = 1; i < parts.length; i++) {
    const parent = files.get(parts.slice(0, i).join('/'));
    if (parent && parent.type !== 'directory')
      return refuse(
        'not-allowed',
        'That Dockerfile path is not allowed',
        `${config.storage.mountPath}/${parts.slice(0, i).join('/')} is a ${parent.type}, not a directory: the path must not go through links.`,
      );
  }
  const entry = files.get(req.file);
  if (!entry) return refuse('not-found', `There is no ${shown} on ${host.name}`, `Put a Dockerfile in your workspace (${config.storage.mountPath}) or name one with --file PATH.`);
  if (entry.type !== 'file') return refuse('not-allowed', `${shown} is not a plain file`, `It is a ${entry.type}; the Dockerfile must be a regular file in your workspace.`);
  const ignoreEntry = files.get('.dockerignore');
  if (ignoreEntry && ignoreEntry.type !== 'file')
    return refuse('not-allowed', '.dockerignore is not a plain file', `It is a ${ignoreEntry.type}; make it a regular file or remove it.`);

  let dockerfile: Dockerfile;
  try {
    dockerfile = parseDockerfile(entry.content!.toString('utf8'), req.buildArgs);
  } catch (err) {
    if (err instanceof DockerfileError) return refuse('invalid', `${shown} cannot be built`, err.message);
    throw err;
  }
  const problems = checkDockerfile(dockerfile, actor.handle, config.images.allowed, req.buildArgs);
  if (problems.length) {
    await audit(deps.db, { actor: actor.handle, action: 'image build', target: req.name, result: 'refused', detail: problems.join('; ').slice(0, 500) });
    return refuse('not-allowed', `${shown} is refused: nothing was built`, undefined, [
      { type: 'text', text: problems.map((p) => `• ${p}`).join('\n') },
      { type: 'text', text: `Allowed bases: ${config.images.allowed.join(', ')}, and your own images (gpubot/${actor.handle}/NAME:n).` },
    ]);
  }

  // The user's own bases must be on this host already: Docker would otherwise try Docker Hub.
  for (const tag of ownBases(dockerfile, actor.handle)) {
    const row = await deps.db.userImage.findUnique({ where: { tag } });
    if (!row || row.userId !== actor.userId || row.state !== 'ready')
      return refuse('not-found', `${shown} is refused: nothing was built`, `It uses ${tag}, which you do not have; see "image ls".`);
    await ensureUserImageOn(deps, host, row, progress);
  }

  const row = await newVersion(deps, actor, req.name, host.name);
  await deps.db.imageBuildLock.updateMany({ where: { userId: actor.userId, startedAt: lock }, data: { imageId: row.id } });
  const started = Date.now();
  await progress(`building ${row.tag} on ${host.name}`);
  let lastStep: BuildStep | undefined;
  const result = await buildOnHost(host, {
    dir,
    dockerfile: req.file,
    dockerfileContent: entry.content!,
    ignore: new DockerIgnore(ignoreEntry?.content?.toString('utf8') ?? ''),
    tag: row.tag,
    buildArgs: req.buildArgs,
    memoryBytes: sizeBytes(config.images.build.memory),
    cpus: config.images.build.cpus,
    timeoutMs: config.images.build.timeoutMinutes * 60_000,
    maxContextBytes: MAX_CONTEXT_BYTES,
    onStep: (step) => {
      lastStep = step;
      void Promise.resolve(progress(stepLine(step))).catch(() => {});
    },
  }).catch((err: unknown) => ({ ok: false as const, error: errorMessage(err), log: '', stepOutput: '', steps: [] as BuildStep[], failedStep: lastStep }));

  if (!result.ok) {
    await deps.db.userImage.update({ where: { id: row.id }, data: { state: 'failed', log: result.log, error: result.error.slice(0, 2000), finishedAt: deps.now() } });
    await audit(deps.db, { actor: actor.handle, action: 'image build', target: row.tag, result: 'error', detail: result.error.slice(0, 500) });
    const step = result.failedStep;
    const output = result.stepOutput.trimEnd().split('\n').slice(-40).join('\n');
    return refuse('failed', step ? `Build of ${row.tag} failed at step ${step.n}/${step.total}` : `Build of ${row.tag} failed`, undefined, [
      ...(step ? [{ type: 'text' as const, text: printable(step.instruction.slice(0, 300)) }] : []),
      ...(output ? [{ type: 'code' as const, text: output }] : []),
      { type: 'text', text: `${result.error.slice(0, 1000)}\nThe whole log: "image logs ${req.name}".` },
    ]);
  }

  let facts;
  try {
    facts = await host.runtime.imageFacts(row.tag);
  } catch (err) {
    // Built, but unreadable now: the row must not stay "building".
    await deps.db.userImage.update({
      where: { id: row.id },
      data: { state: 'failed', log: result.log, error: `built, but ${host.name} could not describe it: ${errorMessage(err)}`.slice(0, 2000), finishedAt: deps.now() },
    });
    throw err;
  }
  const base = finalBase(dockerfile);
  const noBase = { sizeBytes: 0, history: [] as unknown[] };
  const baseFacts = base === 'scratch' ? noBase : await host.runtime.imageFacts(withDefaultTag(base)).catch(() => noBase);
  const addedBytes = Math.max(0, facts.sizeBytes - baseFacts.sizeBytes);
  // Checked again now that the size is known (and another process may have built meanwhile).
  const budget = await budgetOf(deps, actor.userId);
  const over = overBudget(deps, budget, addedBytes);
  if (over) {
    await host.runtime.removeImage(row.tag).catch(() => {});
    await deps.db.userImage.update({ where: { id: row.id }, data: { state: 'failed', log: result.log, error: over, finishedAt: deps.now() } });
    return refuse('over-quota', `${row.tag} was built but is over your budget, so it was removed`, over);
  }
  await deps.db.userImage.update({
    where: { id: row.id },
    data: { state: 'ready', imageId: facts.id, sizeBytes: facts.sizeBytes, addedBytes, log: result.log, finishedAt: deps.now() },
  });
  await audit(deps.db, { actor: actor.handle, action: 'image build', target: row.tag, result: 'ok', detail: `${host.name} ${size(facts.sizeBytes)}` });

  const layers: LayerInfo[] = facts.history.map((h, i) => ({ createdBy: h.createdBy, size: h.sizeBytes, fromBase: i >= facts.history.length - baseFacts.history.length }));
  const largest = [...layers]
    .sort((a, b) => b.size - a.size)
    .slice(0, 3)
    .filter((l) => l.size > 0);
  const cached = result.steps.filter((s) => s.cached).length;
  const advice = hints(dockerfile, layers);
  return reply('success', `Built ${row.tag} on ${host.name}`, [
    {
      type: 'fields',
      fields: [
        { label: 'Image', value: row.tag },
        { label: 'Size', value: size(facts.sizeBytes) },
        { label: 'Added to the base', value: size(addedBytes) },
        { label: 'Steps', value: `${result.steps.length}, ${cached} from cache` },
        { label: 'Context', value: size(result.contextBytes) },
        { label: 'Took', value: duration(Date.now() - started) },
      ],
    },
    {
      type: 'table',
      columns: ['Layer size', 'Made by'],
      rows: largest.map((l) => [size(l.size), `${clip(instructionText(l.createdBy), 100)}${l.fromBase ? ' (base image)' : ''}`]),
    },
    ...(advice.length
      ? [{ type: 'section' as const, heading: 'Hints', tone: 'warning' as const, blocks: [{ type: 'text' as const, text: advice.map((a) => `• ${a}`).join('\n') }] }]
      : []),
    { type: 'text', text: `Run it: run --image mine/${req.name}:${row.version} (or mine/${req.name} for the newest). Build log: image logs ${req.name}.` },
  ]);
}

/** Chat-safe, one line, bounded. */
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g;
const clip = (text: string, max: number): string => {
  const one = text.replace(CONTROL, ' ').replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
};

export const stepLine = (step: BuildStep): string => `step ${step.n}/${step.total} · ${clip(step.instruction, 60)}${step.cached ? ' · cached' : ''}`;

/** The next version number of a name, claimed by inserting its row (the unique index settles races). */
async function newVersion(deps: OpsDeps, actor: Actor, name: string, hostName: string): Promise<UserImage> {
  for (let attempt = 0; ; attempt++) {
    const last = await deps.db.userImage.findFirst({ where: { userId: actor.userId, name }, orderBy: { version: 'desc' } });
    const version = (last?.version ?? 0) + 1;
    try {
      return await deps.db.userImage.create({
        data: { userId: actor.userId, name, version, tag: userImageTag(actor.handle, name, version), hostName, hosts: hostName, state: 'building' },
      });
    } catch (err) {
      if ((err as { code?: string }).code !== 'P2002' || attempt >= 3) throw err;
    }
  }
}

async function buildLog(deps: OpsDeps, req: Extract<ImageRequest, { action: 'logs' }>, actor: Actor): Promise<Reply> {
  const row = await deps.db.userImage.findFirst({ where: { userId: actor.userId, name: req.name }, orderBy: { version: 'desc' } });
  if (!row) return refuse('not-found', `You have no image called ${req.name}`, 'See "image ls", or build one with "image build NAME".');
  const MAX = 3500;
  const text = (row.log ?? '').trimEnd();
  const cut = text.length > MAX;
  return reply(row.state === 'failed' ? 'warning' : 'info', `Build log of ${row.tag} (${row.state})`, [
    { type: 'code', text: (cut ? text.slice(-MAX) : text) || '(no output)' },
    ...(cut ? [{ type: 'text' as const, text: `The last ${MAX} of ${text.length} characters.` }] : []),
    ...(row.error ? [{ type: 'text' as const, text: row.error }] : []),
  ]);
}

/** Tags in use by a container gpubot still knows (any state but removed). */
async function tagsInUse(deps: OpsDeps, tags: string[]): Promise<Map<string, string[]>> {
  const rows = await deps.db.container.findMany({ where: { image: { in: tags }, state: { not: 'removed' } }, select: { image: true, name: true } });
  const used = new Map<string, string[]>();
  for (const r of rows) used.set(r.image, [...(used.get(r.image) ?? []), r.name]);
  return used;
}

async function listUserImages(deps: OpsDeps, actor: Actor): Promise<Reply> {
  const rows = await deps.db.userImage.findMany({ where: { userId: actor.userId, state: { in: ['ready', 'building'] } }, orderBy: [{ name: 'asc' }, { version: 'desc' }] });
  if (rows.length === 0) return reply('info', 'You have no images of your own', [{ type: 'text', text: 'Build one from a Dockerfile in your workspace: image build NAME' }]);
  const used = await tagsInUse(
    deps,
    rows.map((r) => r.tag),
  );
  const budget = await budgetOf(deps, actor.userId);
  const { maxCount, maxGB } = deps.config.images.perUser;
  return reply('info', `Your images: ${budget.count} of ${maxCount}, adding ${size(budget.addedBytes)} of ${maxGB} GB`, [
    {
      type: 'table',
      columns: ['Tag', 'Size', 'Added', 'Created', 'Hosts', 'Used by'],
      rows: rows.map((r) => [
        r.tag,
        r.state === 'building' ? 'building' : size(r.sizeBytes),
        size(r.addedBytes),
        isoMinute(r.createdAt),
        hostsOf(r).join(','),
        (used.get(r.tag) ?? []).join(', ') || '-',
      ]),
    },
    { type: 'text', text: 'Run one: run --image mine/NAME[:n]. Remove one: image rm NAME[:n].' },
  ]);
}

/**
 * Removes one version from every host that holds it; never one a container uses (gpubot's rows
 * say so first, and Docker itself refuses an image a container was created from).
 */
async function removeVersion(deps: OpsDeps, row: UserImage): Promise<{ ok: true } | { ok: false; why: string }> {
  const left: string[] = [];
  const errors: string[] = [];
  for (const name of hostsOf(row)) {
    const host = deps.pool.get(name);
    if (!host) continue; // a host gone from the config holds nothing gpubot can reach
    if (host.connection().state !== 'up') {
      left.push(name);
      errors.push(`${name} is not reachable`);
      continue;
    }
    try {
      if ((await host.runtime.removeImage(row.tag)) !== 'in-use') continue;
      left.push(name);
      errors.push(`a container on ${name} uses it`);
    } catch (err) {
      left.push(name);
      errors.push(`${name}: ${errorMessage(err)}`);
    }
  }
  if (left.length) {
    await deps.db.userImage.update({ where: { id: row.id }, data: { hosts: left.join(',') } });
    return { ok: false, why: errors.join('; ') };
  }
  await deps.db.userImage.update({ where: { id: row.id }, data: { state: 'removed', hosts: '' } });
  return { ok: true };
}

async function removeUserImages(deps: OpsDeps, req: Extract<ImageRequest, { action: 'rm' }>, actor: Actor): Promise<Reply> {
  const rows = await deps.db.userImage.findMany({
    where: { userId: actor.userId, name: req.name, state: { in: ['ready', 'failed'] }, ...(req.version ? { version: req.version } : {}) },
    orderBy: { version: 'asc' },
  });
  const label = req.version ? `${req.name}:${req.version}` : req.name;
  if (rows.length === 0) return refuse('not-found', `You have no image ${label}`, 'See "image ls".');
  const used = await tagsInUse(
    deps,
    rows.map((r) => r.tag),
  );
  const removed: string[] = [];
  const kept: string[] = [];
  for (const row of rows) {
    if (row.state === 'failed') {
      await deps.db.userImage.update({ where: { id: row.id }, data: { state: 'removed' } });
      continue;
    }
    const users = used.get(row.tag);
    if (users) {
      kept.push(`${row.tag}: used by ${users.join(', ')} (remove the container first)`);
      continue;
    }
    const r = await removeVersion(deps, row);
    if (r.ok) removed.push(row.tag);
    else kept.push(`${row.tag}: ${r.why}`);
  }
  await audit(deps.db, { actor: actor.handle, action: 'image rm', target: label, result: kept.length ? 'refused' : 'ok', detail: [...removed, ...kept].join('; ').slice(0, 500) });
  if (removed.length === 0 && kept.length) return refuse('conflict', `Nothing was removed`, kept.join('\n'));
  return reply(
    kept.length ? 'warning' : 'success',
    removed.length ? `Removed ${removed.join(', ')}` : `Removed the failed build(s) of ${label}`,
    kept.length ? [{ type: 'text', text: `Kept:\n${kept.join('\n')}` }] : [],
  );
}

/**
 * "mine/NAME[:n]" or "gpubot/<handle>/NAME:n" → the user's image row; another user's gpubot/
 * image → a refusal; anything else → undefined (the allow-list decides).
 */
export async function resolveUserImage(deps: OpsDeps, actor: Actor, image: string): Promise<UserImage | Reply | undefined> {
  const hub = image.replace(/^(?:(?:index\.|registry-1\.)?docker\.io\/)/, '');
  let name: string;
  let version: number | undefined;
  const mine = /^mine\/([a-z0-9._-]+)(?::(\d{1,7}))?$/.exec(image);
  if (mine) {
    name = mine[1]!;
    version = mine[2] === undefined ? undefined : Number(mine[2]);
  } else if (hub.startsWith('gpubot/')) {
    const own = new RegExp(`^gpubot/${actor.handle}/([a-z0-9._-]+)(?::(\\d{1,7}))?$`).exec(hub);
    if (!own) return refuse('not-owner', 'That image is not yours', `${printable(image)} belongs to another user. Run your own with --image mine/NAME[:n]; "image ls" lists them.`);
    name = own[1]!;
    version = own[2] === undefined ? undefined : Number(own[2]);
  } else return undefined;
  const row = await deps.db.userImage.findFirst({ where: { userId: actor.userId, name, state: 'ready', ...(version ? { version } : {}) }, orderBy: { version: 'desc' } });
  if (!row) return refuse('not-found', `You have no image ${name}${version ? `:${version}` : ''}`, 'See "image ls", or build one with "image build NAME".');
  return row;
}

/** Makes sure the host holds the user's image, copying it from a host that does (with progress). */
export async function ensureUserImageOn(deps: OpsDeps, host: GpuHost, row: UserImage, progress: ProgressSink): Promise<void> {
  const holders = hostsOf(row);
  if (holders.includes(host.name) && (await host.runtime.hasImage(row.tag))) return;
  let source: GpuHost | undefined;
  for (const name of holders) {
    const h = deps.pool.get(name);
    if (name === host.name || !h || h.connection().state !== 'up') continue;
    if (await h.runtime.hasImage(row.tag).catch(() => false)) {
      source = h;
      break;
    }
  }
  if (!source) throw new Error(`${row.tag} is on ${holders.join(', ') || 'no host'}, and none of them can hand it over now`);
  const total = row.sizeBytes ?? 0;
  await progress(`copying ${row.tag} from ${source.name} to ${host.name} (${size(total)})`);
  let last = Date.now();
  const started = Date.now();
  await copyImage(
    source,
    host,
    row.tag,
    (bytes) => {
      if (Date.now() - last < 2000) return;
      last = Date.now();
      void Promise.resolve(progress(`copying ${row.tag} from ${source.name} to ${host.name}: ${size(bytes)}${total ? ` of about ${size(total)}` : ''}`)).catch(() => {});
    },
    COPY_TIMEOUT_MS,
  );
  if (!(await host.runtime.hasImage(row.tag))) throw new Error(`${row.tag} did not arrive on ${host.name}`);
  const fresh = await deps.db.userImage.findUnique({ where: { id: row.id } });
  const hosts = [...new Set([...hostsOf(fresh ?? row), host.name])];
  await deps.db.userImage.update({ where: { id: row.id }, data: { hosts: hosts.join(',') } });
  await progress(`copied ${row.tag} to ${host.name} in ${duration(Date.now() - started)}`);
}

/**
 * The cleanup job's part: of each name, the newest images.perUser.keep versions stay; older ones
 * go unless a container uses them. Also forgets builds left "building" by a process that died.
 */
export async function pruneUserImages(deps: OpsDeps): Promise<number> {
  const { keep } = deps.config.images.perUser;
  const staleBefore = new Date(deps.now().getTime() - deps.config.images.build.timeoutMinutes * 60_000 - STALE_LOCK_MS);
  await deps.db.userImage.updateMany({
    where: { state: 'building', createdAt: { lt: staleBefore } },
    data: { state: 'failed', error: 'the build never finished (the bot stopped?)' },
  });
  const rows = await deps.db.userImage.findMany({ where: { state: 'ready' }, orderBy: [{ userId: 'asc' }, { name: 'asc' }, { version: 'desc' }] });
  const seen = new Map<string, number>();
  const old: UserImage[] = [];
  for (const r of rows) {
    const key = `${r.userId}/${r.name}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > keep) old.push(r);
  }
  if (old.length === 0) return 0;
  const used = await tagsInUse(
    deps,
    old.map((r) => r.tag),
  );
  let removed = 0;
  for (const r of old) {
    if (deps.stopping()) break;
    if (used.has(r.tag)) continue;
    const result = await removeVersion(deps, r);
    if (result.ok) {
      removed++;
      await audit(deps.db, { actor: 'gpubot', action: 'image prune', target: r.tag, result: 'ok', detail: `older than the newest ${keep}` });
    } else deps.log.info({ image: r.tag, err: result.why }, 'old image kept for now');
  }
  return removed;
}
