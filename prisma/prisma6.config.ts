// Config for the prisma@6.19.3 CLI (npm alias `prisma6`), used ONLY by
// scripts/new-migration.sh to write migration SQL offline.
//
// Why prisma 6: prisma 7's CLI needs a native schema-engine binary that it downloads
// on first use; prisma 6 can instead run its schema engine as WebAssembly
// (`engine: 'js'`) over a driver adapter, which works with no network. The app and
// `prisma generate` use prisma 7 and /prisma.config.ts.
//
// `migrate diff --from-migrations` replays prisma/migrations into a shadow database,
// which the adapter's connectToShadowDb() makes in memory; the url below is never
// opened by the diff. The PostgreSQL migrations come from schema-to-schema diffs
// (`--from-schema-datamodel`), which connect to nothing: their SQL follows the
// schemas' provider, not this adapter's.
import { defineConfig } from 'prisma6/config';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';

type Adapter = Awaited<ReturnType<PrismaBetterSqlite3['connect']>>;

// The wasm schema engine sends each migration.sql to the shadow database as ONE
// executeRaw() call, but the better-sqlite3 adapter (6.19.3 and 7.10.0 alike)
// runs executeRaw through better-sqlite3's prepare(), which refuses a string with
// more than one statement ("External error id#0", P3006). Retry such a call,
// which has no parameters, as a script (better-sqlite3's exec()).
function runScriptsAsScripts(adapter: Adapter): Adapter {
  const executeRaw = adapter.executeRaw.bind(adapter);
  adapter.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (query.args.length > 0) throw error;
      await adapter.executeScript(query.sql);
      return 0;
    }
  };
  return adapter;
}

class ScriptAwareBetterSqlite3 extends PrismaBetterSqlite3 {
  override async connect(): Promise<Adapter> {
    return runScriptsAsScripts(await super.connect());
  }
  override async connectToShadowDb(): Promise<Adapter> {
    return runScriptsAsScripts(await super.connectToShadowDb());
  }
}

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  adapter: async () => new ScriptAwareBetterSqlite3({ url: ':memory:' }),
});
