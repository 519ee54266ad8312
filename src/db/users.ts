import type { Platform } from '../core/port.js';
import type { PrismaClient, User } from './client.js';

export type { Platform };

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
export async function ensureUser(db: PrismaClient, platform: Platform, externalId: string, name: string | (() => Promise<string>), reserved: ReadonlySet<string> = new Set()): Promise<User> {
  const known = await db.chatIdentity.findUnique({ where: { platform_externalId: { platform, externalId } }, include: { user: true } });
  if (known) return known.user;
  // Looked up only for someone new (a chat API call).
  const displayName = typeof name === 'string' ? name : await name();
  const base = slugify(displayName);
  // A chat display name is the user's to choose: it never lands on a handle the config names
  // (admins, quotas), or anyone could become "alice" before alice does. Console users are people
  // with a shell on the bot's machine and keep their name.
  const first = platform !== 'console' && reserved.has(base) ? 2 : 1;
  for (let n = first; n < 1000; n++) {
    const handle = n === 1 ? base : `${base}-${n}`;
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
