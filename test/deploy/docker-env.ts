// Deployment tests' environment: a dockerd of our own and locally made Node base images.
// No Docker registry is reachable from this machine, so the images the Dockerfile starts FROM,
// node:20-bookworm and node:20-bookworm-slim, are made here: Debian bookworm from Debian's mirror
// (debootstrap) plus this machine's Node 20 in the official images' layout. See README.md.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BASE_FULL = 'node:20-bookworm';
export const BASE_SLIM = 'node:20-bookworm-slim';
export const DEBIAN_MIRROR = process.env.GPUBOT_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
/** Rootfs tarballs are kept here between runs, named by a hash of everything they are made from. */
export const CACHE_DIR = process.env.GPUBOT_DEPLOY_CACHE ?? path.join(os.tmpdir(), 'gpubot-deploy-cache');
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** What node:20-bookworm adds to Debian for this project: better-sqlite3's compiler and TLS roots. */
const FULL_PACKAGES = ['ca-certificates', 'g++', 'make', 'python3'];

// ---------------------------------------------------------------------------------------------
// processes

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        let code = 0;
        if (err) {
          const c = (err as NodeJS.ErrnoException & { code?: unknown }).code;
          code = typeof c === 'number' ? c : 127;
          if (typeof c !== 'number') stderr = `${stderr}${String(err.message)}`;
        }
        resolve({ stdout, stderr, code });
      },
    );
  });
}

