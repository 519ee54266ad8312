// The PostgreSQL side of migrate(): applies prisma/postgres/migrations the way
// `prisma migrate deploy` does, writing `_prisma_migrations` with Prisma's DDL and rows.
//
// Like Prisma it holds the session advisory lock 72707369 while it works, so two bots
// starting together apply each migration once, and it creates the tables in the URL's
// `?schema=` (default public), where Prisma's client looks for them. A migration must be able
// to run inside a transaction (no CREATE INDEX CONCURRENTLY, no BEGIN/COMMIT of its own). Unlike Prisma, each migration and its
// row commit in one transaction (PostgreSQL has transactional DDL): a failed migration
// leaves neither its changes nor a row, so fixing the file and restarting is enough.

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { nextPending, PRISMA_MIGRATIONS_DDL, warnModified, type MigrationFile, type MigrationRow } from './migration-files.js';

/** Prisma's advisory lock key for migrations (schema engine, postgres connector). */
const PRISMA_ADVISORY_LOCK = 72707369;
/** How long to wait for another process's migrations before giving up. */
const LOCK_WAIT_MS = 60_000;

/** The PostgreSQL schema gpubot's tables live in: `?schema=NAME` as in Prisma's URLs, else public. */
export function postgresSchema(url: string): string {
  const schema = new URL(url).searchParams.get('schema') || 'public';
  if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(schema)) throw new Error(`DATABASE_URL: unusable schema name "${schema}"`);
  return schema;
}

export async function migratePostgres(url: string, migrations: MigrationFile[], log: (msg: string) => void): Promise<string[]> {
  const schema = postgresSchema(url);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // A connection lost while idle must fail the query in progress, not crash the process.
  client.on('error', () => {});
  await client.connect();
  try {
    // Where Prisma's client looks: `?schema=` or public, whatever the role's search_path says.
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(`SET search_path TO "${schema}"`);
    await takeLock(client, log);
    try {
      return await applyPending(client, migrations, log);
    } finally {
      // Never let a failed unlock hide the migration's own error; the session's end frees it anyway.
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_ADVISORY_LOCK]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function takeLock(client: pg.Client, log: (msg: string) => void): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let said = false; ;) {
    const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [PRISMA_ADVISORY_LOCK]);
    if (rows[0]?.ok) return;
    if (Date.now() > deadline) throw new Error(`migrate: another process has held the migration lock for ${LOCK_WAIT_MS / 1000} s; is a migration stuck?`);
    if (!said) log('Waiting for another process to finish its migrations');
    said = true;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function applyPending(client: pg.Client, migrations: MigrationFile[], log: (msg: string) => void): Promise<string[]> {
  // search_path is the one schema, so this looks there only.
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('_prisma_migrations')::text AS t`);
  if (exists.rows[0]?.t == null) await client.query(PRISMA_MIGRATIONS_DDL.postgresql);

  const applied: string[] = [];
  let warnedChecksums = false;
  for (;;) {
    const rows = (await client.query<MigrationRow>('SELECT id, checksum, finished_at, migration_name, rolled_back_at FROM _prisma_migrations ORDER BY started_at ASC')).rows;
    if (!warnedChecksums) {
      warnModified(rows, migrations, log);
      warnedChecksums = true;
    }
    const next = nextPending(rows, migrations);
    if (!next) break;

    log(`Applying migration \`${next.name}\``);
    await client.query('BEGIN');
    try {
      const id = randomUUID();
      // Rows as Prisma writes them: started, then one step, then finished.
      await client.query(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, rolled_back_at, started_at, applied_steps_count)
         VALUES ($1, $2, $3, NULL, NULL, clock_timestamp(), 0)`,
        [id, next.checksum, next.name],
      );
      try {
        await client.query(next.script);
      } catch (error) {
        throw new Error(`migrate: migration \`${next.name}\` failed: ${(error as Error).message}`, { cause: error });
      }
      await client.query('UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1, finished_at = clock_timestamp() WHERE id = $1', [id]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
    applied.push(next.name);
  }
  if (applied.length > 0) log(`Applied ${applied.length} migration(s): ${applied.join(', ')}`);
  return applied;
}
