import { createHash, timingSafeEqual } from 'node:crypto';

/** "SHA256:..." as ssh-keygen -l prints it. */
export const fingerprint = (key: Buffer): string => `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

/** Compares the key a server offers with the pinned one: a public key line or a SHA256 fingerprint. */
export function hostKeyMatches(pinned: string, offered: Buffer): boolean {
  if (pinned.startsWith('SHA256:')) return pinned.replace(/=+$/, '') === fingerprint(offered);
  const b64 = pinned.split(/\s+/)[1] ?? '';
  const expected = Buffer.from(b64, 'base64');
  return expected.length === offered.length && timingSafeEqual(expected, offered);
}
