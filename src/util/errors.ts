export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Prisma's codes for "the database is not there" (P1001 can't reach, P1017 closed the connection). */
const DATABASE_DOWN_CODES = new Set(['P1001', 'P1017']);
/** The driver adapters' kinds for the same (Prisma rethrows some of them as they are). */
const DATABASE_DOWN_KINDS = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout']);

/** Whether `err` says the database could not be reached (and not a host, a socket, ...). */
export function isDatabaseDown(err: unknown): boolean {
  const e = (err ?? {}) as { name?: unknown; code?: unknown; cause?: { kind?: unknown } };
  const name = typeof e.name === 'string' ? e.name : '';
  if (name.startsWith('PrismaClient') && typeof e.code === 'string' && DATABASE_DOWN_CODES.has(e.code)) return true;
  if (name.startsWith('PrismaClient') && /Can't reach database server|Server has closed the connection/.test(errorMessage(err))) return true;
  return name === 'DriverAdapterError' && typeof e.cause?.kind === 'string' && DATABASE_DOWN_KINDS.has(e.cause.kind);
}

/**
 * An error as a chat user should read it: one line, no code frames (Prisma's messages start
 * with "Invalid `db.x()` invocation in FILE" and a snippet; the cause is the last line), and
 * plain words when the database is away.
 */
export function userMessage(err: unknown): string {
  const text = errorMessage(err);
  if (isDatabaseDown(err)) return 'gpubot cannot reach its database right now; try again in a minute (admins: see /healthz).';
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.length > 1 && /^Invalid `/.test(lines[0]!) ? lines[lines.length - 1]! : text;
}
