/** A chat-agnostic answer. Adapters render it as Block Kit, embeds or terminal text. */
export type Tone = 'info' | 'success' | 'warning' | 'error';

export interface Field {
  label: string;
  value: string;
}

/** A button: clicking it runs `command` (same grammar as typed text) as the clicking user. */
export interface Action {
  id: string;
  label: string;
  command: string;
  style?: 'primary' | 'danger';
  /** Destructive actions ask this question before running. */
  confirm?: string;
}

export type Block =
  | { type: 'text'; text: string }
  | { type: 'code'; text: string }
  | { type: 'fields'; fields: Field[] }
  | { type: 'table'; columns: string[]; rows: string[][] }
  | { type: 'section'; heading: string; tone?: Tone; blocks: Block[] }
  | { type: 'actions'; actions: Action[] };

/**
 * Why a command was not done, for code to switch on (queue, audit, metrics, "Queue it"); the
 * title and text are for people and may change. `failed` and `internal` are errors (the work was
 * tried and broke); every other code is a refusal (nothing was tried, nothing changed).
 */
export const REFUSAL_CODES = [
  'invalid', // the input does not parse or a value is out of range
  'not-found', // no such container, host, user, reservation, job, queued run, link code
  'not-owner', // someone else's container, reservation or queued run
  'not-admin', // admins only
  'not-allowed', // a value policy forbids (an image off the allow-list)
  'conflict', // the state does not allow it now (name taken, already stopped, no longer waiting)
  'still-starting', // the container is being launched
  'no-gpus', // no GPUs fit the request now
  'over-quota', // maxGpus or maxHours
  'over-gpu-hours', // the weekly GPU-hours (gpuHoursPerWeek) are used up
  'host-unavailable', // the host is down, drained or no longer configured
  'rate-limited', // too many requests
  'unavailable', // gpubot is restarting, or the command is not in this deployment
  'failed', // a host or Docker operation was tried and failed ("Could not ...")
  'internal', // a bug or a database away ("Something went wrong")
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

export interface Reply {
  tone: Tone;
  title: string;
  blocks: Block[];
  /** personal: only the asker sees it (ephemeral/DM); channel: useful to the whole team. */
  visibility: 'personal' | 'channel';
  /** Set on every refusal or failure (tone "error"), never on success. */
  code?: RefusalCode;
  /** A picture (status --chart, usage --chart): uploaded where the chat can; the blocks are its text fallback. */
  image?: ReplyImage;
}

export interface ReplyImage {
  png: Uint8Array;
  filename: string;
  /** Says what the picture shows, for screen readers and chats without images. */
  alt: string;
}

export const isFailure = (reply: Reply): boolean => reply.tone === 'error';

/** The work was tried and broke, as opposed to refused before anything changed. */
export const isError = (code: RefusalCode): boolean => code === 'failed' || code === 'internal';

export function reply(tone: Tone, title: string, blocks: Block[] = [], visibility: Reply['visibility'] = 'personal'): Reply {
  return { tone, title, blocks, visibility };
}

/** A refusal: its code for code to switch on, its title and detail for people. */
export const refuse = (code: RefusalCode, title: string, detail?: string, blocks: Block[] = []): Reply => ({
  ...reply('error', title, [...(detail ? [{ type: 'text' as const, text: detail }] : []), ...blocks]),
  code,
});

/** Progress updates for slow work (image pulls, container start); adapters edit the message. */
export type ProgressSink = (text: string) => void | Promise<void>;
