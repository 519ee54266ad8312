import { randomBytes } from 'node:crypto';
import type { CommandContext } from '../core/engine.js';
import { imageAllowed } from '../core/policy/images.js';
import { refuse, reply, type ProgressSink, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { containerActions, containerBlocks } from '../core/views.js';
import { release } from '../db/allocations.js';
import { markRemoved } from '../db/containers.js';
import { audit } from '../db/audit.js';
import { userDir } from '../hosts/container-spec.js';
import { errorMessage } from '../util/errors.js';
import type { OpsDeps } from './deps.js';
import { isReply, takeGpus } from './take-gpus.js';
import { enqueue, queueableRefusal, withQueueButton } from './queue.js';
import { createAndStart, ensureImage, ensureNetwork, ensureUserDir, removeIfPresent } from './launch.js';
import { userUid } from '../db/users.js';
import { ensureUserImageOn, resolveUserImage } from './user-images.js';
import { gatewayAddress, gatewayBlocks } from './keys.js';
import { holdersChanged } from '../db/shared-read.js';

type RunRequest = Extract<Request, { command: 'run' }>;

export async function runContainer(deps: OpsDeps, req: RunRequest, { actor, progress }: CommandContext): Promise<Reply> {
  const { config, db } = deps;
  // The user's own image (mine/NAME[:n]) is theirs alone, whatever the allow-list says.
  const own = req.image === undefined ? undefined : await resolveUserImage(deps, actor, req.image);
  if (own && 'tone' in own) return own;
  const image = own ? own.tag : (req.image ?? config.images.default);
  if (!own && !imageAllowed(image, config.images.allowed))
    return refuse('not-allowed', 'That image is not allowed', `${image} is not on the allow-list: ${config.images.allowed.join(', ')}`);
  let jupyterToken: string | undefined;
  if (req.jupyter) {
    const refusal = jupyterRefusal(deps, req, image);
    if (refusal) return refusal;
    jupyterToken = randomBytes(24).toString('hex');
    req = { ...req, cmd: jupyterCommand(jupyterToken, config.storage.mountPath) };
  }
  const name = req.name ?? `${actor.handle}-${randomBytes(2).toString('hex')}`;
  if (await db.container.findUnique({ where: { name } })) return refuse('conflict', `The name "${name}" is taken`, 'Pick another --name, or remove the old container with "rm".');

  const taken = await takeGpus(deps, actor, 'container', req);
  if (isReply(taken)) {
    const why = queueableRefusal(taken, config.quotas.atLimit);
    if (!why) return taken;
    return req.queue ? enqueue(deps, req, actor, why === 'over-hours' ? 'You are at your weekly GPU-hours.' : 'No GPUs fit now.') : withQueueButton(taken, req);
  }
  const { endsAt } = taken;

  const host = deps.pool.get(taken.host)!;
  deps.launching.add(name);
  deps.pendingAllocations.add(taken.allocation.id);
  let row;
  try {
    row = await db.container.create({
      data: {
        name,
        userId: actor.userId,
        hostName: taken.host,
        image,
        gpuIndexes: taken.indexes.join(','),
        allocationId: taken.allocation.id,
        state: 'creating',
        createdAt: deps.now(),
        command: req.cmd ? JSON.stringify(req.cmd) : null,
        shmSize: req.shm ?? config.storage.shmSize,
        endsAt,
      },
    });
    holdersChanged();
  } catch (err) {
    deps.launching.delete(name);
    await release(deps.txDb, taken.allocation.id, 'launch failed', deps.now());
    if ((err as { code?: string }).code === 'P2002') return refuse('conflict', `The name "${name}" is taken`, 'Pick another --name.');
    throw err;
  } finally {
    deps.pendingAllocations.delete(taken.allocation.id);
  }

  let dockerId: string | undefined;
  // The first progress line (a chat call) goes out while the host is prepared; later lines wait for the one before, so they keep their order.
  let said = Promise.resolve().then(() => progress(`GPUs ${taken.indexes.join(',')} on ${taken.host} are yours; preparing the container`));
  void said.catch(() => undefined); // awaited below; never an unhandled rejection
  const say: ProgressSink = (text) => {
    said = said.then(() => progress(text));
    void said.catch(() => undefined);
    return said;
  };
  try {
    const uidNow = config.storage.runAs === 'user' ? userUid(db, actor.userId, config.storage.uidBase) : Promise.resolve(undefined);
    // All at once, but the reply waits for all: no pull outlives a refusal.
    const prepared = await Promise.allSettled([
      uidNow.then((uid) => ensureUserDir(deps, host, actor.handle, uid)),
      ensureNetwork(deps, host, actor.handle),
      // An allow-listed image is not looked up first (a round trip per run): create says when it is missing, and it is pulled then.
      own ? ensureUserImageOn(deps, host, own, say) : undefined,
    ]);
    for (const p of prepared) if (p.status === 'rejected') throw p.reason;
    const network = (prepared[1] as PromiseFulfilledResult<string>).value;
    dockerId = await createAndStart(deps, host, row, actor.handle, req.cmd, await uidNow, network, own ? undefined : () => ensureImage(host, image, say));
    await said;
    // Conditional: if the row was changed meanwhile (removed by an admin, say), this launch lost.
    const { count } = await db.container.updateMany({ where: { id: row.id, state: 'creating' }, data: { dockerId, state: 'running' } });
    if (count === 0) throw new Error('the container was removed while it was starting');
  } catch (err) {
    const message = errorMessage(err);
    deps.log.warn({ container: name, image, err: message }, 'container did not start');
    // The GPUs go back only once the host confirms no container holds them.
    const gone = await removeIfPresent(host, dockerId ?? (err as { containerId?: string }).containerId, taken.allocation.id);
    if (gone) await markRemoved(deps, row, 'launch failed', deps.now());
    await said.catch(() => undefined); // the answer comes after the progress lines
    return refuse(
      'failed',
      `Could not start ${name}`,
      gone
        ? `${message}. Nothing is held: the GPUs went back to the pool.`
        : `${message}. ${taken.host} did not confirm the container is gone, so its GPUs stay held until gpubot can check.`,
    );
  } finally {
    deps.launching.delete(name);
  }

  await audit(db, { actor: actor.handle, action: 'run', target: name, result: 'ok', detail: `${taken.host} GPUs ${taken.indexes.join(',')} ${image}` });
  deps.log.info({ container: name, gpus: taken.indexes.join(','), image }, 'container started');
  const mounts = [
    `${userDir(config, actor.handle)} -> ${config.storage.mountPath}`,
    ...config.storage.shared.map((s) => `${s.hostPath} -> ${s.containerPath}${s.readOnly ? ' (read-only)' : ''}`),
  ];
  const view = { name, owner: actor.handle, host: taken.host, gpus: taken.indexes, image, state: 'running' as const, endsAt, mounts };
  const addr = gatewayAddress(deps);
  return reply('success', `${name} is running on ${taken.host} with GPU${taken.indexes.length === 1 ? '' : 's'} ${taken.indexes.join(',')}`, [
    ...containerBlocks(view),
    ...(addr
      ? gatewayBlocks(deps, name)
      : [
          { type: 'text' as const, text: 'Get a shell in it:' },
          { type: 'code' as const, text: `ssh ${taken.host} docker exec -it ${name} bash` },
        ]),
    ...(jupyterToken && addr
      ? [
          { type: 'text' as const, text: 'JupyterLab: forward its port, then open the link:' },
          { type: 'code' as const, text: `ssh -N -L ${JUPYTER_PORT}:localhost:${JUPYTER_PORT} -p ${addr.port} ${name}@${addr.host}` },
          { type: 'code' as const, text: `http://localhost:${JUPYTER_PORT}/lab?token=${jupyterToken}` },
        ]
      : []),
    { type: 'actions', actions: containerActions(view) },
  ]);
}

export const JUPYTER_PORT = 8888;

/** JupyterLab on the container's loopback only: it is reached through the gateway's forward. */
export const jupyterCommand = (token: string, root: string): string[] => [
  'jupyter',
  'lab',
  '--ip=127.0.0.1',
  `--port=${JUPYTER_PORT}`,
  '--no-browser',
  '--allow-root',
  `--ServerApp.token=${token}`,
  `--ServerApp.root_dir=${root}`,
];

function jupyterRefusal(deps: OpsDeps, req: RunRequest, image: string): Reply | undefined {
  const { jupyter } = deps.config.images;
  if (!gatewayAddress(deps))
    return refuse(
      'unavailable',
      'run --jupyter needs the SSH gateway',
      'JupyterLab is reached through an ssh -L forward; an admin can turn the gateway on with "gateway:" in the config.',
    );
  if (req.cmd) return refuse('invalid', 'run --jupyter takes no command', 'JupyterLab is the container\'s command; leave out "-- CMD".');
  if (req.queue) return refuse('invalid', 'run --jupyter cannot wait in the queue', 'Its link is only given when it starts; run it when GPUs are free.');
  if (!imageAllowed(image, jupyter)) {
    return refuse(
      'not-allowed',
      `${image} has no JupyterLab`,
      jupyter.length
        ? `run --jupyter needs an image listed under images.jupyter: ${jupyter.join(', ')} (give it with --image).`
        : 'No image is listed under images.jupyter in the config; ask an admin to add one that has JupyterLab.',
    );
  }
  return undefined;
}
