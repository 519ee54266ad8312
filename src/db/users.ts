import type { Platform } from '../core/port.js';
import type { PrismaClient, User } from './client.js';

export type { Platform };

/**
 * How the config may name a chat identity (under `admins` and `quotas.users`): "slack:U024BE7LH",
 * "discord:80351110224678912", or the bare id as before. Console users go by their handle.
 */
export function chatIdKeys(platform: string, externalId: string): string[] {
  return platform === 'console' ? [externalId] : [`${platform}:${externalId}`, externalId];
}

/** The users the config names (admins): by handle, "platform:id", or a bare chat id. */
export function namedUsersWhere(names: string[]) {
  const byPlatform = names.flatMap((n) => {
    const m = /^(slack|discord|console):(.+)$/.exec(n);
    return m ? [{ identities: { some: { platform: m[1]!, externalId: m[2]! } } }] : [];
  });
  return { OR: [{ handle: { in: names } }, { identities: { some: { externalId: { in: names } } } }, ...byPlatform] };
}

/**
 * Retires a handle for good: it names a directory with someone's files on every host, so no one
 * else may ever get it. Call inside the transaction that merges or removes its user.
 */
export function retireHandle(db: Pick<PrismaClient, 'retiredHandle'>, handle: string, reason: string) {
  return db.retiredHandle.upsert({ where: { handle }, create: { handle, reason }, update: {} });
}

/** A chat display name as a handle: lowercase, [a-z0-9-], also the user's volume dir name. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32)
    .replace(/-+$/g, '');
  return slug || 'user';
}

/** The user behind a chat identity, created on first use with a unique handle. */
export async function ensureUser(
  db: PrismaClient,
  platform: Platform,
  externalId: string,
  name: string | (() => Promise<string>),
  reserved: ReadonlySet<string> = new Set(),
): Promise<User> {
  const known = await db.chatIdentity.findUnique({ where: { platform_externalId: { platform, externalId } }, include: { user: true } });
  if (known) return known.user;
  // Looked up only for someone new (a chat API call).
  const displayName = typeof name === 'string' ? name : await name();
  const base = slugify(displayName);
  // A chat display name is the user's to choose: it never lands on a handle the config names
  // (admins, quotas), or anyone could become "alice" before alice does. Console users are people
  // with a shell on the bot's machine and keep their name.
  const first = platform !== 'console' && reserved.has(base) ? 2 : 1;
  // A user made by adoption (a container's owner label, no chat identity yet) is claimed by the
  // console user of that name only: a chat display name is anyone's to choose.
  if (platform === 'console') {
    const adopted = await db.user.findFirst({ where: { handle: base, identities: { none: {} } } });
    if (adopted) {
      try {
        await db.chatIdentity.create({ data: { userId: adopted.id, platform, externalId, displayName } });
        return adopted;
      } catch (err) {
        if ((err as { code?: string }).code !== 'P2002') throw err;
      }
    }
  }
  for (let n = first; n < 1000; n++) {
    const handle = n === 1 ? base : `${base}-${n}`;
    // A handle once given to someone (merged away by "link", or removed) is never given again:
    // its directory on the hosts still holds that person's files.
    if (await db.retiredHandle.findUnique({ where: { handle } })) continue;
    try {
      return await db.user.create({ data: { handle, identities: { create: { platform, externalId, displayName } } } });
    } catch (err) {
      if ((err as { code?: string }).code !== 'P2002') throw err;
      // Someone else got that identity at the same moment: use theirs.
      const raced = await db.chatIdentity.findUnique({ where: { platform_externalId: { platform, externalId } }, include: { user: true } });
      if (raced) return raced.user;
    }
  }
  throw new Error(`no free handle for ${displayName}`);
}

/**
 * The numeric uid/gid a user's containers run as: uidBase + user id, kept on the row at first use
 * so it stays the same on every host, and when the range moves.
 */
export async function userUid(db: PrismaClient, userId: number, uidBase: number): Promise<number> {
  const user = await db.user.findUniqueOrThrow({ where: { id: userId } });
  if (user.uid !== null) return user.uid;
  try {
    await db.user.updateMany({ where: { id: userId, uid: null }, data: { uid: uidBase + userId } });
  } catch (err) {
    if ((err as { code?: string }).code !== 'P2002') throw err;
    // Taken by an adopted user (uid from a container label): the next one past the highest.
    const top = await db.user.aggregate({ _max: { uid: true } });
    await db.user.updateMany({ where: { id: userId, uid: null }, data: { uid: Math.max(uidBase, top._max.uid ?? 0) + 1 } });
  }
  return (await db.user.findUniqueOrThrow({ where: { id: userId } })).uid!;
}
