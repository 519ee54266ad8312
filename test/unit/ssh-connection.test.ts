import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SshConnection } from '../../src/hosts/ssh-connection.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../support/wait.js';

const hostKey = 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s';

describe('a host connection with a private key ssh2 cannot parse', () => {
  it('reports the key, retries, and neither crashes on the refused socket nor leaves it open', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gpb-sshconn-'));
    const keyPath = join(dir, 'id');
    await writeFile(keyPath, 'not a private key\n');
    // A port nothing listens on: the socket gpubot opened errs after ssh2 refused the key.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const refusedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    // And one that accepts: the socket must not be left connected after the failed attempt.
    const accepted: { closed: Promise<unknown> }[] = [];
    const up = createServer((s) => accepted.push({ closed: new Promise((r) => s.on('close', r)) }));
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const upPort = (up.address() as AddressInfo).port;
    try {
      for (const port of [refusedPort, upPort]) {
        const conn = new SshConnection('h', { host: '127.0.0.1', port, user: 'root', privateKeyPath: keyPath, hostKey, connectTimeoutMs: 2000 }, silentLogger(), 100);
        conn.start();
        await waitFor(() => conn.lastError, { what: 'the failed attempt' });
        expect(conn.lastError).toMatch(/privateKey/i);
        // Long enough for the refused socket's error, or the accepted one's close, to arrive.
        await new Promise((r) => setTimeout(r, 300));
        conn.close();
      }
      // Accepted or not (it may be destroyed before the server sees it), none stays connected.
      await Promise.all(accepted.map((a) => a.closed));
    } finally {
      up.close();
    }
  });
});
