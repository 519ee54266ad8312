// docker-compose.yml as Compose itself reads it: `docker-compose config` (Debian 12's
// docker-compose 1.29.2) in a folder laid out as the README says (.env from .env.example,
// gpubot.yaml, secrets/gpubot_ssh_key), then the rendered config checked piece by piece.
// No daemon needed.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from './context.js';
import { removeTree, run, type RunResult } from './docker-env.js';

const CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const hasCompose = (await run('docker-compose', ['version', '--short'])).code === 0;
// Outside CI a machine without docker-compose skips, saying why; in CI that fails (beforeAll).
const skip = !hasCompose && !CI;
if (skip) console.warn('test/deploy/compose.test.ts skipped: docker-compose is not installed (apt-get install docker-compose; CI would fail)');

const PASSWORD = 'f00dcafe0123456789abcdef';

interface Service {
  image?: string;
  build?: { context: string };
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  volumes?: Array<string | { type: string; source: string; target: string; read_only?: boolean }>;
  secrets?: Array<string | { source: string; target?: string }>;
  restart?: string;
  ports?: Array<string | { target: number; published: number | string; host_ip?: string; protocol?: string }>;
  init?: boolean;
  stdin_open?: boolean;
}
interface Rendered {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file: string }>;
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  /** a named volume (not a path) */
  named: boolean;
}
function mounts(s: Service): Mount[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, readOnly: Boolean(v.read_only), named: v.type === 'volume' };
    const [source = '', target = '', mode = 'rw'] = v.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro'), named: !source.startsWith('/') && !source.startsWith('.') };
  });
}

/** "IP:PUBLISHED:TARGET/PROTO" whichever syntax Compose renders (1.29: short, v2: long). */
function ports(s: Service): string[] {
  return (s.ports ?? []).map((p) => (typeof p === 'string' ? p : `${p.host_ip ?? '0.0.0.0'}:${p.published}:${p.target}/${p.protocol ?? 'tcp'}`));
}

