/** Discord's constants (flags, permissions, deadlines), its error shapes, snowflakes and small helpers. */
import { isObj } from '../standin-http.js';
import type { Json } from './types.js';

export { isObj };

/** An interaction must get its callback within this. */
export const ACK_DEADLINE_MS = 3000;
/** An interaction token (its webhook) lives this long. */
export const TOKEN_TTL_MS = 15 * 60_000;
const DISCORD_EPOCH = 1420070400000n;
export const EPHEMERAL = 64;
export const LOADING = 128;
export const SUPPRESS_EMBEDS = 4;
export const SUPPRESS_NOTIFICATIONS = 4096;
export const IS_COMPONENTS_V2 = 32768;

// Permission bits.
const P = {
  CreateInstantInvite: 1n << 0n,
  AddReactions: 1n << 6n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  MentionEveryone: 1n << 17n,
  UseExternalEmojis: 1n << 18n,
  Connect: 1n << 20n,
  Speak: 1n << 21n,
  ChangeNickname: 1n << 26n,
  UseApplicationCommands: 1n << 31n,
  CreatePublicThreads: 1n << 35n,
  SendMessagesInThreads: 1n << 38n,
};
export const MEMBER_PERMISSIONS = (
  P.CreateInstantInvite | P.AddReactions | P.ViewChannel | P.SendMessages | P.EmbedLinks | P.AttachFiles | P.ReadMessageHistory |
  P.UseExternalEmojis | P.Connect | P.Speak | P.ChangeNickname | P.UseApplicationCommands | P.CreatePublicThreads | P.SendMessagesInThreads
).toString();
export const BOT_PERMISSIONS = (BigInt(MEMBER_PERMISSIONS) | P.MentionEveryone).toString();

/** One entry of a 50035 "Invalid Form Body" error. */
export interface Problem {
  path: string;
  code: string;
  message: string;
}

/** Discord's error answer: thrown by route handlers, sent as `status` with `body`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Json,
  ) {
    super(String(body.message));
  }
}

export const notFound = (what: string, code: number): HttpError => new HttpError(404, { message: `Unknown ${what}`, code });

export function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

export function formError(problems: Problem[]): Json {
  const errors: Json = {};
  for (const p of problems) {
    let node = errors;
    for (const k of p.path.split('.').filter(Boolean)) node = node[k] ??= {};
    (node._errors ??= []).push({ code: p.code, message: p.message });
  }
  return { message: 'Invalid Form Body', code: 50035, errors };
}

/** "path: message; …" for a violation line. */
export const describeProblems = (problems: Problem[]): string => problems.map((p) => `${p.path}: ${p.message}`).join('; ');

/** Length in code points, as Discord counts; 0 for a non-string. */
export const strLen = (v: unknown): number => (typeof v === 'string' ? [...v].length : 0);

/** Snowflakes from now, with an increment so ids made in one millisecond still differ and sort. */
export function snowflakes(): () => string {
  let increment = 0;
  return () => (((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (1n << 17n) | BigInt(increment++ & 0xfff)).toString();
}
