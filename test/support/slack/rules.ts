/** Slack's limits and deadlines that the stand-in enforces, as pure checks. */
import { isObj } from '../standin-http.js';

export { isObj };

/** An envelope or an HTTP request must be acknowledged within this. */
export const ACK_DEADLINE_MS = 3000;
/** A trigger_id works once and only this long after it was issued. */
export const TRIGGER_TTL_MS = 3000;
/** A response_url works this long. */
export const RESPONSE_URL_TTL_MS = 30 * 60_000;
export const MAX_TEXT_LENGTH = 40_000;

/** Arguments Slack decodes as JSON when they arrive form-encoded (web-api JSON-stringifies non-scalars). */
export const JSON_ARGS = new Set(['blocks', 'attachments', 'view', 'metadata', 'unfurls', 'user_auth_blocks', 'options', 'option_groups', 'profile', 'elements', 'chunks', 'files']);

/** A form value as Slack reads it: strings as they are, numbers and booleans as text. */
export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** Slack's invalid_blocks check, for the limits most likely to bite a chat bot. */
export function blocksProblem(blocks: unknown, max: number): string | undefined {
  if (blocks === undefined) return undefined;
  if (!Array.isArray(blocks)) return 'blocks is not an array';
  if (blocks.length > max) return `more than ${max} blocks (${blocks.length})`;
  for (const [i, b] of blocks.entries()) {
    if (!isObj(b) || typeof b.type !== 'string') return `block ${i} has no type`;
    const text = isObj(b.text) ? str(b.text.text) : undefined;
    if (b.type === 'section' && text !== undefined && text.length > 3000) return `block ${i}: section text longer than 3000 (${text.length})`;
    if (b.type === 'header' && text !== undefined && text.length > 150) return `block ${i}: header text longer than 150 (${text.length})`;
    if (b.type === 'section' && Array.isArray(b.fields) && b.fields.length > 10) return `block ${i}: more than 10 fields`;
    if (b.type === 'actions' && Array.isArray(b.elements) && b.elements.length > 25) return `block ${i}: more than 25 elements`;
  }
  return undefined;
}

/** What views.open/push/update would reject in a view. */
export function viewProblem(view: unknown): string | undefined {
  if (!isObj(view)) return 'view is missing or not an object';
  if (view.type !== 'modal' && view.type !== 'home') return `unsupported view type ${String(view.type)}`;
  const title = isObj(view.title) ? str(view.title.text) : undefined;
  if (view.type === 'modal' && title === undefined) return 'modal has no title';
  if (title !== undefined && title.length > 24) return `title longer than 24 characters (${title.length})`;
  const meta = str(view.private_metadata);
  if (meta !== undefined && meta.length > 3000) return `private_metadata longer than 3000 (${meta.length})`;
  const cb = str(view.callback_id);
  if (cb !== undefined && cb.length > 255) return 'callback_id longer than 255';
  return blocksProblem(view.blocks ?? [], 100);
}

export const apiError = (error: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ ok: false, error, ...extra });
export const invalidArgs = (msg: string): Record<string, unknown> => apiError('invalid_arguments', { response_metadata: { messages: [`[ERROR] ${msg}`] } });
