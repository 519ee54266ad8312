import { commandSpec, type OptionSpec } from '../../core/grammar.js';
import type { ChatIdentity, ChatPort, Choice } from '../../core/port.js';
import type { SlackBlock } from './blocks.js';

export const RUN_MODAL_ID = 'gpubot_run';
/** The `run` options the form asks for, in its order; the command after "--" comes last. */
const FORM_OPTIONS = ['image', 'gpus', 'host', 'hours', 'name'] as const;
const ANY_HOST = 'any';

const option = (text: string, value: string) => ({ text: { type: 'plain_text', text: text.slice(0, 75) }, value });
const input = (blockId: string, label: string, element: SlackBlock, optional = false): SlackBlock => ({
  type: 'input',
  block_id: blockId,
  label: { type: 'plain_text', text: label.slice(0, 2000) },
  element: { action_id: 'value', ...element },
  optional,
});
const runOption = (name: string): OptionSpec => commandSpec('run')!.options[name]!;
/** A form label from the catalogue's description: "How many GPUs (default 1)" -> "How many GPUs". */
const label = (name: string): string => (runOption(name).description ?? name).replace(/\s*\(.*\)$/, '');

/**
 * The launch form: the same fields as `run`, described by its spec in the catalogue, with the
 * choices the catalogue names (allowed images, hosts with free GPUs) as they are now. Built within
 * `budgetMs` (Slack's trigger id lives 3 s): a host that has not answered by then is left out.
 */
export async function runModal(port: ChatPort, who: ChatIdentity, budgetMs = 1500): Promise<SlackBlock> {
  const defaults = port.launchDefaults();
  const sources = FORM_OPTIONS.map((name) => runOption(name).complete);
  const lists = await Promise.all(sources.map((s) => (s ? port.choices(s, who, budgetMs) : Promise.resolve<Choice[]>([]))));
  const choicesOf = (name: (typeof FORM_OPTIONS)[number]) => lists[FORM_OPTIONS.indexOf(name)]!;
  const hosts = choicesOf('host');
  const gpus = runOption('gpus');
  const maxGpus = Math.min(Math.max(1, ...hosts.map((h) => h.free ?? 0)), gpus.max ?? 16, 16);
  const fields: Record<(typeof FORM_OPTIONS)[number], SlackBlock> = {
    image: input('image', label('image'), {
      type: 'static_select',
      options: choicesOf('image')
        .slice(0, 100)
        .map((c) => option(c.label, c.value)),
      initial_option: option(defaults.image, defaults.image),
    }),
    gpus: input('gpus', label('gpus'), {
      type: 'static_select',
      options: Array.from({ length: maxGpus }, (_, i) => option(String(i + 1), String(i + 1))),
      initial_option: option('1', '1'),
    }),
    host: input('host', label('host'), {
      type: 'static_select',
      options: [option('any host', ANY_HOST), ...hosts.slice(0, 99).map((h) => option(h.label, h.value))],
      initial_option: option('any host', ANY_HOST),
    }),
    hours: input('hours', label('hours'), { type: 'plain_text_input', initial_value: String(defaults.hours) }),
    name: input('name', label('name'), { type: 'plain_text_input', placeholder: { type: 'plain_text', text: 'exp1' } }, true),
  };
  return {
    type: 'modal',
    callback_id: RUN_MODAL_ID,
    title: { type: 'plain_text', text: 'Run a container' },
    submit: { type: 'plain_text', text: 'Run' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      ...FORM_OPTIONS.map((name) => fields[name]),
      input('command', 'Command', { type: 'plain_text_input', placeholder: { type: 'plain_text', text: 'python train.py --lr 3e-4 (empty: the container idles)' } }, true),
    ],
  };
}

type Values = Record<string, Record<string, { value?: string | null; selected_option?: { value: string } | null }>>;

/** The submitted form as `run` words: the same grammar and rules as the typed command. */
export function runWords(values: Values, tokenize: (text: string) => string[]): string[] {
  const get = (block: string) => {
    const v = values[block]?.value;
    return (v?.selected_option?.value ?? v?.value ?? '').trim();
  };
  const words = ['run'];
  for (const name of FORM_OPTIONS) {
    const value = name === 'gpus' ? get(name) || '1' : get(name);
    if (name === 'host' && value === ANY_HOST) continue;
    // An image is always sent, even empty, so an emptied select is refused rather than defaulted.
    if (value || name === 'image') words.push(`--${name}`, value);
  }
  if (get('command')) words.push('--', ...tokenize(get('command')));
  return words;
}
