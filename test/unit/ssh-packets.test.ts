import { createHash, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import { afterEach, describe, expect, it } from 'vitest';
import { recyclePackets, sshPacketStats, tuneSshPackets } from '../../src/hosts/ssh-packets.js';

const require = createRequire(import.meta.url);
const ssh2Crypto = require('ssh2/lib/protocol/crypto.js') as {
  CIPHER_INFO: Record<string, { keyLen: number; ivLen: number }>;
  createCipher(config: unknown): { allocPacket(n: number): Buffer; free(): void };
};

function aesGcmCipher() {
  const info = ssh2Crypto.CIPHER_INFO['aes128-gcm@openssh.com']!;
  return ssh2Crypto.createCipher({ outbound: { seqno: 0, onWrite() {}, cipherInfo: info, cipherKey: Buffer.alloc(16), cipherIV: Buffer.alloc(12) } });
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function listen(server: Server): Promise<number> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

describe("ssh2's outgoing packets, tuned", () => {
  it('is installed on the pinned ssh2 and builds packets as ssh2 lays them out, with fresh random padding', () => {
    expect(tuneSshPackets()).toBe(true);
    expect(tuneSshPackets()).toBe(true);
    const cipher = aesGcmCipher();
    const paddings: Buffer[] = [];
    for (let payloadLen = 1; payloadLen < 3000; payloadLen += 7) {
      const packet = cipher.allocPacket(payloadLen);
      const pktLen = packet.readUInt32BE(0) + 4;
      const padLen = packet[4]!;
      expect(packet.length).toBe(pktLen + 16);
      expect((pktLen - 4) % 16).toBe(0);
      expect(padLen).toBeGreaterThanOrEqual(4);
      expect(5 + payloadLen + padLen).toBe(pktLen);
      paddings.push(Buffer.from(packet.subarray(5 + payloadLen, pktLen)));
    }
    cipher.free();
    // Random bytes, not a constant or a repeated block: ~4,000 bytes take nearly every value.
    const all = Buffer.concat(paddings);
    expect(new Set(all).size).toBeGreaterThan(240);
    expect(new Set(paddings.map((p) => p.toString('hex'))).size).toBe(paddings.length);
  });

  it('never reuses a buffer the kernel has not taken yet', async () => {
    tuneSshPackets();
    const held: Socket[] = [];
    const port = await listen(
      createServer((s) => {
        s.pause();
        held.push(s);
      }),
    );
    const sock = recyclePackets(connect(port, '127.0.0.1'));
    await new Promise((r) => sock.once('connect', r));
    const cipher = aesGcmCipher();
    // Fill the kernel's buffers so the next write has to wait for the reader.
    sock.write(Buffer.alloc(16 * 1048576));
    const pending = cipher.allocPacket(32768);
    sock.write(pending);
    expect(sock.writableLength).toBeGreaterThan(0);
    const whileWaiting = new Set<ArrayBufferLike>();
    for (let i = 0; i < 100; i++) whileWaiting.add(cipher.allocPacket(32768).buffer);
    expect(whileWaiting.has(pending.buffer)).toBe(false);
    // Once the reader drains it, the same buffer comes back.
    const drained = new Promise((r) => sock.once('drain', r));
    for (const s of held) s.resume();
    await drained;
    const after = new Set<ArrayBufferLike>();
    for (let i = 0; i < 100; i++) after.add(cipher.allocPacket(32768).buffer);
    expect(after.has(pending.buffer)).toBe(true);
    cipher.free();
    sock.destroy();
    for (const s of held) s.destroy();
  });

  it('carries 24 MB each way through a real ssh2 client and server unchanged, reusing buffers', async () => {
    tuneSshPackets();
    const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
    const gcm: ssh2.CipherAlgorithm[] = ['aes128-gcm@openssh.com'];
    const server = new ssh2.Server({ hostKeys: [hostKey], algorithms: { cipher: gcm } }, (client) => {
      client.on('authentication', (ctx) => ctx.accept());
      client.on('ready', () =>
        client.on('session', (accept) => {
          accept().on('exec', (acceptExec) => {
            const ch = acceptExec();
            ch.pipe(ch); // an echo
          });
        }),
      );
    });
    const port = await listen(createServer((s) => server.injectSocket(recyclePackets(s))));
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve).once('error', reject);
      client.connect({ sock: recyclePackets(connect(port, '127.0.0.1')), username: 'u', algorithms: { cipher: gcm } });
    });
    const before = sshPacketStats();
    const data = randomBytes(24 * 1048576);
    const echoed = await new Promise<Buffer>((resolve, reject) => {
      client.exec('echo', (err, ch) => {
        if (err) return reject(err);
        const parts: Buffer[] = [];
        ch.on('data', (d: Buffer) => parts.push(d));
        ch.on('close', () => resolve(Buffer.concat(parts)));
        let at = 0;
        // Written in pieces, as a forward's reads arrive; ended once all of it came back.
        const more = () => {
          while (at < data.length) {
            const ok = ch.write(data.subarray(at, at + 100_000));
            at += 100_000;
            if (!ok) return void ch.once('drain', more);
          }
        };
        more();
        const check = setInterval(() => {
          if (parts.reduce((n, p) => n + p.length, 0) >= data.length) {
            clearInterval(check);
            ch.end();
            ch.close();
          }
        }, 20);
      });
    });
    client.end();
    expect(echoed.length).toBe(data.length);
    expect(createHash('sha256').update(echoed).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    const after = sshPacketStats();
    // ~1,500 packets each way: most of them in reused buffers.
    expect(after.slabsReused - before.slabsReused).toBeGreaterThan(1000);
    expect(after.slabsCreated - before.slabsCreated).toBeLessThan(200);
  });
});
