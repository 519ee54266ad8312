import { imageAllowed } from '../core/policy/images.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { errorMessage } from '../util/errors.js';
import type { OpsDeps } from './deps.js';

export async function listImages(deps: OpsDeps, req: Extract<Request, { command: 'images' }>): Promise<Reply> {
  const names = req.host ? [req.host] : deps.pool.hostNames();
  if (req.host && !deps.pool.get(req.host)) return refuse('not-found', `There is no host "${req.host}"`, `Known hosts: ${deps.pool.hostNames().join(', ')}`);
  const allowed = deps.config.images.allowed;
  const sections = await Promise.all(
    names.map(async (name): Promise<Reply['blocks'][number]> => {
      const host = deps.pool.get(name)!;
      try {
        const images = await host.runtime.listImages();
        const rows = images
          .flatMap((i) => i.tags.map((tag) => [tag, `${(i.sizeBytes / 1024 ** 2).toFixed(0)} MiB`, imageAllowed(tag, allowed) ? 'yes' : 'no']))
          .sort((a, b) => a[0]!.localeCompare(b[0]!));
        return { type: 'section', heading: `${name}: ${rows.length} image(s)`, blocks: [{ type: 'table', columns: ['Image', 'Size', 'Allowed'], rows }] };
      } catch (err) {
        return { type: 'section', heading: `${name}: unknown`, tone: 'error', blocks: [{ type: 'text', text: errorMessage(err) }] };
      }
    }),
  );
  return reply('info', 'Images on the hosts', [
    ...sections,
    { type: 'text', text: `Allowed: ${allowed.join(', ')}; default: ${deps.config.images.default}. An allowed image missing on a host is pulled on "run".` },
  ]);
}
