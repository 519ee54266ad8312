import type { App } from '../../app.js';
import { allowedImagesOnHosts } from '../../hosts/images.js';
import { defaultHours } from '../../core/policy/quota.js';
import { isFree } from '../../core/commands/status.js';
import type { SlackBlock } from './blocks.js';
import { withTimeout } from '../../hosts/errors.js';

export const RUN_MODAL_ID = 'gpubot_run';

const option = (text: string, value: string) => ({ text: { type: 'plain_text', text: text.slice(0, 75) }, value });
const input = (blockId: string, label: string, element: SlackBlock, optional = false): SlackBlock => ({ type: 'input', block_id: blockId, label: { type: 'plain_text', text: label }, element: { action_id: 'value', ...element }, optional });

/**
 * The launch form: the same fields as `run`, filled with what the cluster offers now. Built within
 * `budgetMs` (Slack's trigger id lives 3 s): a host that has not answered by then is left out.
 */
export async function runModal(app: App, budgetMs = 1500): Promise<SlackBlock> {
  const { config } = app.options;
  const within = <T>(work: Promise<T>, fallback: T) => withTimeout(work, budgetMs, 'the form').catch(() => fallback);
  const [snapshots, images] = await Promise.all([within(app.pool.recentSnapshot(5000), []), allowedImagesOnHosts(app.pool.all(), config.images, budgetMs)]);
  const hosts = snapshots.filter((s) => s.state === 'up' && s.gpus).map((s) => ({ name: s.name, free: s.gpus!.filter(isFree).length }));
  const maxGpus = Math.max(1, ...hosts.map((h) => h.free));
  return {
    type: 'modal',
    callback_id: RUN_MODAL_ID,
    title: { type: 'plain_text', text: 'Run a container' },
    submit: { type: 'plain_text', text: 'Run' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      input('image', 'Image', { type: 'static_select', options: images.slice(0, 100).map((i) => option(i, i)), initial_option: option(config.images.default, config.images.default) }),
      input('gpus', 'GPUs', { type: 'static_select', options: Array.from({ length: Math.min(maxGpus, 16) }, (_, i) => option(String(i + 1), String(i + 1))), initial_option: option('1', '1') }),
      input('host', 'Host', { type: 'static_select', options: [option('any host', 'any'), ...hosts.filter((h) => h.free > 0).map((h) => option(`${h.name} (${h.free} free)`, h.name))], initial_option: option('any host', 'any') }),
      input('hours', 'Hours', { type: 'plain_text_input', initial_value: String(defaultHours(config.quotas.default)) }),
      input('name', 'Name', { type: 'plain_text_input', placeholder: { type: 'plain_text', text: 'exp1' } }, true),
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
  const words = ['run', '--gpus', get('gpus') || '1', '--image', get('image')];
  if (get('host') && get('host') !== 'any') words.push('--host', get('host'));
  if (get('hours')) words.push('--hours', get('hours'));
  if (get('name')) words.push('--name', get('name'));
  if (get('command')) words.push('--', ...tokenize(get('command')));
  return words;
}
