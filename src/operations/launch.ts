import type { Config } from '../config/schema.js';
import type { ProgressSink } from '../core/reply.js';
import type { Container } from '../db/client.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import { containerSpec, userDir } from '../hosts/container-spec.js';
import { hasImage, pullImage } from '../hosts/images.js';
import { withTimeout } from '../hosts/errors.js';
import { DOCKER_TIMEOUT_MS, type OpsDeps } from './deps.js';

/** Kills the process at a named point when GPUBOT_FAILPOINT says so (crash-recovery tests). */
export function failpoint(deps: Pick<OpsDeps, 'failpoint'>, name: string): void {
  if (deps.failpoint === name) process.kill(process.pid, 'SIGKILL');
}

/** The user's directory on the host, made with a fixed argv (never a shell string). */
export async function ensureUserDir(host: GpuHost, config: Config, handle: string): Promise<void> {
  const dir = userDir(config, handle);
  const out = await host.run(['mkdir', '-p', '--', dir], 10_000);
  if (out.code !== 0) throw new Error(`could not create ${dir} on ${host.name}: ${out.stderr.trim() || `exit ${out.code}`}`);
}

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
  const container = await withTimeout(host.docker.createContainer(spec), DOCKER_TIMEOUT_MS, 'creating the container');
  failpoint(deps, 'after-container-create');
  try {
    await withTimeout(container.start(), DOCKER_TIMEOUT_MS, 'starting the container');
  } catch (err) {
    await container.remove({ force: true }).catch(() => {});
    throw err;
  }
  return container.id;
}
