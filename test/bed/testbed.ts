// Test bed: N fake GPU hosts on this machine, each = a real sshd on 127.0.0.1:<port>, a real dockerd
// in its own network namespace, and a fake nvidia-smi reading <hostdir>/gpus.json.
// See test/bed/README.md.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, openSync, closeSync, readFileSync, constants as fsConstants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BedGpu {
  index: number;
  uuid: string;
  name: string;
  memoryUsedMiB: number | string;
  memoryTotalMiB: number | string;
  utilization: number | string;
  temperature: number | string;
}
export interface BedProcess {
  gpuIndex: number;
  pid: number;
  name: string;
  usedMemoryMiB: number;
}
export interface GpuState {
  gpus: BedGpu[];
  processes: BedProcess[];
  fail: string | null;
}
export interface BedHost {
  name: string; // h1, h2, ...
  dir: string; // host dir
  sshPort: number;
  hostKeyLine: string; // "ssh-ed25519 AAAA..." (no comment)
  hostKeyFingerprint: string; // "SHA256:..." as ssh-keygen -lf prints it
  dockerSocket: string; // absolute path of its docker.sock
  userRoot: string; // shared <baseDir>/users, created
  gpuStatePath: string;
}
export interface BedOptions {
  hosts: number;
  gpusPerHost?: number;
  images?: string[];
  /** default true; false = sshd + nvidia-smi only, for big benchmarks */
  docker?: boolean;
  baseDir?: string;
}
export interface Bed {
  baseDir: string;
  hosts: BedHost[];
  clientKeyPath: string; // private key the bot uses
  host(name: string): BedHost;
  readGpuState(name: string): Promise<GpuState>;
  writeGpuState(name: string, s: GpuState): Promise<void>;
  updateGpuState(name: string, f: (s: GpuState) => void): Promise<void>;
  /** Kills the sshd listener and all its per-connection children; waits until the port refuses. */
  stopSshd(name: string): Promise<void>;
  /** Same port, same host key; waits until it accepts. */
  startSshd(name: string): Promise<void>;
  dockerCli(name: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }>;
  /** Stops the host's dockerd as `systemctl restart docker` would (SIGTERM: its containers stop), and starts it again on the same data. */
  restartDockerd(name: string): Promise<void>;
  /** A gpubot.yaml-shaped plain object for these hosts. */
  config(extra?: Record<string, unknown>): Record<string, unknown>;
  teardown(): Promise<void>;
}

export const DEFAULT_IMAGES = ['pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', 'gpubot-test/busybox:latest'];
export const DEFAULT_GPU_NAME = 'NVIDIA A100-SXM4-80GB';

/** What `down` (possibly another process) needs to tear a bed down. Written to <baseDir>/bed.json. */
export interface BedStateFile {
  baseDir: string;
  clientKeyPath: string;
  docker: boolean;
  hosts: Array<BedHost & { sshdPid: number | null; dockerdPid: number | null }>;
}

const SSHD = '/usr/sbin/sshd';
const FAKE_NVIDIA_SMI = fileURLToPath(new URL('./fake-nvidia-smi.cjs', import.meta.url));
const INETD = fileURLToPath(new URL('./inetd.cjs', import.meta.url));

/**
 * The two queries gpubot runs are answered from files rendered when the state is written: 16
 * hosts share this machine's 2 cores, and a node start per call (~50 ms CPU) would measure the
 * fake, not the bot. Anything else falls through to the full fake (bin/nvidia-smi.cjs).
 */
const FAST_QUERIES: Record<string, string[]> = {
  gpus: ['--query-gpu=index,uuid,memory.used,memory.total,utilization.gpu,temperature.gpu,name', '--format=csv,noheader,nounits'],
  apps: ['--query-compute-apps=gpu_uuid,pid,used_memory,process_name', '--format=csv,noheader,nounits'],
};
const FAST_NVIDIA_SMI = `#!/bin/sh
d="\${0%/*}/../fast"
case "$*" in
${Object.entries(FAST_QUERIES)
  .map(([k, argv]) => `  "${argv.join(' ')}") f=${k} ;;`)
  .join('\n')}
  *) exec node "\${0%/*}/nvidia-smi.cjs" "$@" ;;
esac
read code < "$d/$f.code"
cat "$d/$f.out"
exit "$code"
`;

