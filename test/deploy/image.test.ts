// The production image (Dockerfile, .dockerignore), built and run for real: a dockerd of our own,
// node:20-bookworm{,-slim} made locally (no registry is reachable here), the classic builder with
// the host network for npm. Slow from scratch (two debootstraps, npm ci, better-sqlite3 compiled):
// about 6 minutes; about 4 with the base rootfs tarballs cached. See test/deploy/README.md.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { type BuildContext, type BuildStep, makeBuildContext, parseBuildSteps, REPO_ROOT } from './context.js';
import { type Dockerd, loadBaseImages, missingForImageTests, removeTree, runOk, startDockerd } from './docker-env.js';
import { postgresBinDir, startPostgresServer } from '../support/postgres-server.js';

const IMAGE = 'gpubot:deploy-test';
const REBUILT = 'gpubot:deploy-test-rebuilt';
const CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const missing = await missingForImageTests();
// Outside CI a machine without these tools skips, saying why; in CI the same gap fails (beforeAll).
const skip = missing.length > 0 && !CI;
if (skip) console.warn(`test/deploy/image.test.ts skipped: this machine lacks ${missing.join(', ')} (CI would fail)`);

const MIN = 60_000;
const log = (msg: string) => console.log(`[deploy] ${msg}`);
const secs = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1);

interface Built {
  ok: boolean;
  output: string;
  seconds: number;
  steps: BuildStep[];
}

