import { createHash, randomFillSync } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * Two savings in ssh2's outgoing AES-GCM packets. The gateway encrypts every forwarded byte once
 * more than OpenSSH would (client leg and host leg), so per-packet costs count double:
 * - the padding of each packet comes from a pool of CSPRNG bytes, each byte used once, instead of
 *   one `randomFillSync` call per packet (8–19 µs each, about 10 % of a forward's CPU);
 * - a packet's buffer is reused once its socket has handed it to the kernel, instead of a fresh
 *   33 KB ArrayBuffer per packet, whose churn drove V8's external-memory collections.
 *
 * Applied only when ssh2's `allocPacket` is exactly the code it replaces (ssh2 1.17.0 with its
 * crypto addon); otherwise ssh2 runs as shipped. Reuse happens only on sockets passed through
 * `recyclePackets`; a packet written anywhere else is simply left to the garbage collector.
 */

const require = createRequire(import.meta.url);

/** sha256 of AESGCMCipherBinding.prototype.allocPacket's source in ssh2 1.17.0. */
const EXPECTED_ALLOC_PACKET = 'db5a8779179b7dddf434945ae86be16f60a125d897a505b9272e1696479804d1';
/** Room for the largest channel-data packet ssh2 sends (32 KB of data plus header, padding, tag). */
const SLAB_BYTES = 33 * 1024;
/** Below this a packet comes from Buffer's own small-object pool anyway. */
const SLAB_MIN_BYTES = 4096;
/** Enough for a 2 MB channel window in flight; about 2 MB held at most. */
const MAX_FREE_SLABS = 64;
const PADDING_POOL_BYTES = 16 * 1024;

const slabs = new WeakSet<ArrayBuffer>();
const freeSlabs: ArrayBuffer[] = [];
const padding = Buffer.alloc(PADDING_POOL_BYTES);
let paddingUsed = PADDING_POOL_BYTES;
let installed: boolean | undefined;
const stats = { slabsCreated: 0, slabsReused: 0, paddingRefills: 0 };

interface CipherPrototype {
  allocPacket(payloadLen: number): Buffer;
}

function takePadding(into: Buffer, offset: number, length: number): void {
  if (paddingUsed + length > PADDING_POOL_BYTES) {
    randomFillSync(padding);
    paddingUsed = 0;
    stats.paddingRefills++;
  }
  padding.copy(into, offset, paddingUsed, paddingUsed + length);
  paddingUsed += length;
}

function packetBuffer(length: number): Buffer {
  if (length < SLAB_MIN_BYTES || length > SLAB_BYTES) return Buffer.allocUnsafe(length);
  let slab = freeSlabs.pop();
  if (slab) stats.slabsReused++;
  else {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabs.add(slab);
    stats.slabsCreated++;
  }
  return Buffer.from(slab, 0, length);
}

/** The same packet layout as ssh2's AES-GCM allocPacket: length, padding length, payload, padding, tag. */
function allocPacket(payloadLen: number): Buffer {
  let pktLen = 4 + 1 + payloadLen;
  let padLen = 16 - ((pktLen - 4) & 15);
  if (padLen < 4) padLen += 16;
  pktLen += padLen;
  const packet = packetBuffer(pktLen + 16);
  packet.writeUInt32BE(pktLen - 4, 0);
  packet[4] = padLen;
  takePadding(packet, 5 + payloadLen, padLen);
  return packet;
}

function aesGcmCipherPrototype(): CipherPrototype | undefined {
  const crypto = require('ssh2/lib/protocol/crypto.js') as {
    CIPHER_INFO: Record<string, { keyLen: number; ivLen: number }>;
    createCipher(config: unknown): CipherPrototype & { free(): void };
  };
  const info = crypto.CIPHER_INFO['aes128-gcm@openssh.com'];
  if (!info) return undefined;
  const probe = crypto.createCipher({
    outbound: { seqno: 0, onWrite() {}, cipherInfo: info, cipherKey: Buffer.alloc(info.keyLen), cipherIV: Buffer.alloc(info.ivLen) },
  });
  probe.free();
  return Object.getPrototypeOf(probe) as CipherPrototype;
}

/** Installs the savings into ssh2 once per process. Returns whether they are in place. */
export function tuneSshPackets(): boolean {
  if (installed !== undefined) return installed;
  installed = false;
  try {
    const proto = aesGcmCipherPrototype();
    if (!proto || createHash('sha256').update(proto.allocPacket.toString()).digest('hex') !== EXPECTED_ALLOC_PACKET) return false;
    proto.allocPacket = allocPacket;
    installed = true;
  } catch {
    // A different ssh2 layout: it runs as shipped.
  }
  return installed;
}

/**
 * Lets `socket` give packet buffers back for reuse once each is written. A buffer returns only
 * from its write's callback without error: node and libuv are done with it (handed to the kernel,
 * or the write was cancelled with the socket), so no byte of it is still to be sent.
 */
export function recyclePackets<S extends Socket>(socket: S): S {
  const write = socket.write as (this: S, ...args: unknown[]) => boolean;
  socket.write = function (this: S, data: unknown, ...rest: unknown[]): boolean {
    if (rest.length === 0 && data instanceof Uint8Array && slabs.has(data.buffer as ArrayBuffer)) {
      const slab = data.buffer as ArrayBuffer;
      return write.call(this, data, (err?: Error | null) => {
        if (!err && freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(slab);
      });
    }
    return write.call(this, data, ...rest);
  } as S['write'];
  return socket;
}

/** Counters for tests and benchmarks. */
export function sshPacketStats(): Readonly<typeof stats> {
  return { ...stats };
}