export async function runOk(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${(r.stderr.trim() || r.stdout.trim()).slice(-4000)}`);
  return r;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const st = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return st !== 'Z' && st !== 'X';
  } catch {
    return false;
  }
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of `${process.env.PATH ?? ''}:/usr/sbin:/sbin`.split(':')) {
    if (!dir) continue;
    try {
      await fs.access(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {
      /* next */
    }
  }
  return false;
}

/** What the image tests need on this machine and do not have (empty: all there). */
export async function missingForImageTests(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (dockerd, debootstrap)');
  for (const cmd of ['dockerd', 'docker', 'containerd', 'runc', 'debootstrap', 'chroot', 'tar', 'git']) {
    if (!(await onPath(cmd))) missing.push(cmd);
  }
  if (!/^v20\./.test(process.version)) missing.push(`Node 20 to put in the base images (this is ${process.version})`);
  return missing;
}

// ---------------------------------------------------------------------------------------------
// mounts (debootstrap mounts /proc and /sys in its target; never rm -rf through a mount)

async function mountsUnder(dir: string): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = mp.replace(/\\040/g, ' ');
    if (p === dir || p.startsWith(`${dir}/`)) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Unmounts whatever is mounted under dir, then removes it. Leaves it if something stays mounted. */
export async function removeTree(dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await run('umount', ['-l', m]);
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`not removing ${dir}: still mounted: ${left.join(', ')}`);
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

// ---------------------------------------------------------------------------------------------
// dockerd

export interface Dockerd {
  baseDir: string;
  socket: string;
  pid: number;
  /** Environment for the docker CLI (and docker-compose) against this daemon. */
  env: NodeJS.ProcessEnv;
  docker(args: string[], opts?: { timeoutMs?: number; cwd?: string }): Promise<RunResult>;
  dockerOk(args: string[], opts?: { timeoutMs?: number; cwd?: string }): Promise<RunResult>;
  stop(): Promise<void>;
}

const liveDaemons = new Set<number>();
function killDaemonsOnExit(): void {
  for (const pid of liveDaemons) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}

/**
 * A dockerd of our own in this machine's network namespace (so `docker build --network host`
 * reaches the npm registry), touching nothing of the host's networking: no iptables rules, no
 * ip_forward, no docker0 (containers run with --network none or host). Own socket, data root,
 * exec root, pidfile, managed containerd and containerd namespace, all under a fresh base dir.
 */
export async function startDockerd(): Promise<Dockerd> {
  // With --bridge=none, dockerd deletes an existing docker0 of the namespace it runs in.
  if (existsSync('/sys/class/net/docker0')) {
    throw new Error('this network namespace has a docker0 (a system dockerd?): a dockerd with --bridge=none would delete it');
  }
  // Short: unix socket paths (containerd's under the exec root) must fit in 108 bytes.
  const baseDir = await fs.mkdtemp('/tmp/gpd-');
  const tag = path.basename(baseDir).replace(/[^A-Za-z0-9]/g, '');
  const socket = path.join(baseDir, 'docker.sock');
  const log = path.join(baseDir, 'dockerd.log');
  await fs.mkdir(path.join(baseDir, 'cli'));
  await fs.writeFile(path.join(baseDir, 'daemon.json'), JSON.stringify({ 'log-level': 'warn', 'shutdown-timeout': 5 }, null, 2) + '\n');
  const args = [
    '-H', `unix://${socket}`,
    '--data-root', path.join(baseDir, 'data'),
    '--exec-root', path.join(baseDir, 'exec'),
    '--pidfile', path.join(baseDir, 'docker.pid'),
    '--containerd-namespace', tag,
    '--containerd-plugins-namespace', `${tag}-plugins`,
    '--config-file', path.join(baseDir, 'daemon.json'),
    '--iptables=false',
    '--ip-forward=false',
    '--bridge=none',
  ]; // prettier-ignore
  const fd = openSync(log, 'a');
  let pid: number;
  try {
    const child = spawn('dockerd', args, { detached: true, stdio: ['ignore', fd, fd], env: { PATH: `${BASE_PATH}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '/root' } });
    pid = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('spawn', () => resolve(child.pid!));
    });
    child.unref();
  } finally {
    closeSync(fd);
  }
  liveDaemons.add(pid);
  if (liveDaemons.size === 1) process.on('exit', killDaemonsOnExit);

  // The CLI: no user config (credential helpers), the classic builder (no buildx plugin here;
  // the daemon is docker 20.10), this daemon only.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? BASE_PATH,
    HOME: process.env.HOME ?? '/root',
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: path.join(baseDir, 'cli'),
    DOCKER_BUILDKIT: '0',
    DOCKER_CLI_HINTS: 'false',
  };
  const docker = (a: string[], o: { timeoutMs?: number; cwd?: string } = {}) => run('docker', a, { env, ...o });
  const dockerOk = (a: string[], o: { timeoutMs?: number; cwd?: string } = {}) => runOk('docker', a, { env, ...o });

  const stop = async () => {
    if (await alive(pid)) {
      const ps = await docker(['ps', '-q'], { timeoutMs: 10_000 });
      const ids = ps.stdout.split('\n').filter(Boolean);
      if (ids.length > 0) await docker(['kill', ...ids], { timeoutMs: 20_000 });
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + 30_000;
      while ((await alive(pid)) && Date.now() < deadline) await sleep(50);
      if (await alive(pid)) process.kill(pid, 'SIGKILL');
    }
    liveDaemons.delete(pid);
    if (liveDaemons.size === 0) process.removeListener('exit', killDaemonsOnExit);
    await removeTree(baseDir);
  };

  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 });
    if (r.code === 0 && r.stdout.trim()) break;
    if (!(await alive(pid)) || Date.now() > deadline) {
      const tail = (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
      await stop().catch(() => undefined);
      throw new Error(`dockerd did not come up: ${tail}`);
    }
    await sleep(100);
  }
  return { baseDir, socket, pid, env, docker, dockerOk, stop };
}

// ---------------------------------------------------------------------------------------------
// base images

interface NodeInstall {
  binary: string;
  version: string;
  npmDir: string;
  npmVersion: string;
  includeDir: string;
}

async function findNode(): Promise<NodeInstall> {
  const binary = await fs.realpath(process.execPath);
  const prefix = path.resolve(path.dirname(binary), '..');
  const npmDir = path.join(prefix, 'lib/node_modules/npm');
  const includeDir = path.join(prefix, 'include/node');
  const npmPkg = JSON.parse(await fs.readFile(path.join(npmDir, 'package.json'), 'utf8').catch(() => '{}')) as { version?: string };
  if (!npmPkg.version) throw new Error(`no npm next to ${binary} (looked in ${npmDir})`);
  if (!existsSync(path.join(includeDir, 'node_version.h'))) throw new Error(`no Node headers next to ${binary} (looked in ${includeDir})`);
  return { binary, version: process.version, npmDir, npmVersion: npmPkg.version, includeDir };
}

/** Locally added CAs (Debian's /usr/local/share/ca-certificates), e.g. a TLS-inspecting egress proxy's. */
async function localCas(): Promise<Array<{ rel: string; pem: Buffer }>> {
  const root = '/usr/local/share/ca-certificates';
  const out: Array<{ rel: string; pem: Buffer }> = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.crt')) out.push({ rel: path.relative(root, p), pem: await fs.readFile(p) });
    }
  };
  await walk(root);
  return out.sort((a, b) => a.rel.localeCompare(b.rel));
}

export interface BaseTarball {
  image: string;
  tar: string;
  /** `docker import --change` lines */
  changes: string[];
  cached: boolean;
  seconds: number;
}

type Log = (msg: string) => void;

/**
 * The two base images as rootfs tarballs, from the cache when one made from the same inputs is
 * there, else made now (debootstrap from Debian's mirror, a minute or two each).
 */
export async function baseTarballs(log: Log = () => undefined): Promise<BaseTarball[]> {
  const node = await findNode();
  const cas = await localCas();
  const recipe = await fs.readFile(fileURLToPath(import.meta.url));
  const nodeStat = await fs.stat(node.binary);
  await fs.mkdir(CACHE_DIR, { recursive: true });
  const out: BaseTarball[] = [];
  for (const flavour of ['slim', 'full'] as const) {
    const image = flavour === 'full' ? BASE_FULL : BASE_SLIM;
    const withCas = flavour === 'full' && cas.length > 0;
    const key = createHash('sha256')
      .update(recipe)
      .update(JSON.stringify({ flavour, mirror: DEBIAN_MIRROR, node: node.version, nodeSize: nodeStat.size, npm: node.npmVersion }))
      .update(withCas ? Buffer.concat(cas.map((c) => c.pem)) : '')
      .digest('hex')
      .slice(0, 16);
    const name = `${image.replace(/[:/]/g, '_')}-${key}.tar`;
    const tar = path.join(CACHE_DIR, name);
    const changes = [`ENV PATH=${BASE_PATH}`, `ENV NODE_VERSION=${node.version.slice(1)}`, 'CMD ["node"]'];
    // npm inside the build trusts the same extra CAs as this machine (Node does not read the system store).
    if (withCas) changes.push('ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt');
    const started = Date.now();
    if (existsSync(tar)) {
      out.push({ image, tar, changes, cached: true, seconds: 0 });
      continue;
    }
    log(`making ${image} (debootstrap bookworm from ${DEBIAN_MIRROR}, Node ${node.version}, npm ${node.npmVersion})`);
    const root = path.join(CACHE_DIR, `rootfs-${flavour}-${process.pid}-${randomBytes(3).toString('hex')}`);
    try {
      await makeRootfs(root, flavour, node, withCas ? cas : []);
      const tmp = `${tar}.${process.pid}.tmp`;
      await runOk('tar', ['--numeric-owner', '--xattrs', '-C', root, '-cf', tmp, '.'], { timeoutMs: 300_000 });
      await fs.rename(tmp, tar);
    } finally {
      await removeTree(root);
    }
    // Older tarballs of this image (other inputs) are of no more use.
    const prefix = `${image.replace(/[:/]/g, '_')}-`;
    for (const f of await fs.readdir(CACHE_DIR)) {
      if (f !== name && f.startsWith(prefix) && /^[0-9a-f]{16}\.tar$/.test(f.slice(prefix.length))) {
        await fs.rm(path.join(CACHE_DIR, f), { force: true });
      }
    }
    out.push({ image, tar, changes, cached: false, seconds: (Date.now() - started) / 1000 });
  }
  return out;
}

async function makeRootfs(root: string, flavour: 'slim' | 'full', node: NodeInstall, cas: Array<{ rel: string; pem: Buffer }>): Promise<void> {
  const include = flavour === 'full' ? [`--include=${FULL_PACKAGES.join(',')}`] : [];
  await fs.mkdir(path.join(CACHE_DIR, 'debs'), { recursive: true });
  await runOk('debootstrap', ['--variant=minbase', ...include, `--cache-dir=${path.join(CACHE_DIR, 'debs')}`, 'bookworm', root, DEBIAN_MIRROR], {
    timeoutMs: 900_000,
  });
  // As Debian's images: no package lists or .debs, docs, man pages or locales.
  for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale']) {
    const dir = path.join(root, d);
    for (const e of await fs.readdir(dir).catch(() => [])) {
      if (e === 'partial' || e === 'lock') continue;
      await fs.rm(path.join(dir, e), { recursive: true, force: true });
    }
  }
  // Docker provides these at run time; debootstrap copied this machine's.
  await fs.writeFile(path.join(root, 'etc/resolv.conf'), '');
  await fs.writeFile(path.join(root, 'etc/hostname'), '');

  // Node as the official images have it: /usr/local/{bin/node,lib/node_modules/npm,include/node}.
  await fs.mkdir(path.join(root, 'usr/local/bin'), { recursive: true });
  await fs.mkdir(path.join(root, 'usr/local/lib/node_modules'), { recursive: true });
  await fs.copyFile(node.binary, path.join(root, 'usr/local/bin/node'));
  await fs.chmod(path.join(root, 'usr/local/bin/node'), 0o755);
  await runOk('cp', ['-a', node.npmDir, path.join(root, 'usr/local/lib/node_modules/npm')]);
  await fs.symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'));
  await fs.symlink('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/local/bin/npx'));
  if (flavour === 'full') {
    await fs.mkdir(path.join(root, 'usr/local/include'), { recursive: true });
    await runOk('cp', ['-a', node.includeDir, path.join(root, 'usr/local/include/node')]);
  }
  // The "node" user (uid/gid 1000, home /home/node), as in the official images.
  await fs.appendFile(path.join(root, 'etc/passwd'), 'node:x:1000:1000::/home/node:/bin/bash\n');
  await fs.appendFile(path.join(root, 'etc/group'), 'node:x:1000:\n');
  await fs.appendFile(path.join(root, 'etc/shadow'), 'node:*:19000:0:99999:7:::\n');
  await fs.appendFile(path.join(root, 'etc/gshadow'), 'node:!::\n');
  await fs.mkdir(path.join(root, 'home/node'), { recursive: true, mode: 0o755 });
  await fs.chown(path.join(root, 'home/node'), 1000, 1000);

  if (cas.length > 0) {
    for (const c of cas) {
      const dest = path.join(root, 'usr/local/share/ca-certificates', c.rel);
      await fs.mkdir(path.dirname(dest), { recursive: true });
      await fs.writeFile(dest, c.pem, { mode: 0o644 });
    }
    await runOk('chroot', [root, 'update-ca-certificates'], { env: { PATH: BASE_PATH } });
  }
  // The copied Node runs there (its shared libraries are Debian 12's).
  const v = await runOk('chroot', [root, '/usr/local/bin/node', '--version'], { env: { PATH: BASE_PATH } });
  if (v.stdout.trim() !== node.version) throw new Error(`node in the rootfs says ${v.stdout.trim()}, expected ${node.version}`);
}

/** Makes (or takes from the cache) the base images and imports them into the daemon. */
export async function loadBaseImages(d: Dockerd, log: Log = () => undefined): Promise<BaseTarball[]> {
  const tars = await baseTarballs(log);
  for (const t of tars) {
    await d.dockerOk(['import', ...t.changes.flatMap((c) => ['--change', c]), t.tar, t.image], { timeoutMs: 600_000 });
  }
  return tars;
}
