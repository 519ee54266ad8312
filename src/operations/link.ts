import { randomInt } from 'node:crypto';
import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import type { OpsDeps } from './deps.js';

const CODE_LIFETIME_MS = 10 * 60_000;
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I

/**
 * "link" hands out a one-time code; "link CODE" said as another chat identity moves that identity,
 * with its containers, allocations and history, onto the code's user: one quota, one directory.
 */
export async function link(deps: OpsDeps, req: Extract<Request, { command: 'link' }>, { actor }: CommandContext): Promise<Reply> {
  const { db } = deps;
  const now = deps.now();
  if (!req.code) {
    const code = Array.from({ length: 6 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
    const expiresAt = new Date(now.getTime() + CODE_LIFETIME_MS);
    await db.linkCode.deleteMany({ where: { userId: actor.userId } });
    await db.linkCode.create({ data: { code, userId: actor.userId, expiresAt } });
    return reply('info', `Your link code: ${code}`, [{ type: 'text', text: `In your other chat, say "link ${code}" before ${isoMinute(expiresAt)}. Both then count as ${actor.handle}: one quota, one directory.` }]);
  }
  const found = await db.linkCode.findUnique({ where: { code: req.code } });
  if (!found || found.expiresAt <= now) return refuse('not-found', 'That link code is not valid', 'It may have expired (they last 10 minutes); say "link" in the other chat for a new one.');
  if (found.userId === actor.userId) return refuse('invalid', 'That code is your own', 'Say it in your other chat.');
  const target = await db.user.findUniqueOrThrow({ where: { id: found.userId } });
  const from = actor.userId;
  await db.$transaction([
    db.linkCode.delete({ where: { id: found.id } }),
    db.chatIdentity.updateMany({ where: { userId: from }, data: { userId: target.id } }),
    db.allocation.updateMany({ where: { userId: from }, data: { userId: target.id } }),
    db.container.updateMany({ where: { userId: from }, data: { userId: target.id } }),
    db.notice.updateMany({ where: { userId: from }, data: { userId: target.id } }),
    db.sshKey.updateMany({ where: { userId: from }, data: { userId: target.id } }),
    db.user.delete({ where: { id: from } }),
  ]);
  await audit(db, { actor: actor.handle, action: 'link', target: target.handle, result: 'ok', detail: `user ${actor.handle} merged into ${target.handle}` });
  return reply('success', `Linked: you are ${target.handle} here too`, [{ type: 'text', text: `Your containers and reservations from both chats now count as ${target.handle}'s.` }]);
}
