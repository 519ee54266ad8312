// Applies the migrations (prisma/migrations/*/migration.sql for SQLite,
// prisma/postgres/migrations/*/migration.sql for PostgreSQL) at start, the way
// `prisma migrate deploy` would, without Prisma's schema-engine binary (which this
// project cannot download). It keeps Prisma's own bookkeeping table,
// _prisma_migrations, with the DDL and row contents Prisma's schema engine writes,
// so a later `prisma migrate deploy` / `migrate status` against the same database
// agrees with it and sees nothing pending.

import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { defaultMigrationsDir, nextPending, PRISMA_MIGRATIONS_DDL, readMigrations, warnModified, type MigrationFile, type MigrationRow } from './migration-files.js';

export { checksumOf, defaultMigrationsDir, PRISMA_MIGRATIONS_DDL } from './migration-files.js';

export interface MigrateOptions {
  /** Folder holding `<name>/migration.sql` folders; default: the provider's (defaultMigrationsDir). */
  migrationsDir?: string;
  /** Progress and warnings, one line each; default: stderr. */
  log?: (msg: string) => void;
}

/** How long a connection waits for another process's write lock before failing. */
const MIGRATE_BUSY_TIMEOUT_MS = 60_000;

/**
 * Brings the database at `url` up to date with the migrations folder. Returns the
 * names of the migrations it applied (none when already up to date).
 *
 * PostgreSQL (postgres:// or postgresql://): see migrate-postgres.ts. SQLite: each pending migration runs in its own `BEGIN IMMEDIATE` transaction together with
 * the insert of its `_prisma_migrations` row, so a failed migration leaves neither
 * its changes nor a row, and a second process migrating the same file at the same
 * time waits for the write lock, then sees the row and skips that migration.
 */
export async function migrate(url: string, opts: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const log = opts.log ?? ((msg: string) => process.stderr.write(`${msg}\n`));
  if (isPostgresUrl(url)) {
    const { migratePostgres } = await import('./migrate-postgres.js');
    return { applied: await migratePostgres(url, readMigrations(opts.migrationsDir ?? defaultMigrationsDir('postgresql')), log) };
  }
  if (!isSqliteUrl(url)) {
    throw new Error(`migrate: unsupported DATABASE_URL ${redactUrl(url)} (use file:... or postgresql://...)`);
  }
  const migrations = readMigrations(opts.migrationsDir ?? defaultMigrationsDir('sqlite'));
  const file = sqlitePathFromUrl(url);
  const db = openSqlite(file, { timeoutMs: MIGRATE_BUSY_TIMEOUT_MS });
  try {
    return { applied: migrateSqlite(db, migrations, log) };
  } finally {
    db.close();
  }
}

function migrateSqlite(db: SqliteDatabase, migrations: MigrationFile[], log: (msg: string) => void): string[] {
  // Prisma's SQLite migrations rebuild tables (CREATE new_X, copy, DROP X, RENAME) with
  // `PRAGMA foreign_keys=OFF` around it. That pragma is a no-op inside a transaction, and
  // better-sqlite3 turns foreign keys on, under which DROP TABLE would run the ON DELETE
  // CASCADE actions of other tables' rows. So switch them off outside the transaction,
  // and check them before each commit instead, as SQLite's ALTER TABLE recipe does.
  db.pragma('foreign_keys = OFF');
  const applied: string[] = [];
  let warnedChecksums = false;

  for (;;) {
    db.exec('BEGIN IMMEDIATE');
    let committed = false;
    try {
      const rows = readMigrationRows(db);
      if (!warnedChecksums) {
        warnModified(rows, migrations, log);
        warnedChecksums = true;
      }
      const next = nextPending(rows, migrations);
      if (!next) {
        db.exec('COMMIT');
        committed = true;
        break;
      }

      log(`Applying migration \`${next.name}\``);
      const startedAt = Date.now();
      try {
        db.exec(next.script);
      } catch (error) {
        throw new Error(`migrate: migration \`${next.name}\` failed: ${(error as Error).message}`, { cause: error });
      }
      const violations = db.prepare('PRAGMA foreign_key_check').all();
      if (violations.length > 0) {
        throw new Error(`migrate: migration \`${next.name}\` leaves ${violations.length} foreign key violation(s): ` + JSON.stringify(violations.slice(0, 5)));
      }
      // Row as Prisma writes it: started_at/finished_at as Unix epoch milliseconds
      // (its quaint/rusqlite SQLite driver stores chrono DateTimes that way), logs and
      // rolled_back_at NULL, one step per SQLite migration script.
      db.prepare(
        `INSERT INTO "_prisma_migrations"
           ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at", "applied_steps_count")
         VALUES (?, ?, ?, ?, NULL, NULL, ?, 1)`,
      ).run(randomUUID(), next.checksum, Date.now(), next.name, startedAt);
      db.exec('COMMIT');
      committed = true;
      applied.push(next.name);
    } finally {
      if (!committed && db.inTransaction) db.exec('ROLLBACK');
    }
  }

  db.pragma('foreign_keys = ON');
  if (applied.length > 0) log(`Applied ${applied.length} migration(s): ${applied.join(', ')}`);
  return applied;
}

