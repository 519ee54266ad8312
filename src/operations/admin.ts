import type { CommandContext } from '../core/engine.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { jobNamed, jobs } from '../jobs/index.js';
import type { OpsDeps } from './deps.js';
import { setQuota } from './quota.js';

export async function adminCommand(deps: OpsDeps, req: Extract<Request, { command: 'admin' }>, { actor }: CommandContext): Promise<Reply> {
  if (!actor.isAdmin) return refuse('Only admins can do that', 'Ask one of the admins listed in the config.');
  if (req.action === 'quota') return setQuota(deps, req, actor.handle);
  const job = jobNamed(req.job);
  if (!job) return refuse(`There is no job "${req.job}"`, `Jobs: ${jobs.map((j) => j.name).join(', ')}`);
  const summary = await job.run(deps);
  await audit(deps.db, { actor: actor.handle, action: 'run-job', target: job.name, result: 'ok', detail: summary });
  return reply('success', `Ran ${job.name}`, [{ type: 'text', text: summary }]);
}
