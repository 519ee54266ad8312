import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { App } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { startBed } from '../test/bed/testbed.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { clientOptions, makeKey, runTool, spawnTool } from '../test/support/openssh.js';
import { waitFor } from '../test/support/wait.js';
import { median } from './stats.js';

const INETD = fileURLToPath(new URL('../test/bed/inetd.cjs', import.meta.url));

const ROUNDS = Number(process.env.ROUNDS ?? 5);
// eslint-disable-next-line no-control-regex -- terminal escape sequences are what it matches
const ANSI_ESCAPE = /\x1b\[[0-9;?]*[A-Za-z]/g;
const MB = 100;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Milliseconds from starting `ssh -tt` to the first shell prompt (a line ending in "$ " or "# "). */
async function toPrompt(args: string[]): Promise<number> {
  const t = performance.now();
  const child = spawnTool('ssh', ['-tt', ...args]);
  try {
    // busybox's shell asks where the cursor is (ESC [6n) right after its prompt.
    await waitFor(() => /[$#] $/.test(child.output().replace(ANSI_ESCAPE, '')), { timeoutMs: 20_000, intervalMs: 2, what: 'a shell prompt' }).catch((err: Error) => {
      throw new Error(`${err.message}; ssh ${args.join(' ')} printed ${JSON.stringify(child.output())}`);
    });
    return performance.now() - t;
  } finally {
    child.kill();
  }
}

async function timed(what: string, fn: () => Promise<{ code: number | null; stderr: string }>): Promise<number> {
  const t = performance.now();
  const r = await fn();
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
  return performance.now() - t;
}

/**
 * Milliseconds to pull `url` to the end, by a client process of its own (busybox wget): a fetch in
 * this process would share one thread with the gateway it measures.
 */
async function download(url: string): Promise<number> {
  const t = performance.now();
  const r = await runTool('busybox', ['wget', '-q', '-O', '/dev/null', url], undefined, 300_000);
  if (r.code !== 0) throw new Error(`wget ${url}: ${r.stderr}`);
  return performance.now() - t;
}

/**
 * The SSH gateway against a direct ssh to the host's own sshd, same bed, same container:
 * time to a shell prompt, a 100 MB scp, a 100 MB download through an -L forward.
 */
export async function benchGateway(report: (line: string) => void): Promise<void> {
  const bed = await startBed({ hosts: 1 });
  const work = await mkdtemp(join(tmpdir(), 'gpb-bench-gw-'));
  const app = await App.create({
    config: parseConfig(
      bed.config({
        gateway: { port: 0, listen: '127.0.0.1', hostKeyPath: join(work, 'host_key'), publicHost: '127.0.0.1' },
        images: { default: 'gpubot-test/busybox:latest', allowed: ['gpubot-test/*'] },
      }),
    ),
    log: silentLogger(),
    databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench-gateway'),
  });
  try {
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'SSH connections' });
    const port = (await app.startGateway())!.port;
    const key = await makeKey(work, 'bench');
    const actor = await app.actor('bench');
    for (const cmd of [`key add ${key.publicLine}`, 'run --gpus 1 --host h1 --name exp1']) {
      const r = await app.engine.handleText(actor, cmd);
      if (r.tone !== 'success') throw new Error(`${cmd}: ${r.title}`);
    }
    const h1 = bed.host('h1');
    const gw = [...clientOptions(key.path, port), 'exp1@127.0.0.1'];
    const direct = [...clientOptions(bed.clientKeyPath, h1.sshPort), 'root@127.0.0.1'];
    const row = (what: string, g: number[], d: number[], unit: (x: number) => string) =>
      report(`| ${what} | ${unit(median(g))} | ${unit(median(d))} | **${(median(g) / median(d)).toFixed(2)}x** | ≤ 1.5x |`);
    report('| what (median of 5) | through the gateway | direct ssh to the host | ratio | target |');
    report('| --- | --- | --- | --- | --- |');

    // The old reply, `ssh HOST docker exec -it NAME bash`, is the direct way to the same shell.
    const promptGw: number[] = [];
    const promptDirect: number[] = [];
    const promptHost: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      promptGw.push(await toPrompt(gw));
      promptDirect.push(await toPrompt([...direct, 'docker', 'exec', '-it', 'exp1', 'sh', '-l']));
      promptHost.push(await toPrompt(direct));
    }
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    row('time to the first shell prompt in the container (`ssh -tt`; direct: `ssh HOST docker exec -it exp1 sh -l`)', promptGw, promptDirect, ms);

    const file = join(work, 'blob.bin');
    await writeFile(file, randomBytes(MB * 1048576));
    const userDir = join(bed.baseDir, 'users', 'bench');
    const scpGw: number[] = [];
    const scpDirect: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      scpGw.push(await timed('scp via gateway', () => runTool('scp', [...clientOptions(key.path, port), file, 'exp1@127.0.0.1:/workspace/blob.bin'], undefined, 300_000)));
      scpDirect.push(
        await timed('scp direct', () => runTool('scp', [...clientOptions(bed.clientKeyPath, h1.sshPort), file, `root@127.0.0.1:${userDir}/blob.bin`], undefined, 300_000)),
      );
    }
    const mbps = (x: number) => `${(MB / (x / 1000)).toFixed(0)} MB/s`;
    // A throughput ratio: direct speed / gateway speed, i.e. gateway time / direct time.
    row(`\`scp\` of ${MB} MB into /workspace (direct: into the same directory on the host)`, scpGw, scpDirect, mbps);

    // One busybox httpd in the container serving the file on all its addresses: reached by -L
    // through the gateway (localhost:8080, which gpubot reaches on the container's bridge address
    // through the host's sshd), and by -L straight through the host's sshd to that address, as a
    // user with an account on the host would. A second httpd on the container's loopback only can
    // be reached through the gateway alone (a Docker exec relay).
    await bed.dockerCli('h1', ['exec', 'exp1', 'httpd', '-p', '8080', '-h', '/workspace']);
    await bed.dockerCli('h1', ['exec', 'exp1', 'httpd', '-p', '127.0.0.1:8081', '-h', '/workspace']);
    const ip = (await bed.dockerCli('h1', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}', 'exp1'])).stdout.trim().split(' ')[0]!;
    // The real alternative for reaching a host through a gateway: OpenSSH's own jump host. A second
    // sshd of h1's (same config and key) in this machine's network namespace is the bastion, and
    // `ssh -J` goes through it to h1's sshd: one extra hop that decrypts and re-encrypts, as
    // gpubot's does, but in C.
    const bastionPort = await freePort();
    const bastion = spawn(process.execPath, [INETD, String(bastionPort), join(work, 'no-dockerd.pid'), '/usr/sbin/sshd', '-i', '-e', '-f', join(h1.dir, 'sshd_config')], {
      stdio: 'ignore',
    });
    const jumpCommand = ['ssh', ...clientOptions(bed.clientKeyPath, bastionPort), '-W', '%h:%p', 'root@127.0.0.1'].join(' ');
    const fwdGw: number[] = [];
    const fwdDirect: number[] = [];
    const fwdJump: number[] = [];
    const fwdRelay: number[] = [];
    const gatewayCpu: number[] = [];
    try {
      const forwards = [
        [clientOptions(key.path, port).concat('exp1@127.0.0.1'), 'localhost:8080'],
        [direct, `${ip}:8080`],
        [['-o', `ProxyCommand=${jumpCommand}`, ...direct], `${ip}:8080`],
        [clientOptions(key.path, port).concat('exp1@127.0.0.1'), 'localhost:8081'],
      ] as const;
      const urls: string[] = [];
      const tunnels = [];
      for (const [args, target] of forwards) {
        const local = await freePort();
        tunnels.push(spawnTool('ssh', ['-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:${target}`, ...args]));
        const url = `http://127.0.0.1:${local}/blob.bin`;
        await waitFor(async () => (await fetch(url, { method: 'HEAD' }).catch(() => null))?.ok, { what: `the forward to ${target}`, timeoutMs: 20_000 });
        urls.push(url);
      }
      try {
        // One untimed download on each path first: the first 100 MB through a fresh process pays
        // for compiling its hot path, which a long-running gateway pays once.
        for (const url of urls) await download(url);
        // Interleaved, so a slow spell of this shared machine falls on every path alike.
        for (let i = 0; i < ROUNDS; i++) {
          const cpu = process.cpuUsage();
          fwdGw.push(await download(urls[0]!));
          const used = process.cpuUsage(cpu);
          gatewayCpu.push((used.user + used.system) / 1000);
          fwdDirect.push(await download(urls[1]!));
          fwdJump.push(await download(urls[2]!));
          fwdRelay.push(await download(urls[3]!));
        }
      } finally {
        for (const t of tunnels) t.kill();
      }
    } finally {
      bastion.kill();
    }
    row(`download of ${MB} MB through \`ssh -L\` from busybox httpd in the container (direct: \`ssh -L PORT:CONTAINER_IP:8080 HOST\`)`, fwdGw, fwdDirect, mbps);
    report(
      `| (reference) the same through OpenSSH's own jump host, an extra sshd hop in C (\`ssh -J BASTION -L PORT:CONTAINER_IP:8080 HOST\`) | ${mbps(median(fwdJump))} | ${mbps(median(fwdDirect))} | ${(median(fwdJump) / median(fwdDirect)).toFixed(2)}x | |`,
    );
    report(`| (reference) the gateway against that jump host | ${mbps(median(fwdGw))} | ${mbps(median(fwdJump))} | ${(median(fwdGw) / median(fwdJump)).toFixed(2)}x | |`);
    report(`| (reference) CPU of the gateway's process per ${MB} MB forwarded | ${ms(median(gatewayCpu))} | | | |`);
    report(
      `| (reference) the same from an httpd on the container's loopback only (a Docker exec relay; no direct way) | ${mbps(median(fwdRelay))} | ${mbps(median(fwdDirect))} | ${(median(fwdRelay) / median(fwdDirect)).toFixed(2)}x | |`,
    );
    // Where a forward's bytes go: out of a Docker exec. The same exec, reached directly.
    const catGw: number[] = [];
    const catDirect: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      catGw.push(await timed('cat via gateway', () => runTool('sh', ['-c', `ssh "$@" cat /workspace/blob.bin > /dev/null`, 'sh', ...gw], undefined, 300_000)));
      catDirect.push(await timed('cat direct', () => runTool('sh', ['-c', `ssh "$@" docker exec exp1 cat /workspace/blob.bin > /dev/null`, 'sh', ...direct], undefined, 300_000)));
    }
    row(`(reference) ${MB} MB out of \`cat\` in the container (\`ssh exp1@GATEWAY cat\`; direct: \`ssh HOST docker exec exp1 cat\`)`, catGw, catDirect, mbps);
    report(`| (reference) time to a prompt of the host's own shell, direct | | ${ms(median(promptHost))} | | |`);
  } finally {
    await app.close();
    await bed.teardown();
    await rm(work, { recursive: true, force: true });
  }
}
