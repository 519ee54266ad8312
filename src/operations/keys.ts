import { hostname } from 'node:os';
import type { CommandContext } from '../core/engine.js';
import { isoMinute } from '../core/format.js';
import { refuse, reply, type Block, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { addKey, keysOf, MAX_KEYS_PER_USER, removeKeys } from '../db/ssh-keys.js';
import { RateLimiter } from '../gateway/rate-limit.js';
import { parsePublicKeyLine } from '../hosts/ssh-public-key.js';
import type { OpsDeps } from './deps.js';

/** Key changes per user: enough for anyone setting up, too few to churn the table. */
const KEY_CHANGES = { limit: 10, windowMs: 10 * 60_000 };
const limiters = new WeakMap<OpsDeps, RateLimiter>();
const limiterFor = (deps: OpsDeps) => {
  let l = limiters.get(deps);
  if (!l) limiters.set(deps, (l = new RateLimiter(KEY_CHANGES.limit, KEY_CHANGES.windowMs, () => deps.now().getTime())));
  return l;
};

/** Where users point ssh: the gateway's public name and port. */
export function gatewayAddress(deps: Pick<OpsDeps, 'config' | 'gateway'>): { host: string; port: number } | undefined {
  const g = deps.config.gateway;
  if (!g) return undefined;
  return { host: deps.gateway?.publicHost ?? g.publicHost ?? hostname(), port: deps.gateway?.port || g.port };
}

const sshLine = (addr: { host: string; port: number }, name: string) => `ssh -p ${addr.port} ${name}@${addr.host}`;

/** The lines a run reply carries to reach a container through the gateway. */
export function gatewayBlocks(deps: Pick<OpsDeps, 'config' | 'gateway'>, name: string): Block[] {
  const addr = gatewayAddress(deps);
  if (!addr) return [];
  return [
    { type: 'text', text: 'Get a shell in it (with a key you added with "key add"):' },
    { type: 'code', text: sshLine(addr, name) },
    { type: 'text', text: `VS Code (after adding "ssh-config" to ~/.ssh/config): vscode://vscode-remote/ssh-remote+gpubot-${name}${deps.config.storage.mountPath}` },
  ];
}

export async function keyCommand(deps: OpsDeps, req: Extract<Request, { command: 'key' }>, { actor }: CommandContext): Promise<Reply> {
  const { db } = deps;
  if (req.action === 'ls') {
    const keys = await keysOf(db, actor.userId);
    if (!keys.length)
      return reply('info', 'You have no SSH keys', [{ type: 'text', text: 'Add one with "key add ssh-ed25519 AAAA... you@laptop" (the contents of ~/.ssh/id_ed25519.pub).' }]);
    return reply('info', `Your ${keys.length} SSH key(s)`, [
      { type: 'table', columns: ['Fingerprint', 'Type', 'Comment', 'Added'], rows: keys.map((k) => [k.fingerprint, k.type, k.comment ?? '', isoMinute(k.createdAt)]) },
    ]);
  }
  const limiter = limiterFor(deps);
  if (!limiter.take(`key:${actor.userId}`)) {
    const minutes = Math.ceil(limiter.retryAfterMs(`key:${actor.userId}`) / 60_000);
    return refuse('rate-limited', 'Too many key changes', `At most ${KEY_CHANGES.limit} key changes in ${KEY_CHANGES.windowMs / 60_000} minutes; try again in ${minutes} min.`);
  }
  if (req.action === 'add') {
    let key;
    try {
      key = parsePublicKeyLine(req.line);
    } catch (err) {
      return refuse('invalid', 'That key was not added', capitalize((err as Error).message));
    }
    const added = await addKey(db, actor.userId, key);
    if (added === 'full') return refuse('over-quota', 'That key was not added', `You have ${MAX_KEYS_PER_USER} keys already; remove one with "key rm FINGERPRINT".`);
    if (added === 'taken')
      return refuse('conflict', 'That key was not added', `${key.fingerprint} is registered already (by you or someone else); a key can belong to one user only.`);
    await audit(db, { actor: actor.handle, action: 'key-add', target: key.fingerprint, result: 'ok', detail: `${key.type}${key.comment ? ` ${key.comment}` : ''}` });
    const addr = gatewayAddress(deps);
    return reply('success', `Key added: ${key.fingerprint}`, [
      {
        type: 'fields',
        fields: [
          { label: 'Type', value: key.type },
          { label: 'Comment', value: key.comment ?? '' },
        ],
      },
      ...(addr
        ? [
            { type: 'text' as const, text: 'It opens your running containers through the gateway:' },
            { type: 'code' as const, text: sshLine(addr, 'NAME') },
          ]
        : []),
    ]);
  }
  const removed = await removeKeys(db, actor.userId, req.target);
  if (!removed.length) return refuse('not-found', req.target === 'all' ? 'You have no SSH keys' : `You have no key ${req.target}`, 'See "key ls".');
  deps.gateway?.revokeKeys(removed.map((k) => k.fingerprint));
  for (const k of removed) await audit(db, { actor: actor.handle, action: 'key-rm', target: k.fingerprint, result: 'ok', detail: k.comment ?? undefined });
  return reply('success', removed.length === 1 ? `Key removed: ${removed[0]!.fingerprint}` : `${removed.length} keys removed`, [
    { type: 'text', text: 'Open gateway sessions that used it are closed.' },
  ]);
}

export async function sshConfig(deps: OpsDeps, _req: Extract<Request, { command: 'ssh-config' }>, { actor }: CommandContext): Promise<Reply> {
  const addr = gatewayAddress(deps);
  if (!addr) return refuse('unavailable', 'The SSH gateway is not enabled here', 'An admin can turn it on with "gateway:" in the config.');
  const running = await deps.db.container.findMany({ where: { userId: actor.userId, state: 'running' }, orderBy: { name: 'asc' } });
  if (!running.length) return reply('info', 'You have no running containers', [{ type: 'text', text: 'Start one with "run"; then ask again.' }]);
  const block = running
    .map((c) =>
      [
        `Host gpubot-${c.name}`,
        `  HostName ${addr.host}`,
        `  Port ${addr.port}`,
        `  User ${c.name}`,
        '  IdentityFile ~/.ssh/id_ed25519  # the key you added with "key add"',
        '  IdentitiesOnly yes',
      ].join('\n'),
    )
    .join('\n\n');
  return reply('info', `~/.ssh/config for your ${running.length} running container(s)`, [
    { type: 'code', text: block },
    { type: 'text', text: `Then "ssh gpubot-${running[0]!.name}", or in VS Code: vscode://vscode-remote/ssh-remote+gpubot-${running[0]!.name}${deps.config.storage.mountPath}` },
  ]);
}

const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