describe.skipIf(skip)('docker-compose.yml', () => {
  let dir: string;
  const compose = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> =>
    // Only what the folder says: no DOCKER_HOST, no POSTGRES_PASSWORD from this process.
    run('docker-compose', ['--project-directory', dir, '-f', path.join(dir, 'docker-compose.yml'), ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      timeoutMs: 60_000,
    });

  beforeAll(async () => {
    if (!hasCompose) throw new Error('docker-compose is not installed (CI must apt-get install docker-compose)');
    dir = await fs.mkdtemp('/tmp/gpubot-compose-');
    await fs.copyFile(path.join(REPO_ROOT, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
    await fs.copyFile(path.join(REPO_ROOT, 'Dockerfile'), path.join(dir, 'Dockerfile'));
    await fs.copyFile(path.join(REPO_ROOT, 'gpubot.example.yaml'), path.join(dir, 'gpubot.yaml'));
    await fs.mkdir(path.join(dir, 'secrets'));
    await fs.writeFile(path.join(dir, 'secrets/gpubot_ssh_key'), 'not a real key\n', { mode: 0o600 });
  });
  afterAll(async () => {
    if (dir) await removeTree(dir);
  });

  /** .env as the README says: .env.example with POSTGRES_PASSWORD filled in. */
  async function writeEnv(password: string): Promise<void> {
    const example = await fs.readFile(path.join(REPO_ROOT, '.env.example'), 'utf8');
    expect(example).toMatch(/^POSTGRES_PASSWORD=$/m);
    await fs.writeFile(path.join(dir, '.env'), example.replace(/^POSTGRES_PASSWORD=$/m, `POSTGRES_PASSWORD=${password}`));
  }

  it('validates with a filled-in .env and renders the deployment the README describes', async () => {
    await writeEnv(PASSWORD);
    const r = await compose(['config']);
    expect(r.code, r.stderr).toBe(0);
    const cfg = parseYaml(r.stdout) as Rendered;
    expect(Object.keys(cfg.services).sort()).toEqual(['db', 'gpubot']);
    const { db, gpubot } = cfg.services as { db: Service; gpubot: Service };

    // PostgreSQL: its data on a named volume, healthy when pg_isready says so.
    expect(db.image).toMatch(/^postgres:1[5-9]/);
    expect(db.environment).toMatchObject({ POSTGRES_USER: 'gpubot', POSTGRES_DB: 'gpubot', POSTGRES_PASSWORD: PASSWORD });
    expect(db.healthcheck?.test[0]).toMatch(/^CMD(-SHELL)?$/);
    expect(db.healthcheck?.test.join(' ')).toContain('pg_isready');
    const data = mounts(db).find((m) => m.target === '/var/lib/postgresql/data');
    expect(data).toMatchObject({ named: true, readOnly: false });
    expect(Object.keys(cfg.volumes ?? {})).toContain(data!.source);

    // The bot: built here, started once the database is healthy.
    expect(gpubot.build?.context).toBe(dir);
    expect(gpubot.image).toBe('gpubot:local');
    expect(gpubot.depends_on).toEqual({ db: { condition: 'service_healthy' } });
    // compose's values win over .env's (GPUBOT_CONFIG=./gpubot.yaml, DATABASE_URL=file:...).
    expect(gpubot.environment?.DATABASE_URL).toBe(`postgresql://gpubot:${PASSWORD}@db:5432/gpubot`);
    const configPath = gpubot.environment?.GPUBOT_CONFIG;
    expect(configPath).toBe('/etc/gpubot/gpubot.yaml');
    // The rest of .env reaches the bot.
    const logLevel = /^LOG_LEVEL=(.*)$/m.exec(await fs.readFile(path.join(dir, '.env'), 'utf8'))?.[1];
    expect(logLevel).toBeTruthy();
    expect(gpubot.environment?.LOG_LEVEL).toBe(logLevel);
    // The config read-only from ./gpubot.yaml; nothing else of this folder mounted.
    const config = mounts(gpubot).find((m) => m.target === configPath);
    expect(config).toEqual({ source: path.join(dir, 'gpubot.yaml'), target: configPath, readOnly: true, named: false });
    expect(mounts(gpubot)).toHaveLength(1);
    // The SSH key: a secret from ./secrets/gpubot_ssh_key, at /run/secrets/gpubot_ssh_key.
    const secrets = (gpubot.secrets ?? []).map((s) => (typeof s === 'string' ? { source: s } : s));
    expect(secrets).toEqual([{ source: 'gpubot_ssh_key' }]);
    expect(cfg.secrets?.gpubot_ssh_key?.file).toBe(path.join(dir, 'secrets/gpubot_ssh_key'));
    // /healthz: published on this machine only by default, and the container's healthcheck.
    expect(ports(gpubot)).toEqual(['127.0.0.1:9090:9090/tcp']);
    expect(gpubot.healthcheck?.test.join(' ')).toContain('http://127.0.0.1:9090/healthz');
    // The console adapter (no chat token) needs stdin open; tini as PID 1.
    expect(gpubot.stdin_open).toBe(true);
    expect(gpubot.init).toBe(true);

    for (const s of [db, gpubot]) expect(s.restart).toBe('unless-stopped');
  });

  it('publishes the side port where GPUBOT_HTTP_PUBLISH says', async () => {
    await writeEnv(PASSWORD);
    await fs.appendFile(path.join(dir, '.env'), 'GPUBOT_HTTP_PUBLISH=0.0.0.0:19090\n');
    const r = await compose(['config']);
    expect(r.code, r.stderr).toBe(0);
    expect(ports((parseYaml(r.stdout) as Rendered).services.gpubot!)).toEqual(['0.0.0.0:19090:9090/tcp']);
  });

  it('refuses to start without POSTGRES_PASSWORD, and says where to set it', async () => {
    await writeEnv('');
    const r = await compose(['config']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('set POSTGRES_PASSWORD in .env');
  });
});
