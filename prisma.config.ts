// Prisma 7 CLI configuration (`prisma generate`, and `prisma migrate deploy` where the
// schema engine is available). The provider follows DATABASE_URL, as in the bot:
// postgres(ql):// uses prisma/postgres/ (schema derived from prisma/schema.prisma, and
// its own migrations), anything else the SQLite schema and prisma/migrations.
// The bot itself never reads this file: src/db/ uses databaseUrl() with the same default.
import { defineConfig } from 'prisma/config';

const url = process.env['DATABASE_URL'] || 'file:./data/gpubot.db';
const dir = /^postgres(ql)?:\/\//.test(url) ? 'prisma/postgres' : 'prisma';

export default defineConfig({
  schema: `${dir}/schema.prisma`,
  migrations: { path: `${dir}/migrations` },
  datasource: { url },
});
