import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { clientOptions, jailedSftpServers, makeKey, spawnTool } from '../support/openssh.js';
import { waitFor } from '../support/wait.js';

// Its own bed and app: the test stops gpubot itself.
describe('gpubot stopping while a file session hangs', () => {
  let bed: Bed;
  let app: App | undefined;
  const jailedServers = async () => (await jailedSftpServers(bed.baseDir)).length > 0;

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('kills the jailed sftp-server blocked on a fifo the user made, so none outlives gpubot on the host', async () => {
    const keys = await mkdtemp(join(tmpdir(), 'gpb-keys-'));
    const started = await appFor(bed, {
      gateway: { port: 0, listen: '127.0.0.1', hostKeyPath: join(bed.baseDir, 'gateway', 'host_key'), publicHost: '127.0.0.1' },
      images: { default: 'gpubot-test/busybox:latest', allowed: ['gpubot-test/*'] },
    });
    app = started;
    const port = (await started.startGateway())!.port;
    const alice = await makeKey(keys, 'alice');
    expect((await chat(started, 'alice', `key add ${alice.publicLine}`)).reply.tone).toBe('success');
    expect((await chat(started, 'alice', 'run --gpus 1 --host h1 --name exp1')).reply.tone).toBe('success');
    const made = await bed.dockerCli('h1', ['exec', 'exp1', 'mkfifo', '/workspace/trap']);
    expect(made.code, made.stderr).toBe(0);
    const local = join(keys, 'into-fifo.txt');
    await writeFile(local, 'stuck');
    // sftp-server blocks in open() on the fifo, which has no reader.
    const client = spawnTool('sftp', [...clientOptions(alice.path, port), '-b', '-', 'exp1@127.0.0.1']);
    try {
      client.stdin!.end(`put ${local} trap\n`);
      await waitFor(jailedServers, { what: 'the jailed sftp-server', timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 500));
      expect(await jailedServers()).toBe(true);
      // gpubot stops with the session still open.
      app = undefined;
      await started.close();
      await waitFor(async () => !(await jailedServers()), { what: 'the blocked sftp-server to be killed', timeoutMs: 10_000 });
    } finally {
      client.kill();
    }
  });
});
