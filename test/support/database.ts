// Which database the tests run on. By default a fresh SQLite file per test database;
// with GPUBOT_TEST_DATABASE=postgres, a fresh PostgreSQL database per test database on
// the server at GPUBOT_TEST_POSTGRES_URL (a role that may CREATE DATABASE). `npm test`
// runs the database-touching suites once on each (scripts/test.sh).
//
//   const url = await testDatabaseUrl(bed.baseDir, 'quota');   // same args, same database

import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type TestDatabaseKind = 'sqlite' | 'postgres';

/** Every PostgreSQL test database is named with this prefix, then the pid of the vitest run that made it. */
export const TEST_DATABASE_PREFIX = 'gpubot_t_';

/** The run's pid, set by globalSetup (workers inherit it); a run drops only its own databases and those of dead runs. */
const RUN_ENV = 'GPUBOT_TEST_RUN';
export function testRunId(env: NodeJS.ProcessEnv = process.env): string {
  return env[RUN_ENV] ?? String(process.pid);
}
export function markTestRun(env: NodeJS.ProcessEnv = process.env): string {
  env[RUN_ENV] = String(process.pid);
  return env[RUN_ENV];
}

export function testDatabaseKind(env: NodeJS.ProcessEnv = process.env): TestDatabaseKind {
  const kind = env['GPUBOT_TEST_DATABASE'] ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`GPUBOT_TEST_DATABASE must be sqlite or postgres, not ${kind}`);
  return kind;
}

export function postgresAdminUrl(env: NodeJS.ProcessEnv = process.env): string {
  const url = env['GPUBOT_TEST_POSTGRES_URL'];
  if (!url) throw new Error('GPUBOT_TEST_DATABASE=postgres needs GPUBOT_TEST_POSTGRES_URL (e.g. postgresql://gpubot:gpubot@127.0.0.1:5432/postgres)');
  return url;
}

const made = new Map<string, Promise<string>>();

/** A database for one test file's app: `dir` is where a SQLite file goes, `name` says whose it is. */
export function testDatabaseUrl(dir: string, name: string): Promise<string> {
  const key = `${dir}\0${name}`;
  let url = made.get(key);
  if (!url) {
    url = testDatabaseKind() === 'postgres' ? createPostgresDatabase(name) : Promise.resolve(`file:${dir}/${name}.db`);
    made.set(key, url);
  }
  return url;
}

/** A new, empty PostgreSQL database; returns its URL. */
export async function createPostgresDatabase(name: string, adminUrl: string = postgresAdminUrl()): Promise<string> {
  const db = `${TEST_DATABASE_PREFIX}${testRunId()}_${name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE "${db}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${db}`;
  return url.toString();
}

/**
 * Drops this run's test databases and leftovers of runs that are gone (an interrupted run), never those of
 * another run still going (two `npm test` at once on one server must not pull databases from under each other).
 */
export async function dropTestDatabases(adminUrl: string = postgresAdminUrl(), runId: string = testRunId()): Promise<number> {
  return withAdmin(adminUrl, async (c) => {
    const { rows } = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${TEST_DATABASE_PREFIX}%`]);
    const ours = rows.filter(({ datname }) => {
      const owner = /^gpubot_t_(\d+)_/.exec(datname)?.[1];
      return owner === undefined || owner === runId || !processAlive(Number(owner));
    });
    for (const { datname } of ours) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    return ours.length;
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withAdmin<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
