// Every package the code imports is declared in package.json, and what src/ loads at run time is
// a dependency (not a devDependency, which a production install leaves out).
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const SKIP = new Set(['node_modules', 'dist', 'generated', 'generated-postgres']);

function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    if (SKIP.has(e.name)) return [];
    const rel = path.join(dir, e.name);
    return e.isDirectory() ? sources(rel) : /\.(ts|mjs|cjs|js)$/.test(e.name) ? [rel] : [];
  });
}

/** The packages a file imports, each with whether only its types are imported. */
function imports(file: string): { name: string; typeOnly: boolean }[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  const found: { name: string; typeOnly: boolean }[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[3] ?? m[4] ?? m[5]!;
    if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0]!)) continue;
    const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
    found.push({ name, typeOnly: Boolean(m[2]) });
  }
  return found;
}

describe('package.json', () => {
  const files = ['src', 'test', 'bench', 'scripts'].flatMap(sources).concat(['prisma.config.ts', 'vitest.config.ts', 'eslint.config.js']);

  it('declares every package the code imports', () => {
    const declared = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)]);
    const missing = files.flatMap((f) =>
      imports(f)
        .filter((i) => !declared.has(i.name))
        .map((i) => `${f}: ${i.name}`),
    );
    expect(missing).toEqual([]);
  });

  it('has what src/ loads at run time as a dependency', () => {
    const runtime = new Set(Object.keys(pkg.dependencies));
    const dev = files
      .filter((f) => f.startsWith('src/'))
      .flatMap((f) =>
        imports(f)
          .filter((i) => !i.typeOnly && !runtime.has(i.name))
          .map((i) => `${f}: ${i.name}`),
      );
    expect(dev).toEqual([]);
  });

  it('sees the imports it checks', () => {
    expect(imports('src/hosts/remote-host.ts')).toContainEqual({ name: 'dockerode', typeOnly: false });
    expect(imports('src/hosts/ssh-connection.ts')).toContainEqual({ name: 'ssh2', typeOnly: true });
    expect(files.length).toBeGreaterThan(100);
  });
});
