// What both migration runners (SQLite in migrate.ts, PostgreSQL in migrate-postgres.ts)
// share: the migration folders, Prisma's checksums, and how `_prisma_migrations` rows
// decide what is pending.

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Provider = 'sqlite' | 'postgresql';

/**
 * `CREATE TABLE` for `_prisma_migrations`, byte for byte as Prisma's schema engine
 * (7.10.0 and 6.19.3, node_modules/prisma{,6}/build/schema_engine_bg.wasm) issues it.
 */
export const PRISMA_MIGRATIONS_DDL = {
  sqlite: `CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
);
`,
  postgresql: `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
`,
} as const;

export interface MigrationFile {
  name: string;
  script: string;
  checksum: string;
}

/** The `_prisma_migrations` columns the runners read. */
export interface MigrationRow {
  id: string;
  checksum: string;
  finished_at: unknown;
  migration_name: string;
  rolled_back_at: unknown;
}

/**
 * The next migration to apply given the rows already written, or null when up to date.
 * Throws on a row left by a failed migration, as `prisma migrate deploy` does (P3009).
 */
export function nextPending(rows: MigrationRow[], migrations: MigrationFile[]): MigrationFile | null {
  const failed = rows.find((r) => r.finished_at == null && r.rolled_back_at == null);
  if (failed) {
    throw new Error(
      `migrate: migration \`${failed.migration_name}\` failed before (its _prisma_migrations row has no ` +
        'finished_at); fix the database, then mark it with `prisma migrate resolve` (P3009).',
    );
  }
  const done = new Set(rows.filter((r) => r.finished_at != null && r.rolled_back_at == null).map((r) => r.migration_name));
  return migrations.find((m) => !done.has(m.name)) ?? null;
}

export function warnModified(rows: MigrationRow[], migrations: MigrationFile[], log: (msg: string) => void): void {
  const byName = new Map(migrations.map((m) => [m.name, m]));
  for (const row of rows) {
    if (row.finished_at == null || row.rolled_back_at != null) continue;
    const file = byName.get(row.migration_name);
    if (file && !scriptMatchesChecksum(file.script, row.checksum)) {
      // Prisma's wording; like `migrate deploy` it is not an error.
      log(`WARNING: The migration \`${row.migration_name}\` was modified after it was applied.`);
    }
  }
}

/** sha256 hex of the text, as Prisma computes a migration's checksum. */
export function checksumOf(script: string | Buffer): string {
  return createHash('sha256').update(script).digest('hex');
}

/**
 * Prisma's comparison: the script as is, or with its line endings turned to LF or
 * CRLF (git may have rewritten them), matches the stored checksum.
 */
function scriptMatchesChecksum(script: string, checksum: string): boolean {
  return checksumOf(script) === checksum || checksumOf(script.replaceAll('\r\n', '\n')) === checksum || checksumOf(script.replaceAll('\n', '\r\n')) === checksum;
}

export function readMigrations(dir: string): MigrationFile[] {
  if (!existsSync(dir)) throw new Error(`migrate: migrations folder not found: ${dir}`);
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return names.map((name) => {
    const file = path.join(dir, name, 'migration.sql');
    if (!existsSync(file)) {
      // Prisma refuses too (P3015).
      throw new Error(`migrate: ${file} is missing; delete the folder ${name} or restore the file`);
    }
    const bytes = readFileSync(file);
    return { name, script: bytes.toString('utf8'), checksum: checksumOf(bytes) };
  });
}

/**
 * The migrations folder of a provider: <project>/prisma/migrations for SQLite,
 * <project>/prisma/postgres/migrations for PostgreSQL, where <project> is the nearest
 * folder above this module holding a package.json: works from src/db/ (tsx, vitest)
 * and from dist/db/ alike.
 */
export function defaultMigrationsDir(provider: Provider = 'sqlite'): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sub = provider === 'postgresql' ? ['prisma', 'postgres', 'migrations'] : ['prisma', 'migrations'];
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, ...sub);
    if (path.dirname(dir) === dir) throw new Error(`migrate: no package.json above ${here}`);
  }
}
