import type { Reply } from '../../core/reply.js';
import type { SlackBlock } from './blocks.js';

export const KEY_MODAL_ID = 'gpubot_key_add';
/** The input's block id: what a validation error is shown under. */
export const KEY_BLOCK = 'key';

/** The form `key add` (no key given) opens on Slack: one box to paste a public key line into. */
export function keyModal(): SlackBlock {
  return {
    type: 'modal',
    callback_id: KEY_MODAL_ID,
    title: { type: 'plain_text', text: 'Add an SSH key' },
    submit: { type: 'plain_text', text: 'Add' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      {
        type: 'input',
        block_id: KEY_BLOCK,
        label: { type: 'plain_text', text: 'Public key' },
        hint: { type: 'plain_text', text: 'The contents of ~/.ssh/id_ed25519.pub (ed25519, ecdsa, or rsa of 3072 bits or more). Never the private key.' },
        element: { type: 'plain_text_input', action_id: 'value', multiline: true, max_length: 3000, placeholder: { type: 'plain_text', text: 'ssh-ed25519 AAAA... you@laptop' } },
      },
    ],
  };
}

type Values = Record<string, Record<string, { value?: string | null }>>;

/** The submitted form as `key add` words: the same checks as the typed command. */
export const keyWords = (values: Values): string[] => ['key', 'add', ...(values[KEY_BLOCK]?.['value']?.value ?? '').trim().split(/\s+/).filter(Boolean)];

/** A refusal as the one line Slack shows under the field. */
export function fieldError(reply: Reply): string {
  const detail = reply.blocks.find((b) => b.type === 'text');
  return [reply.title, detail && 'text' in detail ? detail.text : ''].filter(Boolean).join(': ');
}
