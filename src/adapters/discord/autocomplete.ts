import type { AutocompleteInteraction } from 'discord.js';
import type { App } from '../../app.js';
import { isFree } from '../../core/commands/status.js';
import { allowedImagesOnHosts } from '../../hosts/images.js';
import { withTimeout } from '../../hosts/errors.js';

const BUDGET_MS = 1500; // Discord drops an autocomplete answer after 3 s
type Choice = { name: string; value: string };

/** Choices for the focused option: the user's containers, allowed images, hosts with free GPUs. */
export async function choices(app: App, i: AutocompleteInteraction): Promise<Choice[]> {
  const focused = i.options.getFocused(true);
  const typed = String(focused.value).toLowerCase();
  const matching = (list: Choice[]) => list.filter((c) => c.value.toLowerCase().includes(typed)).slice(0, 25);
  const within = <T>(work: Promise<T>, fallback: T) => withTimeout(work, BUDGET_MS, 'autocomplete').catch(() => fallback);

  if (focused.name === 'name') {
    const actor = await app.actor(i.user.id, 'discord', i.user.username);
    const containers = await app.db.container.findMany({ where: { state: { not: 'removed' }, ...(actor.isAdmin ? {} : { userId: actor.userId }) }, include: { user: true }, orderBy: { createdAt: 'desc' }, take: 100 });
    return matching(containers.map((c) => ({ name: `${c.name} (${c.state} on ${c.hostName}${actor.isAdmin ? `, ${c.user.handle}` : ''})`.slice(0, 100), value: c.name })));
  }
  if (focused.name === 'image') {
    const found = await allowedImagesOnHosts(app.pool.all(), app.options.config.images, BUDGET_MS);
    return matching(found.map((tag) => ({ name: tag.slice(0, 100), value: tag })));
  }
  if (focused.name === 'host') {
    const snapshots = await within(app.pool.recentSnapshot(5000), []);
    return matching(
      snapshots
        .filter((s) => s.state === 'up' && s.gpus)
        .map((s) => ({ free: s.gpus!.filter(isFree).length, name: s.name }))
        .filter((h) => h.free > 0)
        .sort((a, b) => b.free - a.free)
        .map((h) => ({ name: `${h.name} (${h.free} free)`, value: h.name })),
    );
  }
  return [];
}
