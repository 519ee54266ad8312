// PostgreSQL as a first-class database: the migration runner, the PostgreSQL migrations
// against the schema they must produce, and /healthz while the database goes away and
// comes back. Runs on a private server (test/support/postgres-server.ts) so it may stop it.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { openDatabase } from '../../src/db/client.js';
import { defaultMigrationsDir, migrate } from '../../src/db/migrate.js';
import { startOpsServer } from '../../src/http/ops-server.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { createPostgresDatabase } from '../support/database.js';
import { postgresBinDir, startPostgresServer, type PostgresServer } from '../support/postgres-server.js';
import { waitFor } from '../support/wait.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const pgMigrations = path.join(root, 'prisma', 'postgres', 'migrations');
const ALL = readdirSync(pgMigrations)
  .filter((d) => /^\d{14}_/.test(d))
  .sort();
const quiet = () => {};
const run = promisify(execFile);

// Without the Debian package there is nothing to test against; CI installs it (.ci/run),
// so there a missing server is a failure, not a skip.
const installed = postgresBinDir() !== null;
if (!installed && process.env['CI']) throw new Error('PostgreSQL is not installed: .ci/run must apt-get install postgresql');

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(sql, params)).rows;
  } finally {
    await c.end();
  }
}

/** Tables, columns, indexes and constraints of the public schema, bookkeeping excluded. */
async function catalog(url: string): Promise<string[]> {
  const columns = await query<{ d: string }>(
    url,
    `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') AS d
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
  );
  const indexes = await query<{ d: string }>(url, `SELECT indexdef AS d FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations'`);
  const constraints = await query<{ d: string }>(
    url,
    `SELECT c.conrelid::regclass::text || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid) AS d
       FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
      WHERE n.nspname = 'public' AND c.conrelid::regclass::text <> '_prisma_migrations'`,
  );
  return [...columns, ...indexes, ...constraints].map((r) => r.d).sort();
}

describe.skipIf(!installed)('PostgreSQL', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgresServer();
  });
  afterAll(async () => {
    await server?.destroy();
  });

  it('has the same migrations as SQLite, and the PostgreSQL schema is derived from the one schema', async () => {
    const sqlite = readdirSync(defaultMigrationsDir('sqlite'))
      .filter((d) => /^\d{14}_/.test(d))
      .sort();
    expect(ALL).toEqual(sqlite);
    expect(defaultMigrationsDir('postgresql')).toBe(pgMigrations);
    await run('node', [path.join(root, 'scripts/postgres-schema.mjs'), '--check']);
  });

  it('applies the migrations to a new database, recording them as Prisma does, once', async () => {
    const url = await createPostgresDatabase('migrate', server.url);
    const before = Date.now();
    expect(await migrate(url, { log: quiet })).toEqual({ applied: ALL });
    const rows = await query<{
      migration_name: string;
      checksum: string;
      applied_steps_count: number;
      started_at: Date;
      finished_at: Date | null;
      logs: string | null;
      rolled_back_at: Date | null;
      id: string;
    }>(url, 'SELECT * FROM _prisma_migrations ORDER BY migration_name');
    expect(rows.map((r) => r.migration_name)).toEqual(ALL);
    for (const r of rows) {
      const file = path.join(pgMigrations, r.migration_name, 'migration.sql');
      expect(r.checksum).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
      expect(r).toMatchObject({ applied_steps_count: 1, logs: null, rolled_back_at: null });
      expect(r.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.finished_at!.getTime()).toBeGreaterThanOrEqual(r.started_at.getTime());
      expect(r.started_at.getTime()).toBeGreaterThanOrEqual(before - 60_000);
    }
    expect(await migrate(url, { log: quiet })).toEqual({ applied: [] });
    // The bot's client works on it.
    const db = await openDatabase(url);
    try {
      const u = await db.user.create({ data: { handle: 'alice', identities: { create: { platform: 'console', externalId: 'alice' } } } });
      expect(await db.user.findUnique({ where: { id: u.id }, include: { identities: true } })).toMatchObject({ handle: 'alice', identities: [{ platform: 'console' }] });
    } finally {
      await db.$disconnect();
    }
  });

  it('puts the tables in the URL’s ?schema= (else public), where the client looks, whatever search_path says', async () => {
    const base = await createPostgresDatabase('schema', server.url);
    // A schema named after the role would catch unqualified CREATE TABLEs under the default search_path.
    await query(base, 'CREATE SCHEMA gpubot');
    await migrate(base, { log: quiet });
    const lab = `${base}?schema=lab`;
    await migrate(lab, { log: quiet });
    const tables = async (schema: string) =>
      (await query<{ t: string }>(base, `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1`, [schema])).map((r) => r.t).sort();
    expect(await tables('public')).toContain('GpuLease');
    expect(await tables('lab')).toEqual(await tables('public'));
    expect(await tables('gpubot')).toEqual([]);
    for (const url of [base, lab]) {
      const db = await openDatabase(url);
      try {
        await db.user.create({ data: { handle: url === lab ? 'in-lab' : 'in-public' } });
      } finally {
        await db.$disconnect();
      }
    }
    expect((await query<{ handle: string }>(base, 'SELECT handle FROM lab."User"')).map((r) => r.handle)).toEqual(['in-lab']);
    expect((await query<{ handle: string }>(base, 'SELECT handle FROM public."User"')).map((r) => r.handle)).toEqual(['in-public']);
  });

  it('two bots starting together apply each migration once', async () => {
    const url = await createPostgresDatabase('race', server.url);
    const [a, b] = await Promise.all([migrate(url, { log: quiet }), migrate(url, { log: quiet })]);
    expect([...a.applied, ...b.applied].sort()).toEqual(ALL);
    expect((await query(url, 'SELECT 1 FROM _prisma_migrations')).length).toBe(ALL.length);
  });

  it('a failing migration leaves neither its changes nor a row, and applies once fixed', async () => {
    const url = await createPostgresDatabase('failing', server.url);
    const dir = mkdtempSync(path.join(tmpdir(), 'gpubot-pg-migrations-'));
    try {
      cpSync(pgMigrations, dir, { recursive: true });
      const bad = path.join(dir, '20991231000000_bad');
      mkdirSync(bad);
      writeFileSync(path.join(bad, 'migration.sql'), 'ALTER TABLE "User" ADD COLUMN "email" TEXT;\nALTER TABLE "Nope" ADD COLUMN "x" INTEGER;\n');
      await expect(migrate(url, { migrationsDir: dir, log: quiet })).rejects.toThrow(/20991231000000_bad.*"Nope" does not exist/);
      expect((await query<{ migration_name: string }>(url, 'SELECT migration_name FROM _prisma_migrations')).map((r) => r.migration_name).sort()).toEqual(ALL);
      expect(await query(url, `SELECT 1 FROM information_schema.columns WHERE table_name = 'User' AND column_name = 'email'`)).toEqual([]);
      writeFileSync(path.join(bad, 'migration.sql'), 'ALTER TABLE "User" ADD COLUMN "email" TEXT;\n');
      expect(await migrate(url, { migrationsDir: dir, log: quiet })).toEqual({ applied: ['20991231000000_bad'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the migrations build exactly the schema in prisma/postgres/schema.prisma', async () => {
    const migrated = await createPostgresDatabase('migrated', server.url);
    await migrate(migrated, { log: quiet });
    // The schema from scratch, as Prisma would write it: `migrate diff --from-empty`.
    const dir = mkdtempSync(path.join(tmpdir(), 'gpubot-pg-schema-'));
    try {
      const schema = readFileSync(path.join(root, 'prisma/postgres/schema.prisma'), 'utf8').replace(/(datasource \w+ \{)/, '$1\n  url = "postgresql://unused@127.0.0.1:1/unused"');
      writeFileSync(path.join(dir, 'schema.prisma'), schema);
      const env = {
        ...process.env,
        PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false',
        PRISMA_QUERY_ENGINE_LIBRARY: '/bin/false',
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
        CHECKPOINT_DISABLE: '1',
      };
      const { stdout: script } = await run(
        'node',
        [
          path.join(root, 'node_modules/prisma6/build/index.js'),
          'migrate',
          'diff',
          '--from-empty',
          '--to-schema-datamodel',
          path.join(dir, 'schema.prisma'),
          '--script',
          '--config',
          path.join(root, 'prisma/prisma6.config.ts'),
        ],
        { cwd: root, env },
      );
      expect(script).toContain('CREATE TABLE "GpuLease"');
      const fresh = await createPostgresDatabase('fresh', server.url);
      await query(fresh, script);
      const want = await catalog(fresh);
      expect(want.length).toBeGreaterThan(50);
      expect(await catalog(migrated)).toEqual(want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  describe('/healthz while the database goes away', () => {
    let bed: Bed;
    let app: App;
    let ops: Server;
    let base: string;
    beforeAll(async () => {
      bed = await startBed({ hosts: 1, gpusPerHost: 2 });
      app = await appFor(bed, {}, undefined, { databaseUrl: await createPostgresDatabase('healthz', server.url) });
      ops = await startOpsServer(app, 0);
      base = `http://127.0.0.1:${(ops.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      ops?.close();
      await app?.close();
      await bed?.teardown();
    });

    it('turns unhealthy when PostgreSQL stops and healthy again after it starts', async () => {
      const healthy = await fetch(`${base}/healthz`);
      expect(healthy.status).toBe(200);
      expect(await healthy.json()).toMatchObject({ ok: true, database: 'ok', hosts: { h1: { state: 'up' } } });
      expect((await chat(app, 'alice', 'reserve 1')).reply.tone).toBe('success');

      await server.stop();
      const sick = await fetch(`${base}/healthz`);
      expect(sick.status).toBe(503);
      const body = (await sick.json()) as { ok: boolean; database: string; hosts: Record<string, { state: string }> };
      expect(body.ok).toBe(false);
      expect(body.database).not.toBe('ok');
      expect(body.hosts.h1!.state).toBe('up');
      // A command meanwhile gets an error reply, and the bot stays up.
      const down = await chat(app, 'alice', 'ls');
      expect(down.reply.tone).toBe('error');
      expect(down.text).toContain('cannot reach its database');

      await server.start();
      await waitFor(async () => (await fetch(`${base}/healthz`)).status === 200, { what: 'healthz 200 again', timeoutMs: 15_000 });
      expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ ok: true, database: 'ok' });
      // Nothing was lost, and commands work again.
      const { text } = await chat(app, 'alice', 'ls');
      expect(text).toMatch(/reservation|reserved/i);
    });
  });
});