describe.skipIf(skip)('the production image', () => {
  let d: Dockerd | undefined;
  let ctx: BuildContext | undefined;
  let first: Built;
  let work: string;
  const started = Date.now();

  async function build(tag: string): Promise<Built> {
    const t0 = Date.now();
    const r = await d!.docker(['build', '--network', 'host', '-t', tag, ctx!.dir], { timeoutMs: 20 * MIN });
    const output = `${r.stdout}\n${r.stderr}`;
    return { ok: r.code === 0, output, seconds: (Date.now() - t0) / 1000, steps: parseBuildSteps(r.stdout) };
  }
  /** docker run --rm --network none IMAGE ...args (the entrypoint is gpubot). */
  const runImage = (args: string[], opts: string[] = []) => d!.docker(['run', '--rm', '--network', 'none', ...opts, IMAGE, ...args], { timeoutMs: 2 * MIN });
  const sh = (script: string) => runImage(['-c', script], ['--entrypoint', 'sh']);

  beforeAll(async () => {
    if (missing.length > 0) throw new Error(`this machine lacks ${missing.join(', ')} (CI must install them: see test/deploy/README.md)`);
    work = await fs.mkdtemp('/tmp/gpubot-deploy-');
    let t0 = Date.now();
    d = await startDockerd();
    log(`dockerd up in ${secs(t0)} s (${d.baseDir})`);
    t0 = Date.now();
    const bases = await loadBaseImages(d, log);
    for (const b of bases) log(`${b.image}: ${b.cached ? 'rootfs from the cache' : `rootfs made in ${b.seconds.toFixed(1)} s`} (${b.tar})`);
    log(`base images ready in ${secs(t0)} s`);
    ctx = await makeBuildContext();
    first = await build(IMAGE);
    log(`docker build: ${first.ok ? 'ok' : 'FAILED'} in ${first.seconds.toFixed(1)} s`);
  }, 30 * MIN);

  afterAll(async () => {
    const t0 = Date.now();
    await d?.stop();
    if (d) log(`dockerd stopped in ${secs(t0)} s`);
    if (ctx) await removeTree(ctx.dir);
    if (work) await removeTree(work);
    log(`deploy image tests took ${secs(started)} s in all`);
  }, 2 * MIN);

  it('builds from the Dockerfile, multi-stage, FROM node:20-bookworm and node:20-bookworm-slim', async () => {
    expect(first.ok, first.output.slice(-6000)).toBe(true);
    const froms = first.steps.filter((s) => s.instruction.startsWith('FROM')).map((s) => s.instruction);
    expect(froms).toEqual(['FROM node:20-bookworm AS deps', 'FROM deps AS prod-deps', 'FROM deps AS build', 'FROM node:20-bookworm-slim']);
    const base = JSON.parse((await d!.dockerOk(['image', 'inspect', 'node:20-bookworm-slim'])).stdout)[0].RootFS.Layers as string[];
    const layers = JSON.parse((await d!.dockerOk(['image', 'inspect', IMAGE])).stdout)[0].RootFS.Layers as string[];
    expect(layers.slice(0, base.length)).toEqual(base);
  });

  it('runs: help prints the usage', async () => {
    const r = await runImage(['help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^gpubot: share GPU servers/);
    expect(r.stdout).toContain('gpubot migrate');
  });

  it('migrates a SQLite database (better-sqlite3 addon and Prisma client load) and answers a chat command', async () => {
    const migrations = (await fs.readdir(path.join(ctx!.dir, 'prisma/migrations'), { withFileTypes: true })).filter((e) => e.isDirectory()).length;
    expect(migrations).toBeGreaterThan(0);
    const explicit = await runImage(['migrate'], ['-e', 'DATABASE_URL=file:/app/data/x.db']);
    expect(explicit.code, explicit.stderr).toBe(0);
    expect(explicit.stdout).toContain(`applied ${migrations} migration(s)`);

    // The default URL (file:./data/gpubot.db) on a named volume: /app/data is the non-root user's,
    // and the volume takes that over, so the database survives the container.
    await d!.dockerOk(['volume', 'create', 'gpubot-deploy-test-data']);
    const vol = ['-v', 'gpubot-deploy-test-data:/app/data'];
    const m1 = await runImage(['migrate'], vol);
    expect(m1.code, m1.stderr).toBe(0);
    expect(m1.stdout).toContain(`applied ${migrations} migration(s)`);
    const m2 = await runImage(['migrate'], vol);
    expect(m2.code, m2.stderr).toBe(0);
    expect(m2.stdout).toContain('the database is up to date');
    const chat = await runImage(['chat', '--user', 'alice', 'quota'], vol);
    expect(chat.code, `${chat.stdout}\n${chat.stderr}`).toBe(0);
    expect(chat.stdout).toContain('Quota of alice');
    const files = await runImage(['-c', 'ls -ln /app/data'], ['--entrypoint', 'sh', ...vol]);
    expect(files.stdout).toMatch(/ 1000 +1000 .* gpubot\.db/);
  });

  // What docker-compose.yml runs: DATABASE_URL=postgresql://... (here a private server on the
  // host's 127.0.0.1, reached with --network host).
  it(
    'migrates a PostgreSQL database (the pg adapter, the PostgreSQL client, prisma/postgres/migrations) and answers a chat command',
    async (t) => {
      if (!postgresBinDir()) {
        if (CI) throw new Error('PostgreSQL is not installed (CI must apt-get install postgresql)');
        t.skip('PostgreSQL is not installed here (apt-get install postgresql)');
      }
      const migrations = (await fs.readdir(path.join(ctx!.dir, 'prisma/postgres/migrations'), { withFileTypes: true })).filter((e) => e.isDirectory()).length;
      expect(migrations).toBeGreaterThan(0);
      const pg = await startPostgresServer();
      try {
        const env = ['-e', `DATABASE_URL=${pg.url}`];
        const run = (args: string[]) => d!.docker(['run', '--rm', '--network', 'host', ...env, IMAGE, ...args], { timeoutMs: 2 * MIN });
        const m1 = await run(['migrate']);
        expect(m1.code, m1.stderr).toBe(0);
        expect(m1.stdout).toContain(`applied ${migrations} migration(s)`);
        const m2 = await run(['migrate']);
        expect(m2.code, m2.stderr).toBe(0);
        expect(m2.stdout).toContain('the database is up to date');
        const chat = await run(['chat', '--user', 'alice', 'quota']);
        expect(chat.code, `${chat.stdout}\n${chat.stderr}`).toBe(0);
        expect(chat.stdout).toContain('Quota of alice');
      } finally {
        await pg.destroy();
      }
    },
    3 * MIN,
  );

  it('runs as the non-root user node (uid 1000), with NODE_ENV=production', async () => {
    const cfg = JSON.parse((await d!.dockerOk(['image', 'inspect', IMAGE])).stdout)[0].Config as { User: string; Env: string[]; Entrypoint: string[]; Cmd: string[] };
    expect(cfg.User).toBe('node');
    expect(cfg.Env).toContain('NODE_ENV=production');
    expect([...cfg.Entrypoint, ...cfg.Cmd]).toEqual(['gpubot', 'start']);
    const id = await sh('id -u; id -g; echo "$NODE_ENV"');
    expect(id.stdout.split('\n').slice(0, 3)).toEqual(['1000', '1000', 'production']);
    // The bot cannot change its own code.
    const w = await sh('touch /app/dist/x 2>/dev/null && echo writable || echo read-only; touch /app/data/x && echo data-ok');
    expect(w.stdout).toBe('read-only\ndata-ok\n');
  });

  it('has no compiler, make or python', async () => {
    const r = await sh('for b in g++ gcc c++ cc make python3 python; do command -v "$b"; done; true');
    expect(r.stdout).toBe('');
    const pkgs = (await sh("dpkg-query -W -f='${Package}\\n'")).stdout.split('\n');
    for (const p of ['g++', 'g++-12', 'gcc', 'gcc-12', 'make', 'python3', 'python3.11', 'libc6-dev']) expect(pkgs).not.toContain(p);
  });

  it('has the production dependencies only, and better-sqlite3 compiled', async () => {
    const lock = JSON.parse(await fs.readFile(path.join(ctx!.dir, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
    };
    const topLevel = (k: string) => k.startsWith('node_modules/') && !k.slice('node_modules/'.length).includes('/node_modules/');
    const names = (f: (v: { dev?: boolean; devOptional?: boolean; optional?: boolean }) => boolean) =>
      Object.entries(lock.packages)
        .filter(([k, v]) => topLevel(k) && f(v))
        .map(([k]) => k.slice('node_modules/'.length));
    const devOnly = names((v) => Boolean(v.dev || v.devOptional));
    const prod = names((v) => !v.dev && !v.devOptional && !v.optional);
    expect(devOnly).toEqual(expect.arrayContaining(['typescript', 'vitest', 'prisma', 'tsx', 'prisma6']));
    const listing = await runImage(
      [
        '-e',
        `const fs = require('fs');
         const out = [];
         for (const e of fs.readdirSync('/app/node_modules')) {
           if (e.startsWith('@')) for (const s of fs.readdirSync('/app/node_modules/' + e)) out.push(e + '/' + s);
           else if (!e.startsWith('.')) out.push(e);
         }
         console.log(JSON.stringify(out));`,
      ],
      ['--entrypoint', 'node'],
    );
    expect(listing.code, listing.stderr).toBe(0);
    const present = new Set(JSON.parse(listing.stdout) as string[]);
    expect(devOnly.filter((n) => present.has(n))).toEqual([]);
    expect(prod.filter((n) => !present.has(n))).toEqual([]);
    for (const n of ['@prisma/client', '@prisma/adapter-better-sqlite3', '@prisma/adapter-pg', 'better-sqlite3']) expect(present.has(n), n).toBe(true);
    const addon = await sh('ls /app/node_modules/better-sqlite3/build/Release/');
    expect(addon.stdout).toBe('better_sqlite3.node\n');
  });

  it('holds only the app (package.json, node_modules, prisma, dist, data): no .env, config, key, database, test or source file', async () => {
    const app = await sh('ls -A /app; echo ---; ls -A /app/data; echo ---; ls /app/prisma');
    const [top, data, prisma] = app.stdout.split('---\n');
    expect(top!.trim().split('\n').sort()).toEqual(['data', 'dist', 'node_modules', 'package.json', 'prisma']);
    expect(data!.trim()).toBe('');
    expect(prisma).toContain('migrations');
    // Every byte of every layer of the image, and its config and history: no planted file's canary.
    const saved = path.join(work, 'image.tar');
    await d!.dockerOk(['save', '-o', saved, IMAGE], { timeoutMs: 5 * MIN });
    const bytes = await fs.readFile(saved);
    expect(bytes.indexOf(ctx!.canary), `canary of ${ctx!.planted.join(', ')} found in the image`).toBe(-1);
    const history = await d!.dockerOk(['history', '--no-trunc', IMAGE]);
    expect(history.stdout).not.toContain(ctx!.canary);
    // File names across the filesystem, packages aside (some ship their own tests and fixtures).
    const files = (await sh('find / -xdev \\( -path /proc -o -path /sys -o -path /app/node_modules -o -path /usr/local/lib/node_modules \\) -prune -o -print')).stdout.split('\n');
    const bad = files.filter(
      (f) => /(^|\/)(\.env|gpubot\.yaml|gpubot_ssh_key|id_ed25519|[^/]*\.db|[^/]*\.test\.ts)$/.test(f) || f.startsWith('/app/src') || f.startsWith('/app/test'),
    );
    expect(bad).toEqual([]);
    await fs.rm(saved);
  });

  it(
    "starts with the side port; the compose file's healthcheck passes; stops cleanly on SIGTERM; reads an SSH key mounted for uid 1000",
    async () => {
      const compose = parseYaml(await fs.readFile(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as {
        services: { gpubot: { healthcheck: { test: string[] }; environment: Record<string, string> } };
      };
      const check = compose.services.gpubot.healthcheck.test;
      expect(check[0]).toBe('CMD');
      const configPath = compose.services.gpubot.environment.GPUBOT_CONFIG!;
      // As the compose file mounts them: the config read-only, the key as a secret (a bind mount
      // with the file's own owner and mode).
      const keyFile = path.join(work, 'gpubot_ssh_key');
      await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', keyFile]);
      await fs.chown(keyFile, 1000, 1000);
      await fs.chmod(keyFile, 0o600);
      const hostKey = (await fs.readFile(`${keyFile}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
      const cfgFile = path.join(work, 'gpubot.yaml');
      await fs.writeFile(
        cfgFile,
        [
          'hosts:',
          '  - name: gpu1',
          // Nothing listens there (and --network none): the connection is refused after the key is read.
          '    ssh: { host: 127.0.0.1, port: 1, user: gpubot, privateKeyPath: /run/secrets/gpubot_ssh_key, hostKey: "' + hostKey + '" }',
          'http: { port: 9090, host: 0.0.0.0 }',
          '',
        ].join('\n'),
      );
      await fs.chmod(cfgFile, 0o644);
      // -i keeps stdin open: with no chat token the console adapter reads it (compose: stdin_open).
      const name = 'gpubot-deploy-test-start';
      const started = await d!.dockerOk([
      'run', '-d', '-i', '--init', '--name', name, '--network', 'none',
      '-e', `GPUBOT_CONFIG=${configPath}`,
      '-v', `${cfgFile}:${configPath}:ro`,
      '-v', `${keyFile}:/run/secrets/gpubot_ssh_key:ro`,
      IMAGE,
    ]); // prettier-ignore
      expect(started.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
      try {
        let health = { code: -1, stdout: '', stderr: '' };
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline) {
          health = await d!.docker(['exec', name, ...check.slice(1)], { timeoutMs: 20_000 });
          if (health.code === 0) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        const logs = await d!.docker(['logs', name]);
        expect(health.code, `${health.stderr}\n${logs.stderr}`).toBe(0);
        expect(logs.stderr).toContain('gpubot started');
        const body = await d!.dockerOk([
        'exec', name, 'node', '-e',
        "fetch('http://127.0.0.1:9090/healthz').then((r) => r.text()).then((t) => console.log(t))",
      ]); // prettier-ignore
        const healthz = JSON.parse(body.stdout) as { ok: boolean; database: string; hosts: Record<string, { state: string; lastError?: string }> };
        expect(healthz.ok).toBe(true);
        expect(healthz.database).toBe('ok');
        // The key was read (an unreadable key fails with EACCES before any connection is tried).
        let gpu1 = healthz.hosts.gpu1;
        for (let i = 0; i < 40 && !gpu1?.lastError; i++) {
          await new Promise((r) => setTimeout(r, 250));
          const again = await d!.dockerOk(['exec', name, 'node', '-e', "fetch('http://127.0.0.1:9090/healthz').then((r) => r.text()).then((t) => console.log(t))"]);
          gpu1 = (JSON.parse(again.stdout) as typeof healthz).hosts.gpu1;
        }
        expect(gpu1?.lastError).toMatch(/ECONNREFUSED/);
        const metrics = await d!.dockerOk(['exec', name, 'node', '-e', "fetch('http://127.0.0.1:9090/metrics').then((r) => r.text()).then((t) => console.log(t))"]);
        expect(metrics.stdout).toContain('gpubot_host_up{host="gpu1"} 0');

        const t0 = Date.now();
        await d!.dockerOk(['stop', '-t', '20', name], { timeoutMs: MIN });
        const state = JSON.parse((await d!.dockerOk(['inspect', name])).stdout)[0].State as { ExitCode: number };
        expect(state.ExitCode).toBe(0);
        expect(Date.now() - t0).toBeLessThan(15_000);
        expect((await d!.docker(['logs', name])).stderr).toContain('shutting down');
      } finally {
        await d!.docker(['rm', '-f', name]);
      }
      // A key only root may read is refused to uid 1000: the reason for the ownership in the README.
      await fs.chown(keyFile, 0, 0);
      const denied = await runImage(['chat', '--user', 'alice', 'status'], [
      '-e', `GPUBOT_CONFIG=${configPath}`, '-v', `${cfgFile}:${configPath}:ro`, '-v', `${keyFile}:/run/secrets/gpubot_ssh_key:ro`,
    ]); // prettier-ignore
      expect(denied.stdout).toMatch(/EACCES|permission denied/i);
    },
    3 * MIN,
  );

  it(
    'keeps the dependency layers after a source-only change: only dist/ is rebuilt',
    async () => {
      expect(first.ok).toBe(true);
      const main = path.join(ctx!.dir, 'src/cli/main.ts');
      await fs.appendFile(main, `\n// a source-only change ${Date.now()}\n`);
      const second = await build(REBUILT);
      expect(second.ok, second.output.slice(-6000)).toBe(true);
      log(`rebuild after a source change: ${second.seconds.toFixed(1)} s`);
      const step = (b: Built, re: RegExp) => {
        const s = b.steps.find((x) => re.test(x.instruction));
        expect(s, `no step ${re} in:\n${b.steps.map((x) => x.instruction).join('\n')}`).toBeDefined();
        return s!;
      };
      // The install steps come from the cache: same layer, no npm ci.
      for (const re of [/^COPY package\.json package-lock\.json/, /^RUN npm ci /, /^RUN npm prune /, /^COPY --from=prod-deps /]) {
        const s = step(second, re);
        expect(s.cached, s.instruction).toBe(true);
        expect(s.id).toBe(step(first, re).id);
      }
      expect(second.output).not.toMatch(/added \d+ packages/);
      // The change was seen: sources copied again, dist rebuilt.
      expect(step(second, /^COPY src /).cached).toBe(false);
      expect(step(second, /^RUN npm run build/).cached).toBe(false);
      // The runtime image differs from the first in its last layer (dist/) only.
      const layers = async (img: string) => JSON.parse((await d!.dockerOk(['image', 'inspect', img])).stdout)[0].RootFS.Layers as string[];
      const [a, b] = [await layers(IMAGE), await layers(REBUILT)];
      expect(b.length).toBe(a.length);
      expect(b.slice(0, -1)).toEqual(a.slice(0, -1));
      expect(b.at(-1)).not.toBe(a.at(-1));
      const help = await d!.docker(['run', '--rm', '--network', 'none', REBUILT, 'help']);
      expect(help.code).toBe(0);
    },
    20 * MIN,
  );

  it(
    'reports its size',
    async () => {
      const inspect = JSON.parse((await d!.dockerOk(['image', 'inspect', IMAGE, 'node:20-bookworm-slim'])).stdout) as Array<{ Size: number }>;
      const [size, base] = [inspect[0]!.Size, inspect[1]!.Size];
      const saved = await runOk('sh', ['-c', `docker save ${IMAGE} | wc -c`], { env: d!.env, timeoutMs: 5 * MIN });
      const tar = Number(saved.stdout.trim());
      const gz = Number((await runOk('sh', ['-c', `docker save ${IMAGE} | gzip -1 | wc -c`], { env: d!.env, timeoutMs: 5 * MIN })).stdout.trim());
      const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
      log(
        `image ${IMAGE}: ${mb(size)} (docker image inspect .Size; the node:20-bookworm-slim stand-in is ${mb(base)}, the app adds ${mb(size - base)}); docker save: ${mb(tar)}, gzipped ${mb(gz)}`,
      );
      expect(size).toBeGreaterThan(base);
      // The app's own share (dist, production node_modules, prisma): catch a dev dependency or a
      // build tree creeping back in (it is about 150 MB, most of it @prisma/client's engines).
      expect(size - base).toBeLessThan(250e6);
    },
    10 * MIN,
  );
});
