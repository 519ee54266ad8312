/**
 * Which mentions in a message's content ping, as Discord decides from `allowed_mentions`:
 * absent → every @everyone/@here, <@user> and <@&role> in the content; present → only the kinds in
 * `parse` ('everyone', 'users', 'roles') and the ids in `users` / `roles`. The bot may mention
 * everyone in the guild; a DM has no @everyone and no roles. Embeds never ping.
 */
import { isObj, type Problem } from './protocol.js';

export interface Mentions {
  mention_everyone: boolean;
  /** User ids that ping. */
  users: string[];
  mention_roles: string[];
}

const PARSE = new Set(['everyone', 'users', 'roles']);

/** What Discord rejects in `allowed_mentions` (a 50035 Invalid Form Body). */
export function allowedMentionsProblems(am: unknown, path: string): Problem[] {
  if (am === undefined || am === null) return [];
  if (!isObj(am)) return [{ path, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' }];
  const out: Problem[] = [];
  const parse: unknown[] = Array.isArray(am.parse) ? am.parse : [];
  if (am.parse !== undefined && !Array.isArray(am.parse)) out.push({ path: `${path}.parse`, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' });
  parse.forEach((p, i) => {
    if (typeof p !== 'string' || !PARSE.has(p)) out.push({ path: `${path}.parse.${i}`, code: 'BASE_TYPE_CHOICES', message: 'Value must be one of {\'everyone\', \'roles\', \'users\'}.' });
  });
  for (const kind of ['users', 'roles'] as const) {
    const ids = am[kind];
    if (ids === undefined) continue;
    if (!Array.isArray(ids)) out.push({ path: `${path}.${kind}`, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' });
    else if (ids.length > 100) out.push({ path: `${path}.${kind}`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 100 or fewer in length.' });
    else if (ids.length && parse.includes(kind)) out.push({ path: `${path}.${kind}`, code: 'SET_TYPE_ALREADY_CONTAINS_VALUE', message: `parse:["${kind}"] and ${kind}: [ids...] are mutually exclusive.` });
  }
  return out;
}

export function resolveMentions(content: string, allowed: unknown, inGuild: boolean): Mentions {
  const am = isObj(allowed) ? allowed : undefined;
  const parse: unknown[] = am ? (Array.isArray(am.parse) ? am.parse : []) : ['everyone', 'users', 'roles'];
  const listed = (kind: 'users' | 'roles'): string[] => (am && Array.isArray(am[kind]) ? am[kind].map(String) : []);
  const may = (kind: 'users' | 'roles', id: string): boolean => parse.includes(kind) || listed(kind).includes(id);
  const unique = (ids: string[]): string[] => [...new Set(ids)];
  return {
    mention_everyone: inGuild && parse.includes('everyone') && /@(everyone|here)/.test(content),
    users: unique([...content.matchAll(/<@!?(\d{1,20})>/g)].map((m) => m[1]!).filter((id) => may('users', id))),
    mention_roles: inGuild ? unique([...content.matchAll(/<@&(\d{1,20})>/g)].map((m) => m[1]!).filter((id) => may('roles', id))) : [],
  };
}
