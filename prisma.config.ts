// Prisma 7 CLI configuration (`prisma generate`, and `prisma migrate deploy` where the
// schema engine is available). The bot itself never reads this file: src/db/client.ts
// and src/db/migrate.ts use databaseUrl() with the same default.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: {
    url: process.env['DATABASE_URL'] ?? 'file:./data/gpubot.db',
  },
});
