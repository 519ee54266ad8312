import type { ProgressSink } from '../core/reply.js';
import type { Container } from '../db/client.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import { containerSpec, userDir } from '../hosts/container-spec.js';
import { LABEL } from '../hosts/labels.js';
import { markStopped } from '../db/containers.js';
import { hasImage, pullImage } from '../hosts/images.js';
import { withTimeout } from '../hosts/errors.js';
import { errorMessage } from '../util/errors.js';
import { DOCKER_TIMEOUT_MS, type OpsDeps } from './deps.js';

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
  if (await withTimeout(hasImage(host.docker, image), DOCKER_TIMEOUT_MS, `looking for ${image}`)) return;
  await progress(`${image} is not on ${host.name} yet: pulling it`);
  await pullImage(host.docker, image, progress);
  await progress(`pulled ${image} on ${host.name}`);
}

/** Creates and starts the container for a DB row in state "creating"; returns the Docker id. */
export async function createAndStart(deps: OpsDeps, host: GpuHost, row: Container, owner: string, cmd: string[] | undefined): Promise<string> {
  const spec = containerSpec(deps.config, {
    name: row.name,
    owner,
    image: row.image,
    gpus: row.gpuIndexes.split(',').map(Number),
    allocationId: row.allocationId!,
    shmSize: row.shmSize ?? deps.config.storage.shmSize,
    cmd,
    host: host.config,
  });
  const create = () => withTimeout(host.docker.createContainer(spec), DOCKER_TIMEOUT_MS, 'creating the container');
  const container = await create().catch(async (err: unknown) => {
    if (!missingBindSource(err)) throw err;
    await ensureUserDir(deps, host, owner, true);
    return create();
  });
  failpoint(deps, 'after-container-create');
  await withTimeout(container.start(), DOCKER_TIMEOUT_MS, 'starting the container').catch((err: unknown) => {
    // The caller removes the container (by id) before it gives the GPUs back.
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { containerId: container.id });
  });
  return container.id;
}

/**
 * Removes the container of an allocation; true when the host confirms none is left. Looks before
 * it removes: a container of the same name that another allocation (or nobody's) owns is not ours.
 */
export async function removeIfPresent(host: GpuHost, idOrName: string, allocationId: number): Promise<boolean> {
  try {
    const c = host.docker.getContainer(idOrName);
    const info = await withTimeout(c.inspect(), DOCKER_TIMEOUT_MS, 'inspecting');
    if (info.Config.Labels?.[LABEL.allocation] !== String(allocationId)) return true;
    await withTimeout(c.remove({ force: true }), DOCKER_TIMEOUT_MS, 'removing');
    return true;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode === 404;
  }
}

/**
 * Stops a container on its host and marks it stopped (GPUs freed) if its row is unchanged since it
 * was read. False when the host is down or did not confirm: nothing changed, try again later.
 */
export async function stopOnHost(deps: OpsDeps, c: Container, reason: string, now: Date): Promise<boolean> {
  const host = deps.pool.get(c.hostName);
  if (!host || !(await host.waitUp(deps.config.timeouts.hostMs))) return false;
  try {
    await withTimeout(host.docker.getContainer(c.dockerId ?? c.name).stop({ t: 10 }), DOCKER_TIMEOUT_MS, 'stopping');
  } catch (err) {
    const code = (err as { statusCode?: number }).statusCode;
    if (code !== 304 && code !== 404) {
      deps.log.warn({ host: c.hostName, container: c.name, reason, err: errorMessage(err) }, 'could not stop a container');
      return false;
    }
  }
  return markStopped(deps, c, reason, now, true);
}
