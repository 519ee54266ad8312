import type { ProgressSink } from '../core/reply.js';
import type { Container } from '../db/client.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import { userDir } from '../hosts/container-spec.js';
import { LABEL } from '../hosts/labels.js';
import { markStopped } from '../db/containers.js';
import { ContainerNotFound } from '../hosts/errors.js';
import { ensureStopped } from '../hosts/runtime.js';
import { errorMessage } from '../util/errors.js';
import type { OpsDeps } from './deps.js';

/** Kills the process at a named point when GPUBOT_FAILPOINT says so (crash-recovery tests). */
export function failpoint(deps: Pick<OpsDeps, 'failpoint'>, name: string): void {
  if (deps.failpoint === name) process.kill(process.pid, 'SIGKILL');
}

/**
 * The user's directory on the host, made with a fixed argv (never a shell string). Skipped when
 * this process made it before; if it has gone since, Docker refuses the bind mount and
 * createAndStart makes it and tries once more.
 */
export async function ensureUserDir(deps: Pick<OpsDeps, 'config' | 'userDirs'>, host: GpuHost, handle: string, force = false): Promise<void> {
  const key = `${host.name}:${handle}`;
  if (!force && deps.userDirs.has(key)) return;
  const dir = userDir(deps.config, handle);
  const out = await host.run(['mkdir', '-p', '--', dir], 10_000);
  if (out.code !== 0) throw new Error(`could not create ${dir} on ${host.name}: ${out.stderr.trim() || `exit ${out.code}`}`);
  deps.userDirs.add(key);
}

const missingBindSource = (err: unknown): boolean => /bind source path does not exist/i.test(errorMessage(err));

export async function ensureImage(host: GpuHost, image: string, progress: ProgressSink): Promise<void> {
  if (await host.runtime.hasImage(image)) return;
  await progress(`${image} is not on ${host.name} yet: pulling it`);
  await host.runtime.pull(image, progress);
  await progress(`pulled ${image} on ${host.name}`);
}

/** Creates and starts the container for a DB row in state "creating"; returns the Docker id. */
export async function createAndStart(deps: OpsDeps, host: GpuHost, row: Container, owner: string, cmd: string[] | undefined): Promise<string> {
  const spec = {
    name: row.name,
    owner,
    image: row.image,
    gpus: row.gpuIndexes.split(',').map(Number),
    allocationId: row.allocationId!,
    shmSize: row.shmSize ?? deps.config.storage.shmSize,
    cmd,
    host: host.config,
  };
  const create = () => host.runtime.create(spec);
  const id = await create().catch(async (err: unknown) => {
    if (!missingBindSource(err)) throw err;
    await ensureUserDir(deps, host, owner, true);
    return create();
  });
  failpoint(deps, 'after-container-create');
  await host.runtime.start(id).catch((err: unknown) => {
    // The caller removes the container (by id) before it gives the GPUs back.
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { containerId: id });
  });
  return id;
}

/**
 * Removes the container of an allocation; true when the host confirms none is left. Looks before
 * it removes: a container of the same name that another allocation (or nobody's) owns is not ours.
 */
export async function removeIfPresent(host: GpuHost, idOrName: string, allocationId: number): Promise<boolean> {
  try {
    const info = await host.runtime.inspect(idOrName);
    if (info.labels[LABEL.allocation] !== String(allocationId)) return true;
    await host.runtime.remove(info.id, { force: true });
    return true;
  } catch (err) {
    return err instanceof ContainerNotFound;
  }
}

/**
 * Stops a container on its host and marks it stopped (GPUs freed) if its row is unchanged since it
 * was read. False when the host is down or did not confirm: nothing changed, try again later.
 */
export async function stopOnHost(deps: OpsDeps, c: Container, reason: string, now: Date): Promise<boolean> {
  const host = deps.pool.get(c.hostName);
  if (!host || host.connection().state !== 'up') return false;
  try {
    await ensureStopped(host.runtime, c.dockerId ?? c.name);
  } catch (err) {
    deps.log.warn({ host: c.hostName, container: c.name, reason, err: errorMessage(err) }, 'could not stop a container');
    return false;
  }
  return markStopped(deps, c, reason, now, true);
}
