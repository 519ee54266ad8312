import type { ProgressSink } from '../core/reply.js';
import type { Container } from '../db/client.js';
import type { GpuHost } from '../hosts/gpu-host.js';
import { userDir, userNetwork } from '../hosts/container-spec.js';
import { LABEL } from '../hosts/labels.js';
import { markStopped } from '../db/containers.js';
import { ContainerNotFound, ImageMissing, NetworkUnusable } from '../hosts/errors.js';
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
export async function ensureUserDir(deps: Pick<OpsDeps, 'config' | 'userDirs'>, host: GpuHost, handle: string, uid: number | undefined, force = false): Promise<void> {
  const key = `${host.name}:${handle}:${uid ?? 'root'}`;
  if (!force && deps.userDirs.has(key)) return;
  const dir = userDir(deps.config, handle);
  // runAs user: 0700 and the user's own uid, also when it existed before (made by root, say).
  const argv = uid === undefined ? ['mkdir', '-p', '--', dir] : ['install', '-d', '-m', '0700', '-o', String(uid), '-g', String(uid), '--', dir];
  const out = await host.run(argv, 10_000);
  if (out.code !== 0) throw new Error(`could not create ${dir} on ${host.name}: ${out.stderr.trim() || `exit ${out.code}`}`);
  deps.userDirs.add(key);
}

const missingBindSource = (err: unknown): boolean => /bind source path does not exist/i.test(errorMessage(err));

/** The user's own bridge network on a host, made on first use: other users' containers are not on it. */
export async function ensureNetwork(deps: Pick<OpsDeps, 'instanceId'>, host: GpuHost, handle: string, recheck = false): Promise<string> {
  const name = userNetwork(handle);
  await host.runtime.ensureNetwork(name, { [LABEL.managed]: 'true', [LABEL.owner]: handle, [LABEL.instance]: deps.instanceId }, { recheck });
  return name;
}

export async function ensureImage(host: GpuHost, image: string, progress: ProgressSink): Promise<void> {
  if (await host.runtime.hasImage(image)) return;
  await progress(`${image} is not on ${host.name} yet: pulling it`);
  await host.runtime.pull(image, progress);
  await progress(`pulled ${image} on ${host.name}`);
}

/**
 * Creates and starts the container for a DB row in state "creating"; returns the Docker id.
 * What the launch took for granted without asking the host (the user's dir and network, which this
 * process made before; the image, when `makeImage` is given) is made again once if Docker says it
 * is missing, and the step retried.
 */
export async function createAndStart(
  deps: OpsDeps,
  host: GpuHost,
  row: Container,
  owner: string,
  cmd: string[] | undefined,
  uid: number | undefined,
  network: string,
  makeImage?: () => Promise<void>,
): Promise<string> {
  const spec = {
    instanceId: deps.instanceId,
    endsAt: row.endsAt ?? deps.now(),
    uid,
    network,
    name: row.name,
    owner,
    image: row.image,
    gpus: row.gpuIndexes.split(',').map(Number),
    allocationId: row.allocationId!,
    shmSize: row.shmSize ?? deps.config.storage.shmSize,
    cmd,
    host: host.config,
  };
  const repaired = new Set<string>();
  /** Makes what `err` says is missing, once per kind; rethrows anything else. */
  const repair = async (err: unknown): Promise<void> => {
    const what = missingBindSource(err) ? 'dir' : err instanceof NetworkUnusable ? 'network' : err instanceof ImageMissing && makeImage ? 'image' : undefined;
    if (!what || repaired.has(what)) throw err;
    repaired.add(what);
    if (what === 'dir') await ensureUserDir(deps, host, owner, uid, true);
    else if (what === 'network') await ensureNetwork(deps, host, owner, true);
    else await makeImage!();
  };
  let id: string;
  for (;;) {
    try {
      id = await host.runtime.create(spec);
      break;
    } catch (err) {
      await repair(err);
    }
  }
  failpoint(deps, 'after-container-create');
  for (;;) {
    try {
      await host.runtime.start(id);
      return id;
    } catch (err) {
      try {
        // Of the three, only the network is looked up at start (by older engines).
        if (!(err instanceof NetworkUnusable)) throw err;
        await repair(err);
      } catch (failed) {
        // The caller removes the container (by id) before it gives the GPUs back.
        throw Object.assign(failed instanceof Error ? failed : new Error(String(failed)), { containerId: id });
      }
    }
  }
}

/**
 * Removes the container of an allocation; true when the host confirms none is left. Looks before
 * it removes: a container of the same name that another allocation (or nobody's) owns is not ours.
 */
export async function removeIfPresent(host: GpuHost, id: string | undefined, allocationId: number): Promise<boolean> {
  try {
    // Without an id, only a container carrying this allocation's label: a name is never asked for (Docker would match it as an ID prefix).
    if (!id) {
      const found = (await host.runtime.listManaged()).filter((c) => c.labels[LABEL.allocation] === String(allocationId));
      if (found.length === 0) return true;
      id = found[0]!.id;
    }
    const info = await host.runtime.inspect(id);
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
  if (!host || !(await host.waitUp(deps.config.timeouts.hostMs))) return false;
  try {
    // No id yet: the launch has not finished; left to it (or to reconciliation).
    if (!c.dockerId) return false;
    await ensureStopped(host.runtime, c.dockerId);
  } catch (err) {
    deps.log.warn({ host: c.hostName, container: c.name, reason, err: errorMessage(err) }, 'could not stop a container');
    return false;
  }
  return markStopped(deps, c, reason, now, true);
}