async function renderFastAnswers(hostDir: string): Promise<void> {
  const dir = path.join(hostDir, 'fast');
  await fs.mkdir(dir, { recursive: true });
  await Promise.all(
    Object.entries(FAST_QUERIES).map(
      ([key, argv]) =>
        new Promise<void>((resolve, reject) => {
          execFile('node', [path.join(hostDir, 'bin/nvidia-smi.cjs'), ...argv], (err, stdout) => {
            const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
            Promise.all([fs.writeFile(path.join(dir, `${key}.out`), stdout), fs.writeFile(path.join(dir, `${key}.code`), `${code}\n`)]).then(() => resolve(), reject);
          });
        }),
    ),
  );
}
const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
// Applets linked into the image besides everything `busybox --list` reports.
const ROOTFS_DIRS = ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'usr/local/bin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'root', 'workspace', 'var/tmp'];

// ---------------------------------------------------------------------------------------------
// small process helpers

interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      let code = 0;
      if (err) {
        const c = (err as NodeJS.ErrnoException & { code?: unknown }).code;
        code = typeof c === 'number' ? c : 127;
        if (typeof c !== 'number' && !stderr) stderr = String(err.message);
      }
      resolve({ stdout, stderr, code });
    });
  });
}

async function runOk(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
}

async function listProcs(): Promise<ProcInfo[]> {
  const out: ProcInfo[] = [];
  let entries: string[];
  try {
    entries = await fs.readdir('/proc');
  } catch {
    return out;
  }
  await Promise.all(
    entries.map(async (e) => {
      if (!/^\d+$/.test(e)) return;
      try {
        const stat = await fs.readFile(`/proc/${e}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.push({ pid: Number(e), state: rest[0] ?? '?', ppid: Number(rest[1]) });
      } catch {
        /* gone */
      }
    }),
  );
  return out;
}

async function procCmdline(pid: number): Promise<string> {
  try {
    return (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  } catch {
    return '';
  }
}

/** True if pid exists and is not a zombie. */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    const st = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return st !== 'Z' && st !== 'X';
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

async function waitDead(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const still = (await Promise.all(pids.map(alive))).some(Boolean);
    if (!still) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

function descendantsOf(roots: number[], procs: ProcInfo[]): number[] {
  const children = new Map<number, number[]>();
  for (const p of procs) {
    const l = children.get(p.ppid);
    if (l) l.push(p.pid);
    else children.set(p.ppid, [p.pid]);
  }
  const out: number[] = [];
  const seen = new Set<number>(roots);
  const stack = [...roots];
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const c of children.get(p) ?? []) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/**
 * SIGKILL a process and its whole tree. The root is SIGSTOPped first and then every descendant, so
 * nothing can fork (or be reparented away) between the snapshot of the tree and the kill.
 */
async function killTree(root: number): Promise<void> {
  if (!(await alive(root))) return;
  signal(root, 'SIGSTOP');
  const stopped = new Set<number>([root]);
  for (let i = 0; i < 20; i++) {
    const procs = await listProcs();
    const fresh = descendantsOf([root], procs).filter((p) => !stopped.has(p));
    if (fresh.length === 0) break;
    for (const p of fresh) {
      signal(p, 'SIGSTOP');
      stopped.add(p);
    }
  }
  for (const p of stopped) signal(p, 'SIGKILL');
  await waitDead([...stopped], 5_000);
}

/** Kill every process whose command line mentions `dir` (and their trees), except us and our ancestors. */
async function killProcessesMentioning(dir: string): Promise<number> {
  const procs = await listProcs();
  const spare = new Set<number>();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  for (let p: number | undefined = process.pid; p && !spare.has(p); p = byPid.get(p)?.ppid) spare.add(p);
  const needle = dir.endsWith('/') ? dir : dir + '/';
  const hits: number[] = [];
  await Promise.all(
    procs.map(async (p) => {
      if (spare.has(p.pid) || p.state === 'Z') return;
      const cmd = await procCmdline(p.pid);
      if (cmd.includes(needle) || cmd.endsWith(dir)) hits.push(p.pid);
    }),
  );
  for (const pid of hits) await killTree(pid);
  return hits.length;
}

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

async function mountsUnder(dir: string): Promise<string[]> {
  let info: string;
  try {
    info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = unescapeMountPath(mp);
    if (p === dir || p.startsWith(dir + '/')) out.push(p);
  }
  return out.sort((a, b) => b.length - a.length);
}

async function unmountAllUnder(dir: string): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const mps = await mountsUnder(dir);
    if (mps.length === 0) return;
    await run('umount', ['-l', ...mps], { timeoutMs: 30_000 });
  }
}

// ---------------------------------------------------------------------------------------------
// network helpers

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** 'banner' if an SSH server greets us, 'refused' if the port refuses, 'other' otherwise. */
function probeSsh(port: number, timeoutMs = 2_000): Promise<'banner' | 'refused' | 'other'> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let done = false;
    const finish = (r: 'banner' | 'refused' | 'other') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish('other'), timeoutMs);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.startsWith('SSH-')) finish('banner');
      else if (buf.length >= 4) finish('other');
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code === 'ECONNREFUSED' ? 'refused' : 'other'));
    sock.on('close', () => finish('other'));
  });
}

interface HttpResult {
  status: number;
  body: string;
}

function dockerApi(
  socketPath: string,
  method: string,
  urlPath: string,
  opts: { body?: NodeJS.ReadableStream | string; contentType?: string; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Host: 'docker' };
    if (opts.contentType) headers['Content-Type'] = opts.contentType;
    const req = http.request({ socketPath, method, path: urlPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 5_000, () => req.destroy(new Error(`docker API ${method} ${urlPath} timed out`)));
    req.on('error', reject);
    if (opts.body === undefined) req.end();
    else if (typeof opts.body === 'string') req.end(opts.body);
    else opts.body.pipe(req);
  });
}

// ---------------------------------------------------------------------------------------------
// files

async function writeFileAtomic(file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, data);
  await fs.rename(tmp, file);
}

async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await fs.readFile(file, 'utf8')).split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function keyLine(pub: string): string {
  return pub.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** Same as `ssh-keygen -lf` prints: SHA256 of the key blob, unpadded base64. */
export function fingerprintOf(keyLineText: string): string {
  const b64 = keyLineText.trim().split(/\s+/)[1] ?? '';
  return 'SHA256:' + createHash('sha256').update(Buffer.from(b64, 'base64')).digest('base64').replace(/=+$/, '');
}

/** This process's hard RLIMIT_MEMLOCK in bytes, -1 when unlimited. */
export function memlockHardLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max locked memory'));
  const hard = line?.trim().split(/\s+/)[4];
  return !hard || hard === 'unlimited' ? -1 : Number(hard);
}

export function defaultGpuState(gpus: number): GpuState {
  return {
    gpus: Array.from({ length: gpus }, (_, i) => ({
      index: i,
      uuid: `GPU-${randomUUID()}`,
      name: DEFAULT_GPU_NAME,
      memoryUsedMiB: 0,
      memoryTotalMiB: 81920,
      utilization: 0,
      temperature: 35,
    })),
    processes: [],
    fail: null,
  };
}

function sshdConfig(h: { dir: string; sshPort: number; dockerSocket: string }, authorizedKeys: string): string {
  return [
    `Port ${h.sshPort}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${h.dir}/ssh_host_ed25519_key`,
    'PidFile none',
    `AuthorizedKeysFile ${authorizedKeys}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'X11Forwarding no',
    'AllowTcpForwarding yes',
    'AllowStreamLocalForwarding yes',
    'MaxSessions 100',
    'MaxStartups 100:30:200',
    'MaxAuthTries 20',
    'LoginGraceTime 30',
    'LogLevel INFO',
    'Subsystem sftp internal-sftp',
    // HOME: an empty per-host dir, so the machine's own ~/.bashrc (pyenv init here, ~170 ms) is not
    // sourced by bash on every exec and per-host dotfiles stay apart. The cwd is still /root.
    `SetEnv PATH=${h.dir}/bin:${BASE_PATH} DOCKER_HOST=unix://${h.dockerSocket} HOME=${h.dir}/home`,
    '',
  ].join('\n');
}

function parseImageRef(ref: string): { repo: string; tag: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: 'latest' };
}

/** A tiny rootfs tar built from busybox-static: every applet, /bin/bash, /etc/passwd with root. */
async function buildRootfsTar(baseDir: string): Promise<string> {
  const root = path.join(baseDir, 'rootfs');
  const tar = path.join(baseDir, 'rootfs.tar');
  for (const d of ROOTFS_DIRS) await fs.mkdir(path.join(root, d), { recursive: true });
  await fs.chmod(path.join(root, 'tmp'), 0o1777);
  let busybox = '/bin/busybox';
  try {
    await fs.access(busybox, fsConstants.X_OK);
  } catch {
    busybox = '/usr/bin/busybox';
  }
  await fs.copyFile(busybox, path.join(root, 'bin/busybox'));
  await fs.chmod(path.join(root, 'bin/busybox'), 0o755);
  const list = (await runOk(busybox, ['--list'])).stdout
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => /^[\w.[\]-]+$/.test(s));
  for (const applet of new Set(list)) {
    if (applet === 'busybox') continue;
    await fs.symlink('busybox', path.join(root, 'bin', applet));
  }
  // busybox has no "bash" applet (Debian's build): a wrapper keeps `docker exec -it X bash` working.
  await fs.writeFile(path.join(root, 'bin/bash'), '#!/bin/sh\nexec /bin/sh "$@"\n', { mode: 0o755 });
  await fs.symlink('/bin/busybox', path.join(root, 'usr/bin/env')).catch(() => undefined);
  await fs.writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  await fs.writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await runOk('tar', ['-C', root, '-cf', tar, '.']);
  await fs.rm(root, { recursive: true, force: true });
  return tar;
}

// ---------------------------------------------------------------------------------------------
// teardown (works from the state file alone, so `cli.ts down` in another process can use it)

// Beds of this process that have not been torn down; killed best-effort if the process exits.
const liveBeds = new Map<string, BedStateFile>();
let exitHookInstalled = false;
function onProcessExit(): void {
  for (const st of liveBeds.values()) {
    for (const h of st.hosts) {
      // dockerd cleans up its containers, mounts and namespace itself on SIGTERM.
      if (h.dockerdPid) signal(h.dockerdPid, 'SIGTERM');
      if (h.sshdPid) signal(h.sshdPid, 'SIGKILL');
    }
  }
}
function trackBed(st: BedStateFile): void {
  liveBeds.set(st.baseDir, st);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', onProcessExit);
  }
}
function untrackBed(baseDir: string): void {
  liveBeds.delete(baseDir);
  if (liveBeds.size === 0 && exitHookInstalled) {
    exitHookInstalled = false;
    process.removeListener('exit', onProcessExit);
  }
}

/**
 * Stop tracking a bed: its hosts are no longer signalled when this process exits (`cli.ts up --detach`).
 * Tear it down later with teardownFromState(<baseDir>/bed.json) or sweepBaseDir(baseDir).
 */
export function forgetBed(baseDir: string): void {
  untrackBed(baseDir);
}

async function stopDockerd(dir: string, pid: number | null): Promise<void> {
  const sock = path.join(dir, 'docker.sock');
  if (pid === null) {
    const txt = await fs.readFile(path.join(dir, 'docker.pid'), 'utf8').catch(() => '');
    pid = Number(txt.trim()) || null;
  }
  if (pid !== null && (await alive(pid))) {
    // Containers running `sleep infinity` as PID 1 ignore SIGTERM, so dockerd would wait their full
    // stop timeout (10 s) on shutdown: SIGKILL them first.
    try {
      const list = await dockerApi(sock, 'GET', '/containers/json', { timeoutMs: 3_000 });
      if (list.status === 200) {
        const ids = (JSON.parse(list.body) as Array<{ Id: string }>).map((c) => c.Id);
        await Promise.all(ids.map((id) => dockerApi(sock, 'POST', `/containers/${id}/kill`, { timeoutMs: 3_000 }).catch(() => undefined)));
      }
    } catch {
      /* daemon not answering: SIGTERM below and sweep */
    }
    signal(pid, 'SIGTERM');
    if (!(await waitDead([pid], 20_000))) await killTree(pid);
  }
}

async function removeLeftoverCgroups(dir: string): Promise<void> {
  // Only needed when containers were SIGKILLed behind dockerd's back.
  let ids: string[];
  try {
    ids = await fs.readdir(path.join(dir, 'data', 'containers'));
  } catch {
    return;
  }
  if (ids.length === 0) return;
  let controllers: string[];
  try {
    controllers = await fs.readdir('/sys/fs/cgroup');
  } catch {
    return;
  }
  const roots = controllers.map((c) => path.join('/sys/fs/cgroup', c));
  roots.push('/sys/fs/cgroup');
  for (const r of roots) for (const id of ids) await fs.rmdir(path.join(r, 'docker', id)).catch(() => undefined);
}

export async function teardownFromState(st: BedStateFile): Promise<void> {
  await Promise.all(
    st.hosts.map(async (h) => {
      if (h.sshdPid !== null) await killTree(h.sshdPid);
      if (st.docker) await stopDockerd(h.dir, h.dockerdPid);
    }),
  );
  // Anything of the bed that survived: containerd, containerd-shim-runc-v2 (reparented to init), sshd.
  if ((await killProcessesMentioning(st.baseDir)) > 0) {
    for (const h of st.hosts) await removeLeftoverCgroups(h.dir);
  }
  await unmountAllUnder(st.baseDir);
  await fs.rm(st.baseDir, { recursive: true, force: true, maxRetries: 3 });
  untrackBed(st.baseDir);
}

/** Tear down whatever a bed under baseDir left, without a state file (crashed runs). */
export async function sweepBaseDir(baseDir: string): Promise<void> {
  const st: BedStateFile = { baseDir, clientKeyPath: '', docker: true, hosts: [] };
  try {
    const dirs = await fs.readdir(baseDir, { withFileTypes: true });
    for (const d of dirs) {
      if (!d.isDirectory() || !/^h\d+$/.test(d.name)) continue;
      st.hosts.push({
        name: d.name,
        dir: path.join(baseDir, d.name),
        sshPort: 0,
        hostKeyLine: '',
        hostKeyFingerprint: '',
        dockerSocket: path.join(baseDir, d.name, 'docker.sock'),
        userRoot: '',
        gpuStatePath: '',
        sshdPid: null,
        dockerdPid: null,
      });
    }
  } catch {
    /* gone already */
  }
  await teardownFromState(st);
}

// ---------------------------------------------------------------------------------------------
// start

interface HostRuntime extends BedHost {
  sshdPid: number | null;
  dockerdPid: number | null;
  containerdNamespace: string;
}

function spawnDetached(cmd: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const fd = openSync(logFile, 'a');
    let child;
    try {
      child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env });
    } finally {
      closeSync(fd);
    }
    child.once('error', reject);
    child.once('spawn', () => {
      child.unref();
      resolve(child.pid!);
    });
  });
}

