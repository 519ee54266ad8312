export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Prisma's codes for "the database is not there" (P1001 can't reach, P1017 closed the connection). */
const DATABASE_DOWN = /\b(P1001|P1017)\b|Can't reach database server|Server has closed the connection|ECONNREFUSED|Connection terminated/;

/**
 * An error as a chat user should read it: one line, no code frames (Prisma's messages start
 * with "Invalid `db.x()` invocation in FILE" and a snippet; the cause is the last line), and
 * plain words when the database is away.
 */
export function userMessage(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const text = errorMessage(err);
  if ((typeof code === 'string' && DATABASE_DOWN.test(code)) || DATABASE_DOWN.test(text)) {
    return 'gpubot cannot reach its database right now. Nothing was changed; try again in a minute (admins: see /healthz).';
  }
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length > 1 && /^Invalid `/.test(lines[0]!) ? lines[lines.length - 1]! : text;
}
