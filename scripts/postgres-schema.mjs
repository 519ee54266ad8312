#!/usr/bin/env node
// prisma/schema.prisma is the one schema. Prisma fixes the provider in the schema
// file, so the PostgreSQL copy, prisma/postgres/schema.prisma, is derived from it:
// only the datasource provider and the generated client's folder differ.
//
//   node scripts/postgres-schema.mjs            # write prisma/postgres/schema.prisma
//   node scripts/postgres-schema.mjs --check    # exit 1 when it is out of date
//   node scripts/postgres-schema.mjs --stdin    # convert stdin to stdout (any version)
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'prisma/schema.prisma');
const target = path.join(root, 'prisma/postgres/schema.prisma');

const HEADER = `// GENERATED from prisma/schema.prisma by scripts/postgres-schema.mjs: do not edit.
// Edit prisma/schema.prisma, then run scripts/new-migration.sh NAME (it writes the
// migration for both databases and this file).

`;

export function toPostgres(schema) {
  const provider = /(datasource\s+\w+\s*\{[^}]*?provider\s*=\s*)"sqlite"/;
  const output = /(generator\s+client\s*\{[^}]*?output\s*=\s*)"\.\.\/src\/db\/generated"/;
  if (!provider.test(schema)) throw new Error('postgres-schema: no `provider = "sqlite"` datasource in prisma/schema.prisma');
  if (!output.test(schema)) throw new Error('postgres-schema: no `output = "../src/db/generated"` in the client generator');
  return HEADER + schema.replace(provider, '$1"postgresql"').replace(output, '$1"../../src/db/generated-postgres"');
}

const arg = process.argv[2];
if (arg === '--stdin') {
  process.stdout.write(toPostgres(readFileSync(0, 'utf8')));
} else {
  const wanted = toPostgres(readFileSync(source, 'utf8'));
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {}
  if (arg === '--check') {
    if (current !== wanted) {
      process.stderr.write('prisma/postgres/schema.prisma is out of date: run node scripts/postgres-schema.mjs\n');
      process.exit(1);
    }
  } else if (current !== wanted) {
    writeFileSync(target, wanted);
    process.stdout.write('wrote prisma/postgres/schema.prisma\n');
  }
}