async function startSshdProcess(h: HostRuntime): Promise<number> {
  const cfg = path.join(h.dir, 'sshd_config');
  const log = path.join(h.dir, 'sshd.log');
  // sshd -i per connection, in dockerd's network namespace (see inetd.cjs): like a real host, its
  // sshd reaches the containers' bridge addresses.
  const pid = await spawnDetached(process.execPath, [INETD, String(h.sshPort), path.join(h.dir, 'docker.pid'), SSHD, '-i', '-e', '-f', cfg], log, { PATH: BASE_PATH });
  const deadline = Date.now() + 15_000;
  for (;;) {
    const r = await probeSsh(h.sshPort, 1_000);
    if (r === 'banner') return pid;
    if (!(await alive(pid))) {
      const t = await tail(log, 10);
      const err = new Error(`sshd for ${h.name} on port ${h.sshPort} died: ${t}`) as Error & { addrInUse?: boolean };
      err.addrInUse = /Address already in use|Cannot bind any address/i.test(t);
      throw err;
    }
    if (Date.now() > deadline) {
      await killTree(pid);
      throw new Error(`sshd for ${h.name} on port ${h.sshPort} did not answer: ${await tail(log, 10)}`);
    }
    await sleep(r === 'refused' ? 20 : 100);
  }
}

