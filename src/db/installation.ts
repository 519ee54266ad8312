import { randomBytes } from 'node:crypto';
import type { PrismaClient } from './client.js';

/**
 * This installation's id: made by the migration that added it, kept in the database (a restored
 * backup keeps it; a new database gets a new one). Made here only if that row was deleted by hand.
 */
export async function installationId(db: PrismaClient): Promise<string> {
  const row = await db.installation.findUnique({ where: { id: 1 } });
  if (row) return row.instanceId;
  const made = await db.installation.upsert({ where: { id: 1 }, create: { id: 1, instanceId: randomBytes(16).toString('hex') }, update: {} });
  return made.instanceId;
}
