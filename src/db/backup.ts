// `gpubot backup FILE`: a consistent copy of a SQLite database while the bot runs (SQLite's
// online backup API, through better-sqlite3), which a plain `cp` of a WAL-mode file is not.
// PostgreSQL has pg_dump for that; this says so instead of guessing.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { isPostgresUrl, isSqliteUrl, openSqlite, redactUrl, sqlitePathFromUrl } from './migrate.js';

export async function backupDatabase(url: string, target: string): Promise<{ bytes: number }> {
  if (isPostgresUrl(url)) throw new Error('backup: for PostgreSQL use pg_dump (see the README, "Backups")');
  if (!isSqliteUrl(url)) throw new Error(`backup: unsupported DATABASE_URL ${redactUrl(url)}`);
  const source = sqlitePathFromUrl(url);
  if (!existsSync(source)) throw new Error(`backup: there is no database at ${source}`);
  if (existsSync(target)) throw new Error(`backup: ${target} exists; pick a new file name`);
  if (!existsSync(path.dirname(path.resolve(target)))) throw new Error(`backup: the folder of ${target} does not exist`);
  const db = openSqlite(source, { timeoutMs: 60_000 }) as ReturnType<typeof openSqlite> & { backup(file: string): Promise<{ totalPages: number }> };
  try {
    await db.backup(target);
  } finally {
    db.close();
  }
  return { bytes: statSync(target).size };
}