async function startDockerd(h: HostRuntime): Promise<number> {
  const d = h.dir;
  await fs.writeFile(
    path.join(d, 'daemon.json'),
    JSON.stringify(
      {
        runtimes: { nvidia: { path: 'runc' } },
        'log-level': 'warn',
        'shutdown-timeout': 5,
      },
      null,
      2,
    ) + '\n',
  );
  const args = [
    '--net',
    '--',
    'dockerd',
    '-H',
    `unix://${h.dockerSocket}`,
    '--data-root',
    `${d}/data`,
    '--exec-root',
    `${d}/exec`,
    '--pidfile',
    `${d}/docker.pid`,
    '--containerd-namespace',
    h.containerdNamespace,
    '--containerd-plugins-namespace',
    `${h.containerdNamespace}-plugins`,
    '--config-file',
    `${d}/daemon.json`,
  ];
  const log = path.join(d, 'dockerd.log');
  // <hostdir>/bin first: dockerd registers its "nvidia" device driver (DeviceRequests) only if it
  // finds nvidia-container-runtime-hook on PATH at start.
  const env: NodeJS.ProcessEnv = { PATH: `${d}/bin:${BASE_PATH}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '/root' };
  const pid = await spawnDetached('unshare', args, log, env);
  const deadline = Date.now() + 90_000;
  for (;;) {
    try {
      const r = await dockerApi(h.dockerSocket, 'GET', '/_ping', { timeoutMs: 2_000 });
      if (r.status === 200 && r.body.trim() === 'OK') {
        // unshare leaves the namespace's loopback down; a host's own 127.0.0.1 works.
        await runOk('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'link', 'set', 'lo', 'up']);
        return pid;
      }
    } catch {
      /* not yet */
    }
    if (!(await alive(pid))) throw new Error(`dockerd for ${h.name} died: ${await tail(log, 15)}`);
    if (Date.now() > deadline) throw new Error(`dockerd for ${h.name} did not answer /_ping: ${await tail(log, 15)}`);
    await sleep(50);
  }
}

async function importImages(h: HostRuntime, tar: string, images: string[]): Promise<void> {
  const [first, ...rest] = images;
  if (!first) return;
  const { repo, tag } = parseImageRef(first);
  const q = new URLSearchParams({ fromSrc: '-', repo, tag });
  q.append('changes', 'CMD ["sleep","infinity"]');
  q.append('changes', `ENV PATH=${BASE_PATH}`);
  const r = await dockerApi(h.dockerSocket, 'POST', `/images/create?${q.toString()}`, {
    body: createReadStream(tar),
    contentType: 'application/x-tar',
    timeoutMs: 120_000,
  });
  if (r.status !== 200 || /"error"/.test(r.body)) throw new Error(`import ${first} into ${h.name} failed: ${r.status} ${r.body}`);
  for (const img of rest) {
    const t = parseImageRef(img);
    const tq = new URLSearchParams({ repo: t.repo, tag: t.tag });
    const tr = await dockerApi(h.dockerSocket, 'POST', `/images/${encodeURIComponent(first)}/tag?${tq.toString()}`, { timeoutMs: 30_000 });
    if (tr.status !== 201) throw new Error(`tag ${img} on ${h.name} failed: ${tr.status} ${tr.body}`);
  }
}

async function sshKeygen(file: string): Promise<string> {
  await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', file]);
  return keyLine(await fs.readFile(`${file}.pub`, 'utf8'));
}

/** Run fn over items with at most `limit` in flight; collects every failure. */
async function allLimited<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const it = items[next++]!;
      try {
        await fn(it);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

export async function startBed(opts: BedOptions): Promise<Bed> {
  const nHosts = opts.hosts;
  if (!Number.isInteger(nHosts) || nHosts < 1) throw new Error(`hosts must be a positive integer, got ${nHosts}`);
  const gpusPerHost = opts.gpusPerHost ?? 4;
  const images = opts.images ?? DEFAULT_IMAGES;
  const docker = opts.docker ?? true;
  let baseDir: string;
  if (opts.baseDir) {
    baseDir = path.resolve(opts.baseDir);
    await fs.mkdir(baseDir, { recursive: true });
    if ((await fs.readdir(baseDir)).length > 0) throw new Error(`baseDir ${baseDir} is not empty`);
  } else {
    baseDir = await fs.mkdtemp('/tmp/gpb-');
  }
  // unix socket paths must fit in sun_path (108 bytes incl. NUL); containerd's socket is the longest.
  if (`${baseDir}/h${nHosts}/exec/containerd/containerd.sock.ttrpc`.length > 100) {
    await fs.rm(baseDir, { recursive: true, force: true });
    throw new Error(`baseDir ${baseDir} is too long for unix socket paths`);
  }

  const clientKeyPath = path.join(baseDir, 'client_key');
  const userRoot = path.join(baseDir, 'users');
  const hosts: HostRuntime[] = [];
  for (let i = 1; i <= nHosts; i++) {
    const name = `h${i}`;
    const dir = path.join(baseDir, name);
    hosts.push({
      name,
      dir,
      sshPort: 0,
      hostKeyLine: '',
      hostKeyFingerprint: '',
      dockerSocket: path.join(dir, 'docker.sock'),
      userRoot,
      gpuStatePath: path.join(dir, 'gpus.json'),
      sshdPid: null,
      dockerdPid: null,
      containerdNamespace: `gpb-${path
        .basename(baseDir)
        .replace(/^gpb-/, '')
        .replace(/[^A-Za-z0-9]/g, '')}-${name}`,
    });
  }
  const stateFile = (): BedStateFile => ({
    baseDir,
    clientKeyPath,
    docker,
    hosts: hosts.map(({ containerdNamespace: _ns, ...h }) => ({ ...h })),
  });
  const saveState = () => writeFileAtomic(path.join(baseDir, 'bed.json'), JSON.stringify(stateFile(), null, 2) + '\n');
  trackBed(stateFile());
  const refreshTracked = () => liveBeds.set(baseDir, stateFile());

  try {
    await fs.mkdir('/run/sshd', { recursive: true });
    await fs.mkdir(userRoot, { recursive: true });
    const nvidiaSmi = await fs.readFile(FAKE_NVIDIA_SMI, 'utf8');
    let rootfsTar = '';
    await Promise.all([
      sshKeygen(clientKeyPath),
      docker ? buildRootfsTar(baseDir).then((t) => void (rootfsTar = t)) : Promise.resolve(),
      ...hosts.map(async (h) => {
        await fs.mkdir(path.join(h.dir, 'bin'), { recursive: true });
        await fs.mkdir(path.join(h.dir, 'home'), { recursive: true });
        await fs.writeFile(path.join(h.dir, 'bin/nvidia-smi.cjs'), nvidiaSmi, { mode: 0o755 });
        await fs.writeFile(path.join(h.dir, 'bin/nvidia-smi'), FAST_NVIDIA_SMI, { mode: 0o755 });
        await fs.writeFile(path.join(h.dir, 'bin/nvidia-container-runtime-hook'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
        await writeFileAtomic(h.gpuStatePath, JSON.stringify(defaultGpuState(gpusPerHost), null, 2) + '\n');
        await renderFastAnswers(h.dir);
        h.hostKeyLine = await sshKeygen(path.join(h.dir, 'ssh_host_ed25519_key'));
        h.hostKeyFingerprint = fingerprintOf(h.hostKeyLine);
      }),
    ]);
    const startSsh = async (h: HostRuntime) => {
      for (let attempt = 0; ; attempt++) {
        h.sshPort = await freePort();
        await fs.writeFile(path.join(h.dir, 'sshd_config'), sshdConfig(h, `${clientKeyPath}.pub`));
        try {
          h.sshdPid = await startSshdProcess(h);
          refreshTracked();
          return;
        } catch (e) {
          // Someone grabbed the port between our probe and sshd's bind: pick another one.
          if ((e as { addrInUse?: boolean }).addrInUse && attempt < 5) continue;
          throw e;
        }
      }
    };
    const startDocker = async (h: HostRuntime) => {
      h.dockerdPid = await startDockerd(h);
      refreshTracked();
      await importImages(h, rootfsTar, images);
    };
    // sshd is cheap; dockerd + containerd take ~1 s of CPU each, so don't start 16 at once on 2 cores.
    await Promise.all([allLimited(hosts, 32, startSsh), docker ? allLimited(hosts, 8, startDocker) : Promise.resolve()]);
    await fs.writeFile(path.join(baseDir, 'known_hosts'), hosts.map((h) => `[127.0.0.1]:${h.sshPort} ${h.hostKeyLine}\n`).join(''));
    await saveState();
  } catch (e) {
    await teardownFromState(stateFile()).catch(() => undefined);
    throw e;
  }

  const byName = new Map(hosts.map((h) => [h.name, h]));
  const get = (name: string): HostRuntime => {
    const h = byName.get(name);
    if (!h) throw new Error(`no host ${name} in this bed (have ${hosts.map((x) => x.name).join(', ')})`);
    return h;
  };
  // Serialize state-file updates per host so concurrent updateGpuState calls don't lose writes.
  const locks = new Map<string, Promise<unknown>>();
  const withLock = <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const prev = locks.get(name) ?? Promise.resolve();
    const p = prev.then(fn, fn);
    locks.set(
      name,
      p.catch(() => undefined),
    );
    return p;
  };
  const readState = async (name: string): Promise<GpuState> => JSON.parse(await fs.readFile(get(name).gpuStatePath, 'utf8')) as GpuState;
  const writeState = async (name: string, s: GpuState) => {
    await writeFileAtomic(get(name).gpuStatePath, JSON.stringify(s, null, 2) + '\n');
    await renderFastAnswers(get(name).dir);
  };
  let tornDown = false;

  const publicHost = (h: HostRuntime): BedHost => ({
    name: h.name,
    dir: h.dir,
    sshPort: h.sshPort,
    hostKeyLine: h.hostKeyLine,
    hostKeyFingerprint: h.hostKeyFingerprint,
    dockerSocket: h.dockerSocket,
    userRoot: h.userRoot,
    gpuStatePath: h.gpuStatePath,
  });
  const publicHosts = hosts.map(publicHost);

  const bed: Bed = {
    baseDir,
    hosts: publicHosts,
    clientKeyPath,
    host: (name) => publicHosts.find((h) => h.name === name) ?? publicHost(get(name)),
    readGpuState: (name) => withLock(name, () => readState(name)),
    writeGpuState: (name, s) => withLock(name, () => writeState(name, s)),
    updateGpuState: (name, f) =>
      withLock(name, async () => {
        const s = await readState(name);
        f(s);
        await writeState(name, s);
      }),
    async stopSshd(name) {
      const h = get(name);
      if (h.sshdPid !== null) await killTree(h.sshdPid);
      h.sshdPid = null;
      refreshTracked();
      await saveState();
      const deadline = Date.now() + 10_000;
      while ((await probeSsh(h.sshPort, 500)) !== 'refused') {
        if (Date.now() > deadline) throw new Error(`port ${h.sshPort} of ${name} still not refusing`);
        await sleep(20);
      }
    },
    async startSshd(name) {
      const h = get(name);
      if (h.sshdPid !== null && (await alive(h.sshdPid))) return;
      h.sshdPid = await startSshdProcess(h);
      refreshTracked();
      await saveState();
    },
    async restartDockerd(name) {
      const h = get(name);
      if (h.dockerdPid !== null) {
        signal(h.dockerdPid, 'SIGTERM');
        const deadline = Date.now() + 30_000;
        while (await alive(h.dockerdPid)) {
          if (Date.now() > deadline) signal(h.dockerdPid, 'SIGKILL');
          await sleep(50);
        }
      }
      h.dockerdPid = await startDockerd(h);
      refreshTracked();
      await saveState();
    },
    dockerCli(name, args) {
      const env = { ...process.env };
      delete env.DOCKER_HOST;
      delete env.DOCKER_CONTEXT;
      return run('docker', ['-H', `unix://${get(name).dockerSocket}`, ...args], { env });
    },
    config(extra = {}) {
      return {
        hosts: hosts.map((h) => ({
          name: h.name,
          ssh: { host: '127.0.0.1', port: h.sshPort, user: 'root', privateKeyPath: clientKeyPath, hostKey: h.hostKeyLine },
          dockerSocket: h.dockerSocket,
          gpuMode: 'device-requests',
        })),
        storage: { userRoot, mountPath: '/workspace', shared: [] },
        images: { default: DEFAULT_IMAGES[0], allowed: ['pytorch/pytorch:*', 'gpubot-test/*'] },
        quotas: { default: { maxGpus: 4, gpuHoursPerWeek: 168, maxHours: 72 }, users: {} },
        admins: ['admin'],
        // Tests and benchmarks send many commands as one user; the per-user limit has tests of its own (test/e2e/access.test.ts).
        rateLimits: { commands: { perMinute: 10_000, burst: 10_000 } },
        // gpubot asks for an unlimited memlock; a dockerd without CAP_SYS_RESOURCE (this sandbox) cannot grant more than its own.
        ...(memlockHardLimit() === -1 ? {} : { limits: { memlock: memlockHardLimit() } }),
        ...extra,
      };
    },
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      await teardownFromState(stateFile());
    },
  };
  return bed;
}
