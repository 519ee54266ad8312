import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBed } from './bed/testbed.js';
import { appFor, chat } from './support/app.js';
import { clientOptions, makeKey, runTool } from './support/openssh.js';
const bed = await startBed({ hosts: 1 });
try {
  const app = await appFor(bed, { gateway: { port: 0, listen: '127.0.0.1', hostKeyPath: join(bed.baseDir, 'hk'), publicHost: '127.0.0.1' }, images: { default: 'gpubot-test/busybox:latest', allowed: ['gpubot-test/*'] } });
  const port = (await app.startGateway())!.port;
  const keys = await mkdtemp(join(tmpdir(), 'k-'));
  const k = await makeKey(keys, 'a');
  console.log((await chat(app, 'alice', `key add ${k.publicLine}`)).text);
  console.log((await chat(app, 'alice', `run --name exp1`)).text);
  const ssh = (args: string[], input?: string) => runTool('ssh', [...clientOptions(k.path, port), ...args], input);
  console.log(await ssh(['-tt', 'exp1@127.0.0.1', 'tty; echo hi'], ''));
  console.log(await ssh(['-tt', 'exp1@127.0.0.1'], 'tty; echo answer-$((6*7)); exit 3\n'));
  await app.close();
} finally { await bed.teardown(); }
