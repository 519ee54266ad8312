// vitest globalSetup: on a PostgreSQL run, check the server answers before any test
// starts (a clear error instead of every test failing), and drop the test databases
// after the run and before it (leftovers of an interrupted run).
import { dropTestDatabases, markTestRun, testDatabaseKind } from './database.js';

export async function setup(): Promise<() => Promise<void>> {
  if (testDatabaseKind() !== 'postgres') return async () => {};
  markTestRun();
  await dropTestDatabases();
  return async () => {
    await dropTestDatabases();
  };
}
