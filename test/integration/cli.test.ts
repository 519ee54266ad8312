import { execFile, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startBed, type Bed } from '../bed/testbed.js';
import { openDatabase } from '../../src/db/client.js';
import { testDatabaseKind, testDatabaseUrl } from '../support/database.js';
import { waitFor } from '../support/wait.js';

const exec = promisify(execFile);
const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

/** The real command line, as an admin would type it: exit code and printed text. */
async function gpubot(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec('node', [...CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('gpubot command line', () => {
  let bed: Bed;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    const configPath = join(bed.baseDir, 'gpubot.yaml');
    const config = bed.config() as { hosts: Record<string, unknown>[] };
    // Plus this machine's own Docker (here: h1's socket) as the ssh-less "local" host.
    config.hosts.push({ name: 'local', dockerSocket: bed.host('h1').dockerSocket });
    await writeFile(configPath, stringify(config));
    env = {
      GPUBOT_CONFIG: configPath,
      DATABASE_URL: await testDatabaseUrl(bed.baseDir, 'cli'),
      PATH: `${bed.host('h1').dir}/bin:${process.env.PATH}`,
    };
  });
  afterAll(async () => bed?.teardown());

  it('migrate applies the migrations once', async () => {
    const first = await gpubot(['migrate'], env);
    expect(first.code, first.stderr).toBe(0);
    // Every migration folder of the database's provider, in order, once.
    const folder = testDatabaseKind() === 'postgres' ? 'prisma/postgres/migrations' : 'prisma/migrations';
    const all = readdirSync(folder, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort();
    expect(first.stdout).toContain(`applied ${all.length} migration(s): ${all.join(', ')}`);
    const again = await gpubot(['migrate'], env);
    expect(again.stdout).toBe('the database is up to date\n');
  });

  it('chat prints status for the SSH host and the local host, exit 0', async () => {
    const r = await gpubot(['chat', '--user', 'alice', 'status'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('8/8 GPUs free on 2 hosts');
    expect(r.stdout).toContain('h1: 4/4 GPUs free');
    expect(r.stdout).toContain('local: 4/4 GPUs free');
    expect(r.stdout).toContain('NVIDIA A100-SXM4-80GB');
  });

  it('chat takes an unquoted command and exits 1 on a refusal', async () => {
    const r = await gpubot(['chat', '--user', 'alice', 'status', 'nosuchhost'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('There is no host "nosuchhost"');
    const bad = await gpubot(['chat', '--user', 'alice', 'status; reboot'], env);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('That command was not understood');
  });

  it('chat without a message is a console REPL', async () => {
    const child = execFile('node', [...CLI, 'chat', '--user', 'bob'], { env: { ...process.env, ...env }, timeout: 30_000 });
    let out = '';
    child.stdout!.on('data', (d) => (out += String(d)));
    child.stdin!.end('help\nstatus h1\nquit\n');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(out).toContain('gpubot console: you are "bob"');
    expect(out).toContain('gpubot commands');
    expect(out).toContain('h1: 4/4 GPUs free');
  });

  it('backup writes a consistent copy of a SQLite database; on PostgreSQL it points to pg_dump', async () => {
    const file = join(bed.baseDir, 'backup.db');
    const r = await gpubot(['backup', file], env);
    if (String(env.DATABASE_URL).startsWith('postgres')) {
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('use pg_dump');
      return;
    }
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*backup\.db \(\d+ bytes\)\n$/);
    // The copy is a whole gpubot database: the users the earlier tests made, and nothing pending.
    const [original, copy] = await Promise.all([openDatabase(String(env.DATABASE_URL)), openDatabase(`file:${file}`)]);
    try {
      const handles = async (db: typeof original) => (await db.user.findMany({ orderBy: { handle: 'asc' } })).map((u) => u.handle);
      expect(await handles(copy)).toEqual(await handles(original));
      expect(await handles(copy)).toContain('alice');
    } finally {
      await Promise.all([original.$disconnect(), copy.$disconnect()]);
    }
    expect((await gpubot(['migrate'], { ...env, DATABASE_URL: `file:${file}` })).stdout).toBe('the database is up to date\n');
    const again = await gpubot(['backup', file], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists; pick a new file name');
  });

  it('a bad config file is refused with the field named', async () => {
    const path = join(bed.baseDir, 'bad.yaml');
    await writeFile(path, stringify({ hosts: [{ name: 'Bad Name' }] }));
    const r = await gpubot(['chat', '--user', 'alice', 'status'], { ...env, GPUBOT_CONFIG: path });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('hosts[0].name: must match [a-z0-9-]+');
  });

  it('start: JSON logs name the user, command and host; SIGTERM finishes the command in flight, then exits 0', async () => {
    const child = spawn('node', [...CLI, 'start'], { env: { ...process.env, ...env, LOG_LEVEL: 'debug', GPUBOT_CONSOLE_USER: 'carol' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += String(d)));
    child.stderr.on('data', (d) => (err += String(d)));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lines = () =>
      err
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    try {
      await waitFor(() => lines().some((l) => l.msg === 'gpubot started'), { what: 'the bot to start', timeoutMs: 30_000 });
      child.stdin.write('run --gpus 1 --host h1 --name graceful\n');
      // The moment the command is in flight, ask the bot to stop.
      await waitFor(() => lines().some((l) => l.msg === 'command received' && l.command === 'run'), { what: 'the run to begin', intervalMs: 5 });
      child.kill('SIGTERM');
      expect(await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running 15 s after SIGTERM'), 15_000))])).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    // The command was finished and answered, not cut off.
    expect(out).toContain('graceful is running on h1');
    expect((await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Running}}', 'graceful'])).stdout.trim()).toBe('true');
    const log = lines();
    const shutdown = log.find((l) => l.msg === 'shutting down');
    // The run was in flight (job rounds may be too, at a minute's turn).
    expect(shutdown?.inFlight).toMatchObject({ commands: 1 });
    expect(log.at(-1)).toMatchObject({ msg: 'stopped' });
    // Lines logged inside the command carry who, what and where without being told.
    expect(log.find((l) => l.msg === 'container started')).toMatchObject({ app: 'gpubot', user: 'carol', command: 'run', host: 'h1', container: 'graceful' });
    expect(log.find((l) => l.msg === 'command' && l.command === 'run')).toMatchObject({ user: 'carol', host: 'h1', ok: true });
    for (const l of log.filter((x) => x.command !== undefined)) expect(l).toHaveProperty('user', 'carol');
    await bed.dockerCli('h1', ['rm', '-f', 'graceful']);
  }, 90_000);
});
