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

export interface Reply {
  tone: Tone;
  title: string;
  blocks: Block[];
  /** personal: only the asker sees it (ephemeral/DM); channel: useful to the whole team. */
  visibility: 'personal' | 'channel';
}

export const isFailure = (reply: Reply): boolean => reply.tone === 'error';

export function reply(tone: Tone, title: string, blocks: Block[] = [], visibility: Reply['visibility'] = 'personal'): Reply {
  return { tone, title, blocks, visibility };
}

export const refuse = (title: string, detail?: string): Reply => reply('error', title, detail ? [{ type: 'text', text: detail }] : []);

/** Progress updates for slow work (image pulls, container start); adapters edit the message. */
export type ProgressSink = (text: string) => void | Promise<void>;
