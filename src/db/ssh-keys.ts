import type { PrismaClient, SshKey } from './client.js';

export type { SshKey };

export const MAX_KEYS_PER_USER = 20;

export const keysOf = (db: PrismaClient, userId: number): Promise<SshKey[]> => db.sshKey.findMany({ where: { userId }, orderBy: { id: 'asc' } });

export const keyByFingerprint = (db: PrismaClient, fingerprint: string): Promise<SshKey | null> => db.sshKey.findUnique({ where: { fingerprint } });

/** Adds a key; 'taken' when someone (maybe the same user) has it already: a key opens one user's containers only. */
export async function addKey(db: PrismaClient, userId: number, key: Pick<SshKey, 'type' | 'publicKey' | 'fingerprint' | 'comment'>): Promise<SshKey | 'taken' | 'full'> {
  if ((await db.sshKey.count({ where: { userId } })) >= MAX_KEYS_PER_USER) return 'full';
  try {
    return await db.sshKey.create({ data: { userId, ...key } });
  } catch (err) {
    if ((err as { code?: string }).code === 'P2002') return 'taken';
    throw err;
  }
}

/** Removes one of the user's keys (by fingerprint) or all of them; returns the removed ones. */
export async function removeKeys(db: PrismaClient, userId: number, which: string | 'all'): Promise<SshKey[]> {
  const where = which === 'all' ? { userId } : { userId, fingerprint: which };
  const rows = await db.sshKey.findMany({ where });
  if (rows.length) await db.sshKey.deleteMany({ where: { id: { in: rows.map((r) => r.id) } } });
  return rows;
}
