import type { PrismaClient } from './client.js';

export interface AuditEntry {
  actor: string;
  action: string;
  target?: string;
  result: 'ok' | 'refused' | 'error';
  detail?: string;
}

/** Every state change and every refusal, with who asked. */
export async function audit(db: PrismaClient, entry: AuditEntry): Promise<void> {
  await db.auditEvent.create({ data: { ...entry, detail: entry.detail?.slice(0, 2000) } });
}
