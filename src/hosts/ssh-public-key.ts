import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';

// ssh2 is CommonJS: its named exports exist only on the default export under Node's ESM loader.
const { utils } = ssh2;
import { fingerprint } from './host-key.js';

export interface PublicKeyInfo {
  type: string;
  /** The key blob, base64. */
  publicKey: string;
  fingerprint: string;
  comment: string | null;
}

const ACCEPTED = new Set(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'ssh-rsa']);
export const MIN_RSA_BITS = 3072;

/**
 * An OpenSSH public key line ("ssh-ed25519 AAAA... comment"), checked: ed25519, ecdsa, or rsa of
 * at least 3072 bits; never a private key. Throws an Error whose message a user can act on.
 */
export function parsePublicKeyLine(line: string): PublicKeyInfo {
  const text = line.trim().replace(/\s+/g, ' ');
  if (/PRIVATE KEY/.test(text)) throw new Error('that is a private key; paste the public one (the .pub file) and keep the private key to yourself');
  const [type, blob, ...rest] = text.split(' ');
  if (!type || !blob) throw new Error('a public key line looks like "ssh-ed25519 AAAA... you@laptop" (the contents of ~/.ssh/id_ed25519.pub)');
  if (!ACCEPTED.has(type))
    throw new Error(`"${type.slice(0, 40)}" keys are not accepted; use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa of at least ${MIN_RSA_BITS} bits`);
  if (!/^[A-Za-z0-9+/]+={0,3}$/.test(blob)) throw new Error('the key is not valid base64; paste the whole line from the .pub file');
  const parsed = utils.parseKey(`${type} ${blob}`);
  if (parsed instanceof Error) throw new Error(`not a valid ${type} public key (${parsed.message})`);
  if (parsed.isPrivateKey()) throw new Error('that is a private key; paste the public one');
  if (parsed.type !== type) throw new Error(`the key says ${type} but holds a ${parsed.type} key`);
  const raw = parsed.getPublicSSH();
  if (type === 'ssh-rsa') {
    const bits = createPublicKey(parsed.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new Error(`this RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are needed (ssh-keygen -t ed25519 makes a better one)`);
  }
  const comment =
    rest
      .join(' ')
      .replace(/[^\x20-\x7e]/g, '')
      .slice(0, 100) || null;
  return { type, publicKey: raw.toString('base64'), fingerprint: fingerprint(raw), comment };
}

/** True when the key a client offers is this stored key and (when given) the signature over blob verifies. */
export function verifyClientKey(stored: { type: string; publicKey: string }, offered: Buffer, signature?: { blob: Buffer; signature: Buffer; hashAlgo?: string }): boolean {
  const parsed = utils.parseKey(`${stored.type} ${stored.publicKey}`);
  if (parsed instanceof Error) return false;
  if (!parsed.getPublicSSH().equals(offered)) return false;
  if (!signature) return true;
  return parsed.verify(signature.blob, signature.signature, signature.hashAlgo) === true;
}

export const keyFingerprint = (offered: Buffer): string => fingerprint(offered);

/**
 * The gateway's host key: read from path, or generated (ed25519, mode 0600) at first start and
 * kept, so clients' known_hosts entries stay valid across restarts.
 */
export async function loadOrCreateHostKey(path: string): Promise<{ privateKey: string; fingerprint: string; publicLine: string }> {
  if (!existsSync(path)) {
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'gpubot-gateway' });
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, pair.private, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
      // Another process made it meanwhile: use theirs.
      if (err.code !== 'EEXIST') throw err;
    });
    await chmod(path, 0o600);
  }
  const privateKey = await readFile(path, 'utf8');
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new Error(`${path}: not a private key ssh2 can read (${parsed.message})`);
  const raw = parsed.getPublicSSH();
  return { privateKey, fingerprint: fingerprint(raw), publicLine: `${parsed.type} ${raw.toString('base64')}` };
}
