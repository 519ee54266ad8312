import type { PrismaClient } from './client.js';

/**
 * Sends a notification at most once per key, across restarts: the key is recorded first, so a
 * crash between the two loses a message rather than repeating it.
 */
export async function sendOnce(db: PrismaClient, key: string, userId: number, send: () => Promise<void>): Promise<boolean> {
  try {
    await db.notice.create({ data: { key, userId } });
  } catch (err) {
    if ((err as { code?: string }).code === 'P2002') return false;
    throw err;
  }
  await send();
  return true;
}