function readMigrationRows(db: SqliteDatabase): MigrationRow[] {
  const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`).get();
  if (!exists) {
    db.exec(PRISMA_MIGRATIONS_DDL.sqlite);
    return [];
  }
  return db
    .prepare(
      `SELECT "id", "checksum", "finished_at", "migration_name", "rolled_back_at"
         FROM "_prisma_migrations" ORDER BY "started_at" ASC`,
    )
    .all() as MigrationRow[];
}

// ---------------------------------------------------------------------------
// Small URL and SQLite helpers shared with client.ts.

export function isSqliteUrl(url: string): boolean {
  return url.startsWith('file:');
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/**
 * The file path of a `file:` URL, the way Prisma reads it: `file:./data/x.db` is
 * relative to the working directory, `file:/abs/x.db` and `file:///abs/x.db` are
 * absolute; a `?query` is dropped.
 */
export function sqlitePathFromUrl(url: string): string {
  if (!isSqliteUrl(url)) throw new Error(`not a file: URL: ${redactUrl(url)}`);
  let rest = url.slice('file:'.length);
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  if (rest.startsWith('//')) rest = rest.slice(2); // file:///abs -> /abs
  if (rest === '') throw new Error(`no file path in ${url}`);
  return rest;
}

export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** The part of better-sqlite3's API used here (the project has no @types/better-sqlite3). */
export interface SqliteDatabase {
  exec(sql: string): SqliteDatabase;
  prepare(sql: string): {
    run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
    get(...params: unknown[]): unknown;
    all(...params: unknown[]): unknown[];
  };
  pragma(sql: string, options?: { simple?: boolean }): unknown;
  close(): void;
  readonly inTransaction: boolean;
}

type SqliteConstructor = new (file: string, options?: { timeout?: number }) => SqliteDatabase;

const require = createRequire(import.meta.url);
let sqliteConstructor: SqliteConstructor | undefined;

/**
 * Opens (creating it and its folder if missing) a SQLite file with better-sqlite3,
 * waiting up to `timeoutMs` on other writers, and switches it to WAL mode (a
 * property of the file, so it holds for every later connection too).
 */
export function openSqlite(file: string, { timeoutMs }: { timeoutMs: number }): SqliteDatabase {
  sqliteConstructor ??= require('better-sqlite3') as SqliteConstructor;
  if (file !== ':memory:') {
    const dir = path.dirname(path.resolve(file));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) mkdirSync(dir, { recursive: true });
  }
  const db = new sqliteConstructor(file, { timeout: timeoutMs });
  try {
    if (file !== ':memory:') useWal(db, timeoutMs);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}

/**
 * `PRAGMA journal_mode = WAL`, retried: switching the mode needs an exclusive lock and
 * SQLite answers SQLITE_BUSY at once, without the busy handler, when another
 * connection holds a lock (two processes opening a new file together do hit this).
 */
function useWal(db: SqliteDatabase, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
    try {
      if (db.pragma('journal_mode', { simple: true }) === 'wal') return;
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode === 'wal') return;
      throw new Error(`SQLite refused WAL mode (journal_mode is ${String(mode)})`);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
    }
  }
}
