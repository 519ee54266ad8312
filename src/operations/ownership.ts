import type { Actor } from '../core/requests.js';
import type { Container, PrismaClient, User } from '../db/client.js';
import { InputError } from '../core/validate.js';
import { setLogHost } from '../log-context.js';

/** A live container by name, if the actor may act on it (its owner or an admin). */
export async function ownedContainer(db: PrismaClient, actor: Actor, name: string): Promise<Container & { user: User }> {
  const c = await db.container.findUnique({ where: { name }, include: { user: true } });
  if (!c || c.state === 'removed') throw new InputError(`you have no container named "${name}" (see "ls")`, 'not-found');
  setLogHost(c.hostName);
  if (c.userId !== actor.userId && !actor.isAdmin) throw new InputError(`"${name}" belongs to ${c.user.handle}; only they or an admin can do that`, 'not-owner');
  return c;
}
