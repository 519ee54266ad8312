// Bring fake GPU hosts up / down by hand.
//   npx tsx test/bed/cli.ts up 3 [--gpus 4] [--no-docker] [--image REF]... [--detach] [--state DIR]
//   npx tsx test/bed/cli.ts down [--state DIR] [--all]
// `up` prints the generated gpubot.yaml path and keeps the hosts up until Ctrl-C; with --detach it
// records the bed in <state>/bed.json (default /tmp/gpubot-bed) and exits; `down` tears that bed down.
// `down --all` also sweeps every /tmp/gpb-* bed left by crashed runs.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { forgetBed, startBed, sweepBaseDir, teardownFromState, type Bed, type BedStateFile } from './testbed.js';

const DEFAULT_STATE_DIR = '/tmp/gpubot-bed';

function usage(): never {
  process.stderr.write('usage: cli.ts up [N] [--gpus G] [--no-docker] [--image REF]... [--detach] [--state DIR]\n' + '       cli.ts down [--state DIR] [--all]\n');
  process.exit(2);
}

interface Args {
  cmd: string;
  hosts: number;
  gpus: number | undefined;
  docker: boolean;
  images: string[];
  detach: boolean;
  all: boolean;
  stateDir: string;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { cmd: argv[0] ?? '', hosts: 2, gpus: undefined, docker: true, images: [], detach: false, all: false, stateDir: DEFAULT_STATE_DIR };
  for (let i = 1; i < argv.length; i++) {
    const x = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) usage();
      return v;
    };
    if (/^\d+$/.test(x)) a.hosts = Number(x);
    else if (x === '--gpus') a.gpus = Number(val());
    else if (x === '--no-docker') a.docker = false;
    else if (x === '--image') a.images.push(val());
    else if (x === '--detach' || x === '-d') a.detach = true;
    else if (x === '--state') a.stateDir = path.resolve(val());
    else if (x === '--all') a.all = true;
    else usage();
  }
  return a;
}

function describe(bed: Bed, yamlPath: string): string {
  const lines = [`gpubot config: ${yamlPath}`, `base dir:      ${bed.baseDir}`, `client key:    ${bed.clientKeyPath}`, ''];
  for (const h of bed.hosts) {
    lines.push(
      `${h.name}: ssh -i ${bed.clientKeyPath} -p ${h.sshPort} -o UserKnownHostsFile=${bed.baseDir}/known_hosts root@127.0.0.1`,
      `    docker -H unix://${h.dockerSocket} ps      gpus: ${h.gpuStatePath}`,
    );
  }
  return lines.join('\n') + '\n';
}

async function up(a: Args): Promise<void> {
  if (a.detach) {
    const existing = await fs.readFile(path.join(a.stateDir, 'bed.json'), 'utf8').catch(() => null);
    if (existing) throw new Error(`${a.stateDir}/bed.json exists: run \`cli.ts down --state ${a.stateDir}\` first`);
  }
  const t0 = Date.now();
  const bed = await startBed({
    hosts: a.hosts,
    docker: a.docker,
    ...(a.gpus !== undefined ? { gpusPerHost: a.gpus } : {}),
    ...(a.images.length > 0 ? { images: a.images } : {}),
  });
  const yamlPath = path.join(bed.baseDir, 'gpubot.yaml');
  await fs.writeFile(yamlPath, stringify(bed.config(), { lineWidth: 0 }));
  process.stdout.write(`${a.hosts} host(s) up in ${Date.now() - t0} ms\n` + describe(bed, yamlPath));

  if (a.detach) {
    await fs.mkdir(a.stateDir, { recursive: true });
    await fs.copyFile(path.join(bed.baseDir, 'bed.json'), path.join(a.stateDir, 'bed.json'));
    forgetBed(bed.baseDir); // keep the hosts running after we exit
    process.stdout.write(`state: ${a.stateDir}/bed.json  (stop with: npx tsx test/bed/cli.ts down --state ${a.stateDir})\n`);
    return;
  }
  process.stdout.write('Ctrl-C to tear down.\n');
  await new Promise<void>((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30); // signal listeners alone don't hold the loop
    const stop = () => {
      clearInterval(keepAlive);
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  process.stdout.write('tearing down...\n');
  const t1 = Date.now();
  await bed.teardown();
  process.stdout.write(`down in ${Date.now() - t1} ms\n`);
}

async function down(a: Args): Promise<void> {
  const stateFile = path.join(a.stateDir, 'bed.json');
  const text = await fs.readFile(stateFile, 'utf8').catch(() => null);
  if (text) {
    const st = JSON.parse(text) as BedStateFile;
    // The copy in baseDir is newer if the bed was driven through the API meanwhile.
    const fresh = await fs.readFile(path.join(st.baseDir, 'bed.json'), 'utf8').catch(() => null);
    await teardownFromState(fresh ? (JSON.parse(fresh) as BedStateFile) : st);
    await fs.rm(stateFile, { force: true });
    process.stdout.write(`removed ${st.baseDir}\n`);
  } else if (!a.all) {
    throw new Error(`no bed recorded in ${stateFile}`);
  }
  if (a.all) {
    for (const d of await fs.readdir('/tmp')) {
      if (!d.startsWith('gpb-')) continue;
      await sweepBaseDir(path.join('/tmp', d));
      process.stdout.write(`swept /tmp/${d}\n`);
    }
  }
}

const args = parseArgs(process.argv.slice(2));
try {
  if (args.cmd === 'up') await up(args);
  else if (args.cmd === 'down') await down(args);
  else usage();
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
