import { randomInt } from 'node:crypto';
import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { retryIn } from '../core/policy/rate-limit.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { Prisma, type PrismaClient } from '../db/client.js';
import { retireHandle } from '../db/users.js';
import type { OpsDeps } from './deps.js';

const CODE_LIFETIME_MS = 10 * 60_000;
const MAX_WRONG_CODES = 5;
const LOCK_MS = 15 * 60_000;
const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I
const platformName: Record<string, string> = { slack: 'Slack', discord: 'Discord', console: 'console' };

type LinkRequest = Extract<Request, { command: 'link' }>;

/**
 * "link" hands out a one-time code; "link CODE" said as another chat identity asks the code's
 * owner, in the first chat, to confirm; "link yes CODE" there moves that identity, with its
 * containers, reservations, queued runs, quota override and keys, onto the code's user. The
 * merged-away handle is retired for good.
 */
export async function link(deps: OpsDeps, req: LinkRequest, ctx: CommandContext): Promise<Reply> {
  if (!req.code) return newCode(deps, ctx);
  if (req.answer) return answer(deps, req.code, req.answer, ctx);
  return claim(deps, req.code, ctx);
}

async function newCode(deps: OpsDeps, { actor }: CommandContext): Promise<Reply> {
  const allowed = deps.limiters.linkCodes.take(`user:${actor.userId}`);
  if (!allowed.ok) return refuse('rate-limited', 'Slow down: too many link codes', `No new code was made. Try again ${retryIn(allowed.retryInMs)}.`);
  const { db } = deps;
  const code = Array.from({ length: 6 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');
  const expiresAt = new Date(deps.now().getTime() + CODE_LIFETIME_MS);
  await db.$transaction([db.linkCode.deleteMany({ where: { userId: actor.userId } }), db.linkCode.create({ data: { code, userId: actor.userId, expiresAt } })]);
  return reply('info', `Your link code: ${code}`, [
    {
      type: 'text',
      text: `In your other chat, say "link ${code}" before ${isoMinute(expiresAt)}, then confirm here. Both then count as ${actor.handle}: one quota, one directory.`,
    },
  ]);
}

/** The other identity enters the code: nothing merges yet; the code's owner is asked. */
async function claim(deps: OpsDeps, code: string, { actor }: CommandContext): Promise<Reply> {
  const { db } = deps;
  const now = deps.now();
  const lock = await db.linkLock.findUnique({ where: { userId: actor.userId } });
  if (lock?.lockedUntil && lock.lockedUntil > now) {
    return refuse(
      'rate-limited',
      'Linking is locked for you',
      `Too many wrong link codes. Try again ${retryIn(lock.lockedUntil.getTime() - now.getTime())} (after ${isoMinute(lock.lockedUntil)}).`,
    );
  }
  const found = await db.linkCode.findUnique({ where: { code } });
  if (found?.userId === actor.userId) return refuse('invalid', 'That code is your own', 'Say it in your other chat.');
  if (!found || found.expiresAt <= now || (found.claimedByUserId !== null && found.claimedByUserId !== actor.userId)) return wrongCode(deps, actor.userId, now);
  const claimed = await db.linkCode.updateMany({
    where: { id: found.id, OR: [{ claimedByUserId: null }, { claimedByUserId: actor.userId }] },
    data: { claimedByUserId: actor.userId },
  });
  if (claimed.count !== 1) return wrongCode(deps, actor.userId, now);
  await db.linkLock.deleteMany({ where: { userId: actor.userId } });

  const owner = await db.user.findUniqueOrThrow({ where: { id: found.userId } });
  const who = await describeIdentities(db, actor.userId);
  await deps.notify(
    owner.id,
    reply('warning', `Link ${who} to you?`, [
      {
        type: 'text',
        text: `Someone entered your link code ${code} as ${who}. Yes makes them you (${owner.handle}): your containers, quota and directory, from both chats. If this was not you, say No.`,
      },
      {
        type: 'actions',
        actions: [
          { id: 'link-yes', label: 'Yes', command: `link yes ${code}`, style: 'primary' },
          { id: 'link-no', label: 'No', command: `link no ${code}`, style: 'danger' },
        ],
      },
    ]),
  );
  await audit(db, { actor: actor.handle, action: 'link', target: owner.handle, result: 'ok', detail: `code entered; waiting for ${owner.handle} to confirm` });
  return reply('info', 'Now confirm in your other chat', [
    { type: 'text', text: `Your other chat was asked to confirm; answer Yes there (or say "link yes ${code}") before ${isoMinute(found.expiresAt)}.` },
  ]);
}

async function wrongCode(deps: OpsDeps, userId: number, now: Date): Promise<Reply> {
  const { db } = deps;
  const lock = await db.linkLock.upsert({ where: { userId }, create: { userId, failures: 1 }, update: { failures: { increment: 1 } } });
  const detail = 'It may have expired (they last 10 minutes); say "link" in the other chat for a new one.';
  if (lock.failures < MAX_WRONG_CODES) return refuse('not-found', 'That link code is not valid', detail);
  const lockedUntil = new Date(now.getTime() + LOCK_MS);
  await db.linkLock.update({ where: { userId }, data: { failures: 0, lockedUntil } });
  return refuse('not-found', 'That link code is not valid', `${detail} After ${MAX_WRONG_CODES} wrong codes, linking is locked for you until ${isoMinute(lockedUntil)}.`);
}

/** "Discord user bob", or every chat identity of a user already linked. */
async function describeIdentities(db: PrismaClient, userId: number): Promise<string> {
  const ids = await db.chatIdentity.findMany({ where: { userId }, orderBy: { id: 'asc' } });
  return ids.map((i) => `${platformName[i.platform] ?? i.platform} user ${i.displayName ?? i.externalId}`).join(' and ') || 'another user';
}

/** The code's owner answers in the first chat. */
async function answer(deps: OpsDeps, code: string, said: 'yes' | 'no', { actor }: CommandContext): Promise<Reply> {
  const { db } = deps;
  const now = deps.now();
  const found = await db.linkCode.findUnique({ where: { code } });
  if (!found || found.userId !== actor.userId || found.claimedByUserId === null)
    return refuse('not-found', 'There is nothing to confirm for that code', 'Say "link" for a new code.');
  if (found.expiresAt <= now) {
    await db.linkCode.deleteMany({ where: { id: found.id } });
    return refuse('not-found', 'That link code has expired', 'Nothing was linked. Say "link" for a new code.');
  }
  const from = await db.user.findUnique({ where: { id: found.claimedByUserId } });
  if (said === 'no' || !from) {
    await db.linkCode.deleteMany({ where: { id: found.id } });
    await audit(db, { actor: actor.handle, action: 'link', target: from?.handle, result: 'refused', detail: 'declined by the code owner' });
    return reply('success', 'Not linked', [{ type: 'text', text: 'The code is void; nothing changed.' }]);
  }
  const who = await describeIdentities(db, from.id);
  const moved = await mergeUsers(db, from.id, from.handle, actor.userId, actor.handle, found.id);
  await audit(db, {
    actor: actor.handle,
    action: 'link',
    target: from.handle,
    result: 'ok',
    detail: `user ${from.handle} merged into ${actor.handle} (${who}); moved ${moved}; handle ${from.handle} retired`,
  });
  return reply('success', `Linked: ${who} is you (${actor.handle}) now`, [
    { type: 'text', text: `Containers, reservations and queued runs from both chats now count as ${actor.handle}'s.` },
  ]);
}

const lowerFirst = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);
/** Per-user tables handled by hand below, not by the generic move. */
const NOT_MOVED = new Set(['LinkCode', 'LinkLock']);

/**
 * One transaction: every row of every table with a `userId` column (identities, containers,
 * allocations, queued runs, notices, keys, and whatever is added later) moves to the kept user;
 * the quota override follows unless the kept user has one; the other handle is retired.
 */
async function mergeUsers(db: PrismaClient, fromId: number, fromHandle: string, toId: number, toHandle: string, codeId: number): Promise<string> {
  type Delegate = { fields?: Record<string, unknown>; updateMany(args: object): Prisma.PrismaPromise<{ count: number }> };
  const movable = Object.values(Prisma.ModelName)
    .filter((m) => !NOT_MOVED.has(m))
    .map((m) => ({ model: m, delegate: (db as unknown as Record<string, Delegate>)[lowerFirst(m)] }))
    .filter(({ delegate }) => delegate?.fields && 'userId' in delegate.fields);
  const [override, keptOverride] = await Promise.all([
    db.quotaOverride.findUnique({ where: { handle: fromHandle } }),
    db.quotaOverride.findUnique({ where: { handle: toHandle } }),
  ]);
  const results = await db.$transaction([
    db.linkCode.delete({ where: { id: codeId } }),
    db.linkCode.deleteMany({ where: { userId: fromId } }),
    db.linkLock.deleteMany({ where: { userId: { in: [fromId, toId] } } }),
    ...movable.map(({ delegate }) => delegate!.updateMany({ where: { userId: fromId }, data: { userId: toId } })),
    ...(override && !keptOverride
      ? [db.quotaOverride.update({ where: { handle: fromHandle }, data: { handle: toHandle } })]
      : [db.quotaOverride.deleteMany({ where: { handle: fromHandle } })]),
    retireHandle(db, fromHandle, `merged into ${toHandle} by link`),
    db.user.delete({ where: { id: fromId } }),
  ]);
  const counts = results.slice(3, 3 + movable.length) as { count: number }[];
  return movable.map(({ model }, i) => `${counts[i]!.count} ${model}`).join(', ');
}
