import { HOUR_MS, isoMinute } from '../core/format.js';
import { defaultHours } from '../core/policy/quota.js';
import { reply } from '../core/reply.js';
import { audit } from '../db/audit.js';
import { isPostgres, type User } from '../db/client.js';
import { LABEL, parseGpuList } from '../hosts/labels.js';
import type { ContainerSummary } from '../hosts/runtime.js';
import type { OpsDeps } from '../operations/deps.js';
import { errorMessage } from '../util/errors.js';
import { holdersChanged } from '../db/shared-read.js';

const HANDLE = /^[a-z0-9](?:[a-z0-9-]{0,34}[a-z0-9])?$/;
const CONTAINER = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** The user a label names, made if this database has never seen them (a new or restored database). */
async function ownerOf(deps: OpsDeps, handle: string, uidLabel: string | undefined): Promise<User> {
  const known = await deps.db.user.findUnique({ where: { handle } });
  if (known) return known;
  const uid = Number(uidLabel);
  // Keep the uid the container runs as, so its files stay the user's, unless another user has it.
  const keepUid = Number.isInteger(uid) && uid >= deps.config.storage.uidBase && !(await deps.db.user.findUnique({ where: { uid } }));
  try {
    return await deps.db.user.create({ data: { handle, ...(keepUid ? { uid } : {}) } });
  } catch (err) {
    if ((err as { code?: string }).code !== 'P2002') throw err;
    return deps.db.user.findUniqueOrThrow({ where: { handle } });
  }
}

/**
 * Records a managed container the database does not know (made by this installation after the
 * backup it runs on, or before installations had ids) with the owner, GPUs, image and end time
 * from its labels; a running one gets its GPUs leased. The admins are told. Returns the name it was
 * recorded under, or null when another process recorded it first.
 */
export async function adopt(deps: OpsDeps, hostName: string, c: ContainerSummary, now: Date): Promise<string | null> {
  const labels = c.labels;
  const handle = labels[LABEL.owner] ?? '';
  if (!HANDLE.test(handle)) throw new Error(`its owner label "${handle.slice(0, 40)}" is not a handle`);
  const owner = await ownerOf(deps, handle, labels[LABEL.uid]);
  const gpus = parseGpuList(labels[LABEL.gpus]);
  const labelName = CONTAINER.test(labels[LABEL.name] ?? '') ? labels[LABEL.name]! : `adopted-${c.id.slice(0, 12)}`;
  const nameTaken = !!(await deps.db.container.findUnique({ where: { name: labelName } }));
  // The database name must be unique across hosts; Docker is reached by id, so another name is harmless.
  const name = nameTaken ? `${labelName.slice(0, 48)}-${c.id.slice(0, 8)}` : labelName;
  const endsLabel = Date.parse(labels[LABEL.endsAt] ?? '');
  // An end already past (extended after the backup, say) gets an hour, so the owner is reminded before expiry stops it.
  const endsAt = new Date(Number.isFinite(endsLabel) ? Math.max(endsLabel, now.getTime() + HOUR_MS) : now.getTime() + defaultHours(deps.config.quotas.default) * HOUR_MS);
  const running = c.state === 'running';

  const result = await deps.txDb
    .$transaction(
      async (tx) => {
        if (await tx.container.findFirst({ where: { dockerId: c.id, state: { not: 'removed' } } })) return null;
        const held =
          running && gpus.length ? await tx.gpuLease.findMany({ where: { hostName, gpuIndex: { in: gpus } }, include: { allocation: { include: { user: true } } } }) : [];
        const lease = running && gpus.length > 0 && held.length === 0;
        const allocation = lease
          ? await tx.allocation.create({
              data: {
                userId: owner.id,
                kind: 'container',
                hostName,
                gpuIndexes: gpus.join(','),
                state: 'active',
                createdAt: now,
                endsAt,
                leases: { create: gpus.map((gpuIndex) => ({ hostName, gpuIndex })) },
              },
            })
          : null;
        await tx.container.create({
          data: {
            name,
            userId: owner.id,
            hostName,
            dockerId: c.id,
            image: c.image,
            gpuIndexes: gpus.join(','),
            allocationId: allocation?.id ?? null,
            state: running ? 'running' : 'stopped',
            createdAt: c.createdAt,
            endsAt,
            stoppedAt: running ? null : now,
          },
        });
        return { conflicts: held.map((l) => `GPU ${l.gpuIndex} is also leased to ${l.allocation.user.handle}`) };
      },
      { maxWait: 20_000, timeout: 20_000, ...(isPostgres(deps.txDb) ? { isolationLevel: 'Serializable' as const } : {}) },
    )
    .catch((err: unknown) => {
      // Recorded by another process at the same moment (same name), or its GPUs leased meanwhile: the next round looks again.
      if ((err as { code?: string }).code === 'P2002' || (err as { code?: string }).code === 'P2034') return null;
      throw err;
    });
  if (!result) return null;
  holdersChanged();

  const detail = `${hostName} ${c.id.slice(0, 12)} owner ${handle} GPUs ${gpus.join(',') || 'none'} ${running ? 'running' : 'stopped'} until ${endsAt.toISOString()}${result.conflicts.length ? `; ${result.conflicts.join('; ')}` : ''}`;
  await audit(deps.db, { actor: 'gpubot', action: 'adopt', target: name, result: 'ok', detail });
  deps.log.warn({ host: hostName, container: name, dockerId: c.id, owner: handle }, 'adopted a container the database did not know');
  void tellAdmins(deps, name, hostName, handle, gpus, endsAt, result.conflicts).catch((err) =>
    deps.log.warn({ err: errorMessage(err) }, 'could not tell the admins about an adopted container'),
  );
  return name;
}

async function tellAdmins(deps: OpsDeps, name: string, hostName: string, handle: string, gpus: number[], endsAt: Date, conflicts: string[]): Promise<void> {
  const names = deps.config.admins;
  if (!names.length) return;
  const admins = await deps.db.user.findMany({ where: { OR: [{ handle: { in: names } }, { identities: { some: { externalId: { in: names } } } }] } });
  const message = reply('warning', `Adopted ${name} on ${hostName}: a container the database did not know`, [
    { type: 'text', text: `Owner ${handle}, GPUs ${gpus.join(',') || 'none'}, ends ${isoMinute(endsAt)}. It was left running and is now ${handle}'s as if started with "run".` },
    ...(conflicts.length ? [{ type: 'text' as const, text: `Its GPUs were not leased: ${conflicts.join('; ')}. Sort it out with the owners.` }] : []),
  ]);
  await Promise.all(admins.map((a) => deps.notify(a.id, message)));
}
