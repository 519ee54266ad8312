// src/db/migrate.ts against real SQLite files, and the generated PrismaClient on top.
// Needs the generated client: `npm run generate` (prisma generate) first.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, Prisma } from '../../src/db/client.js';
import { defaultMigrationsDir, migrate, PRISMA_MIGRATIONS_DDL } from '../../src/db/migrate.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const migrationsDir = path.join(projectRoot, 'prisma', 'migrations');
const INIT = '20261123000000_init';
/** Every migration the project ships, in order. */
const ALL = readdirSync(migrationsDir)
  .filter((d) => /^\d{14}_/.test(d))
  .sort();

const require = createRequire(import.meta.url);
interface Db {
  prepare(sql: string): { all(...p: unknown[]): Record<string, unknown>[]; get(...p: unknown[]): unknown; run(...p: unknown[]): unknown };
  exec(sql: string): void;
  close(): void;
}
const Database = require('better-sqlite3') as new (file: string, opts?: { readonly?: boolean }) => Db;

const tmpRoot = mkdtempSync(path.join(tmpdir(), 'gpubot-db-migrate-'));
let n = 0;
function tmpDbFile(): string {
  return path.join(tmpRoot, `t${++n}`, 'nested', 'gpubot.db');
}
function withDb<T>(file: string, fn: (db: Db) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
function rows(file: string): Record<string, unknown>[] {
  return withDb(file, (db) => db.prepare('SELECT * FROM _prisma_migrations ORDER BY migration_name').all());
}
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const quiet = () => {};

afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

describe('migrate (SQLite)', () => {
  it('defaults to <project>/prisma/migrations', () => {
    expect(defaultMigrationsDir()).toBe(migrationsDir);
  });

  it('applies the migrations to a new file, recording them as Prisma does', async () => {
    const file = tmpDbFile();
    const before = Date.now();
    const result = await migrate(`file:${file}`, { log: quiet });
    expect(result.applied).toEqual(ALL);
    expect(ALL[0]).toBe(INIT);
    expect(existsSync(file)).toBe(true);

    const [row, ...more] = rows(file);
    expect(more.map((r) => r['migration_name'])).toEqual(ALL.slice(1));
    expect(row).toMatchObject({
      migration_name: INIT,
      checksum: sha256(path.join(migrationsDir, INIT, 'migration.sql')),
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
    });
    expect(row?.['id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(row?.['started_at']).toBeGreaterThanOrEqual(before);
    expect(row?.['finished_at']).toBeGreaterThanOrEqual(row?.['started_at'] as number);

    withDb(file, (db) => {
      const ddl = db.prepare(`SELECT sql FROM sqlite_master WHERE name = '_prisma_migrations'`).get() as { sql: string };
      expect(`${ddl.sql};\n`).toBe(PRISMA_MIGRATIONS_DDL.sqlite);
      const tables = db
        .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
        .all()
        .map((r) => r['name']);
      expect(tables).toEqual([
        'Allocation',
        'AuditEvent',
        'ChatIdentity',
        'ClusterJob',
        'Container',
        'DashboardAccess',
        'DashboardKey',
        'Gpu',
        'GpuLease',
        'GpuSample',
        'Host',
        'ImageBuildLock',
        'Installation',
        'LinkCode',
        'LinkLock',
        'Notice',
        'QueuedRun',
        'QuotaOverride',
        'RetiredHandle',
        'SchedulerLease',
        'SshKey',
        'User',
        'UserImage',
        '_prisma_migrations',
      ]);
      expect(db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
    });

    // Up to date: a no-op.
    expect(await migrate(`file:${file}`, { log: quiet })).toEqual({ applied: [] });
    expect(rows(file)).toEqual([row, ...more]);
  });

  it('gives a PrismaClient where GpuLease allows one holder per GPU', async () => {
    const file = tmpDbFile();
    await migrate(`file:${file}`, { log: quiet });
    const db = await openDatabase(`file:${file}`);
    try {
      const user = await db.user.create({ data: { handle: 'alice', identities: { create: { platform: 'console', externalId: 'alice' } } } });
      const first = await db.allocation.create({
        data: {
          userId: user.id,
          kind: 'reservation',
          hostName: 'gpu1',
          gpuIndexes: '0,2',
          state: 'active',
          leases: {
            create: [
              { hostName: 'gpu1', gpuIndex: 0 },
              { hostName: 'gpu1', gpuIndex: 2 },
            ],
          },
        },
      });
      const second = await db.allocation.create({
        data: { userId: user.id, kind: 'container', hostName: 'gpu1', gpuIndexes: '2', state: 'active' },
      });

      const clash = db.gpuLease.create({ data: { allocationId: second.id, hostName: 'gpu1', gpuIndex: 2 } });
      await expect(clash).rejects.toBeInstanceOf(Prisma.PrismaClientKnownRequestError);
      await expect(clash).rejects.toMatchObject({ code: 'P2002' });

      // Another GPU, or the same index on another host, is fine.
      await db.gpuLease.create({ data: { allocationId: second.id, hostName: 'gpu1', gpuIndex: 1 } });
      await db.gpuLease.create({ data: { allocationId: second.id, hostName: 'gpu2', gpuIndex: 2 } });

      // Releasing (deleting the leases) frees the GPU.
      await db.gpuLease.deleteMany({ where: { allocationId: first.id } });
      await db.gpuLease.create({ data: { allocationId: second.id, hostName: 'gpu1', gpuIndex: 2 } });
      expect(await db.gpuLease.count({ where: { hostName: 'gpu1' } })).toBe(2);
    } finally {
      await db.$disconnect();
    }
  });

  it('applies each migration once when two calls race on a new file (in one process)', async () => {
    const file = tmpDbFile();
    const results = await Promise.all([migrate(`file:${file}`, { log: quiet }), migrate(`file:${file}`, { log: quiet })]);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(ALL);
    expect(rows(file).map((r) => r['migration_name'])).toEqual(ALL);
  });

  it('applies each migration once when two processes race on a new file', async () => {
    const dir = path.join(tmpRoot, `race${++n}`);
    const migrations = path.join(dir, 'migrations');
    cpSync(migrationsDir, migrations, { recursive: true });
    // A second, slow-ish migration, so the two processes overlap inside the work.
    mkdirSync(path.join(migrations, '29991231000000_more'));
    writeFileSync(
      path.join(migrations, '29991231000000_more', 'migration.sql'),
      `CREATE TABLE "Filler" ("id" INTEGER NOT NULL PRIMARY KEY, "v" TEXT NOT NULL);\n` +
        `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)\n` +
        `INSERT INTO "Filler" ("id", "v") SELECT x, hex(randomblob(32)) FROM c;\n`,
    );
    const file = path.join(dir, 'data', 'gpubot.db');
    const go = path.join(dir, 'go');
    const child = path.join(dir, 'child.mts');
    writeFileSync(
      child,
      `import { existsSync } from 'node:fs';
       import { migrate } from ${JSON.stringify(path.join(projectRoot, 'src/db/migrate.ts'))};
       process.stdout.write('ready\\n');
       while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 5));
       const result = await migrate(${JSON.stringify(`file:${file}`)}, { migrationsDir: ${JSON.stringify(migrations)}, log: () => {} });
       process.stdout.write(JSON.stringify(result) + '\\n');`,
    );

    const run = () => {
      const proc = spawn(process.execPath, ['--import', 'tsx', child], { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      const ready = new Promise<void>((resolve) => {
        proc.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('ready\n')) resolve();
        });
      });
      proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const done = new Promise<{ applied: string[] }>((resolve, reject) => {
        proc.on('close', (code) => {
          if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
          else resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { applied: string[] });
        });
      });
      return { ready, done };
    };

    const a = run();
    const b = run();
    await Promise.all([a.ready, b.ready]);
    writeFileSync(go, '');
    const [ra, rb] = await Promise.all([a.done, b.done]);

    expect([...ra.applied, ...rb.applied].sort()).toEqual([...ALL, '29991231000000_more']);
    expect(rows(file).map((r) => r['migration_name'])).toEqual([...ALL, '29991231000000_more']);
    withDb(file, (db) => expect(db.prepare('SELECT count(*) AS c FROM "Filler"').get()).toEqual({ c: 50000 }));
  }, 60_000);

  it('leaves neither changes nor a row when a migration fails, and resumes after the fix', async () => {
    const dir = path.join(tmpRoot, `fail${++n}`);
    const migrations = path.join(dir, 'migrations');
    cpSync(migrationsDir, migrations, { recursive: true });
    const bad = path.join(migrations, '29991231000000_bad', 'migration.sql');
    mkdirSync(path.dirname(bad));
    writeFileSync(bad, `CREATE TABLE "Half" ("id" INTEGER PRIMARY KEY);\nINSERT INTO "Nope" VALUES (1);\n`);
    const file = path.join(dir, 'gpubot.db');

    await expect(migrate(`file:${file}`, { migrationsDir: migrations, log: quiet })).rejects.toThrow(/29991231000000_bad.*no such table: Nope/);
    expect(rows(file).map((r) => r['migration_name'])).toEqual(ALL);
    withDb(file, (db) => expect(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'Half'`).get()).toBeUndefined());

    writeFileSync(bad, `CREATE TABLE "Half" ("id" INTEGER PRIMARY KEY);\n`);
    expect(await migrate(`file:${file}`, { migrationsDir: migrations, log: quiet })).toEqual({ applied: ['29991231000000_bad'] });
  });

  it('warns, without failing, when an applied migration.sql was modified', async () => {
    const dir = path.join(tmpRoot, `mod${++n}`);
    const migrations = path.join(dir, 'migrations');
    cpSync(migrationsDir, migrations, { recursive: true });
    const file = path.join(dir, 'gpubot.db');
    await migrate(`file:${file}`, { migrationsDir: migrations, log: quiet });

    const sql = path.join(migrations, INIT, 'migration.sql');
    // Line endings alone don't count (git may change them), as in Prisma.
    writeFileSync(sql, readFileSync(sql, 'utf8').replaceAll('\n', '\r\n'));
    const logs: string[] = [];
    await migrate(`file:${file}`, { migrationsDir: migrations, log: (m) => logs.push(m) });
    expect(logs).toEqual([]);

    writeFileSync(sql, `${readFileSync(sql, 'utf8')}\n-- edited\n`);
    expect(await migrate(`file:${file}`, { migrationsDir: migrations, log: (m) => logs.push(m) })).toEqual({ applied: [] });
    expect(logs).toEqual([`WARNING: The migration \`${INIT}\` was modified after it was applied.`]);
  });

  it('accepts rows written by Prisma itself (timestamps as text) and refuses a failed one', async () => {
    const dir = path.join(tmpRoot, `prisma${++n}`);
    const file = path.join(dir, 'gpubot.db');
    await migrate(`file:${file}`, { log: quiet });
    // What prisma migrate deploy through a driver adapter writes.
    withDb(file, (db) => db.prepare(`UPDATE _prisma_migrations SET started_at = '2026-11-23T19:35:08.350+00:00', finished_at = '2026-11-23T19:35:08.481+00:00'`).run());
    expect(await migrate(`file:${file}`, { log: quiet })).toEqual({ applied: [] });

    withDb(file, (db) => db.prepare(`UPDATE _prisma_migrations SET finished_at = NULL`).run());
    await expect(migrate(`file:${file}`, { log: quiet })).rejects.toThrow(/failed before/);
  });

  it("runs Prisma's table-rebuild migrations without cascading deletes", async () => {
    const dir = path.join(tmpRoot, `rebuild${++n}`);
    const migrations = path.join(dir, 'migrations');
    cpSync(migrationsDir, migrations, { recursive: true });
    const file = path.join(dir, 'gpubot.db');
    await migrate(`file:${file}`, { migrationsDir: migrations, log: quiet });
    withDb(file, (db) =>
      db.exec(`INSERT INTO "User" ("id", "handle") VALUES (1, 'alice');
               INSERT INTO "Allocation" ("id", "userId", "kind", "hostName", "gpuIndexes", "state") VALUES (1, 1, 'container', 'gpu1', '0', 'active');
               INSERT INTO "GpuLease" ("allocationId", "hostName", "gpuIndex") VALUES (1, 'gpu1', 0);`),
    );

    // As scripts/new-migration.sh writes it for `kind String @default("container")`.
    const rebuild = path.join(migrations, '29991231000000_allocation_kind_default', 'migration.sql');
    mkdirSync(path.dirname(rebuild));
    writeFileSync(
      rebuild,
      `-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Allocation" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "userId" INTEGER NOT NULL,
    "kind" TEXT NOT NULL DEFAULT 'container',
    "hostName" TEXT NOT NULL,
    "gpuIndexes" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endsAt" DATETIME,
    "releasedAt" DATETIME,
    "releaseReason" TEXT,
    CONSTRAINT "Allocation_userId_fkey" FOREIGN KEY ("userId") REFERENCES "User" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
INSERT INTO "new_Allocation" ("createdAt", "endsAt", "gpuIndexes", "hostName", "id", "kind", "releaseReason", "releasedAt", "state", "userId") SELECT "createdAt", "endsAt", "gpuIndexes", "hostName", "id", "kind", "releaseReason", "releasedAt", "state", "userId" FROM "Allocation";
DROP TABLE "Allocation";
ALTER TABLE "new_Allocation" RENAME TO "Allocation";
CREATE INDEX "Allocation_userId_state_idx" ON "Allocation"("userId", "state");
CREATE INDEX "Allocation_state_endsAt_idx" ON "Allocation"("state", "endsAt");
CREATE INDEX "Allocation_hostName_state_idx" ON "Allocation"("hostName", "state");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
`,
    );
    expect((await migrate(`file:${file}`, { migrationsDir: migrations, log: quiet })).applied).toEqual(['29991231000000_allocation_kind_default']);
    withDb(file, (db) => {
      expect(db.prepare('SELECT count(*) AS c FROM "GpuLease"').get()).toEqual({ c: 1 });
      expect(db.prepare('PRAGMA foreign_key_check').all()).toEqual([]);
    });
  });

  it('refuses a URL of no database it knows, without showing its password', async () => {
    const failure = migrate('mysql://u:secret@localhost/gpubot', { log: quiet });
    await expect(failure).rejects.toThrow(/unsupported DATABASE_URL mysql:\/\/\*\*\*@localhost/);
    await expect(failure).rejects.not.toThrow(/secret/);
  });
});
