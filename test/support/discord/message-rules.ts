/** Discord's checks of a message body (content, embeds, components), as pure functions. */
import { allowedMentionsProblems } from './mentions.js';
import { IS_COMPONENTS_V2, isObj, strLen, type Problem } from './protocol.js';
import type { Json } from './types.js';

function embedProblems(embeds: unknown, path: string): Problem[] {
  const out: Problem[] = [];
  if (embeds === undefined || embeds === null) return out;
  if (!Array.isArray(embeds)) return [{ path, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }];
  if (embeds.length > 10) out.push({ path, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 10 or fewer in length.' });
  let total = 0;
  const max = (v: unknown, n: number, p: string): void => {
    total += strLen(v);
    if (strLen(v) > n) out.push({ path: p, code: 'BASE_TYPE_MAX_LENGTH', message: `Must be ${n} or fewer in length.` });
  };
  embeds.forEach((e: unknown, i) => {
    const p = `${path}.${i}`;
    if (!isObj(e)) return out.push({ path: p, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
    max(e.title, 256, `${p}.title`);
    max(e.description, 4096, `${p}.description`);
    if (isObj(e.footer)) max(e.footer.text, 2048, `${p}.footer.text`);
    if (isObj(e.author)) max(e.author.name, 256, `${p}.author.name`);
    if (e.color !== undefined && e.color !== null && (!Number.isInteger(e.color) || e.color < 0 || e.color > 0xffffff))
      out.push({ path: `${p}.color`, code: 'NUMBER_TYPE_MAX', message: 'Int value should be less than or equal to 16777215.' });
    if (e.fields !== undefined) {
      if (!Array.isArray(e.fields)) return out.push({ path: `${p}.fields`, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' });
      if (e.fields.length > 25) out.push({ path: `${p}.fields`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
      e.fields.forEach((f: unknown, j: number) => {
        const fp = `${p}.fields.${j}`;
        if (!isObj(f)) return out.push({ path: fp, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
        if (!strLen(f.name)) out.push({ path: `${fp}.name`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
        if (!strLen(f.value)) out.push({ path: `${fp}.value`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
        max(f.name, 256, `${fp}.name`);
        max(f.value, 1024, `${fp}.value`);
      });
    }
  });
  if (total > 6000) out.push({ path, code: 'MAX_EMBED_SIZE_EXCEEDED', message: 'Embed size exceeds maximum size of 6000' });
  return out;
}

const SELECTS = new Set([3, 5, 6, 7, 8]);

function componentProblems(components: unknown, path: string, ids: Set<string>): Problem[] {
  const out: Problem[] = [];
  if (components === undefined || components === null) return out;
  if (!Array.isArray(components)) return [{ path, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }];
  if (components.length > 5) out.push({ path, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 5 or fewer in length.' });
  const customId = (c: Json, p: string): void => {
    if (typeof c.custom_id !== 'string' || !c.custom_id) return void out.push({ path: `${p}.custom_id`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
    if (strLen(c.custom_id) > 100) out.push({ path: `${p}.custom_id`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 100 or fewer in length.' });
    if (ids.has(c.custom_id)) out.push({ path: `${p}.custom_id`, code: 'COMPONENT_CUSTOM_ID_DUPLICATED', message: 'Component custom id cannot be duplicated' });
    ids.add(c.custom_id);
  };
  components.forEach((row: unknown, i) => {
    const p = `${path}.${i}`;
    if (!isObj(row) || row.type !== 1) return out.push({ path: `${p}.type`, code: 'UNION_TYPE_CHOICES', message: 'Value of field "type" must be one of (1,).' });
    const inner: unknown[] = Array.isArray(row.components) ? row.components : [];
    if (inner.length === 0) out.push({ path: `${p}.components`, code: 'BASE_TYPE_MIN_LENGTH', message: 'Must be 1 or more in length.' });
    const hasSelect = inner.some((c) => isObj(c) && SELECTS.has(c.type as number));
    if (hasSelect && inner.length > 1) out.push({ path: `${p}.components`, code: 'COMPONENT_LAYOUT_WIDTH_EXCEEDED', message: 'The specified component exceeds the maximum width' });
    if (!hasSelect && inner.length > 5) out.push({ path: `${p}.components`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 5 or fewer in length.' });
    inner.forEach((c, j) => {
      const cp = `${p}.components.${j}`;
      if (!isObj(c)) return out.push({ path: cp, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
      if (c.type === 2) {
        const style = c.style as number;
        if (![1, 2, 3, 4, 5, 6].includes(style)) out.push({ path: `${cp}.style`, code: 'BASE_TYPE_CHOICES', message: 'Value must be one of {1, 2, 3, 4, 5, 6}.' });
        if (style === 5) {
          if (typeof c.url !== 'string' || !c.url) out.push({ path: `${cp}.url`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
          if (c.custom_id !== undefined) out.push({ path: `${cp}.custom_id`, code: 'BUTTON_COMPONENT_CUSTOM_ID_LINK', message: 'A custom id cannot be used with a link button' });
        } else if (style === 6) {
          if (!c.sku_id) out.push({ path: `${cp}.sku_id`, code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
        } else {
          customId(c, cp);
          if (!strLen(c.label) && !c.emoji) out.push({ path: `${cp}.label`, code: 'BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED', message: 'A label or emoji is required' });
        }
        if (strLen(c.label) > 80) out.push({ path: `${cp}.label`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 80 or fewer in length.' });
      } else if (SELECTS.has(c.type as number)) {
        customId(c, cp);
        if (strLen(c.placeholder) > 150) out.push({ path: `${cp}.placeholder`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 150 or fewer in length.' });
        if (c.type === 3) {
          const options: unknown[] = Array.isArray(c.options) ? c.options : [];
          if (options.length < 1 || options.length > 25) out.push({ path: `${cp}.options`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 25 in length.' });
          options.forEach((o, k) => {
            if (!isObj(o) || !strLen(o.label) || strLen(o.label) > 100) out.push({ path: `${cp}.options.${k}.label`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
            if (!isObj(o) || !strLen(o.value) || strLen(o.value) > 100) out.push({ path: `${cp}.options.${k}.value`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
          });
        }
      } else {
        out.push({ path: `${cp}.type`, code: 'UNION_TYPE_CHOICES', message: 'Value of field "type" must be one of (2, 3, 5, 6, 7, 8).' });
      }
    });
  });
  return out;
}

export const hasAny = (m: Json): boolean =>
  strLen(m.content) > 0 || (Array.isArray(m.embeds) && m.embeds.length > 0) || (Array.isArray(m.components) && m.components.length > 0) ||
  (Array.isArray(m.attachments) && m.attachments.length > 0) || (Array.isArray(m.sticker_ids) && m.sticker_ids.length > 0) || isObj(m.poll);

/** Problems of a message body as sent (create or edit); `path` prefixes the error keys ("data." for callbacks). */
export function messageProblems(body: Json, path = ''): Problem[] {
  const out: Problem[] = [];
  if (body.content !== undefined && body.content !== null && typeof body.content !== 'string')
    out.push({ path: `${path}content`, code: 'BASE_TYPE_STRING', message: 'Must be a string.' });
  if (strLen(body.content) > 2000) out.push({ path: `${path}content`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' });
  const flags = Number(body.flags ?? 0);
  if (flags & IS_COMPONENTS_V2) {
    if (strLen(body.content) || (Array.isArray(body.embeds) && body.embeds.length))
      out.push({ path: `${path}content`, code: 'MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2', message: 'The \'content\' and \'embeds\' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2' });
  } else {
    out.push(...componentProblems(body.components, `${path}components`, new Set()));
  }
  out.push(...embedProblems(body.embeds, `${path}embeds`));
  out.push(...allowedMentionsProblems(body.allowed_mentions, `${path}allowed_mentions`));
  return out;
}

/** Problems of an interaction callback's `data` for callback types 4/7 (messages), 8 (autocomplete) and 9 (modal). */
export function callbackProblems(type: number, data: Json | undefined): Problem[] {
  const problems: Problem[] = [];
  if (type === 4 || type === 7) return messageProblems(data ?? {}, 'data.');
  if (type === 8) {
    const choices = data?.choices;
    if (!Array.isArray(choices)) problems.push({ path: 'data.choices', code: 'BASE_TYPE_REQUIRED', message: 'This field is required' });
    else {
      if (choices.length > 25) problems.push({ path: 'data.choices', code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
      choices.forEach((c: unknown, i) => {
        if (!isObj(c) || !strLen(c.name) || strLen(c.name) > 100) problems.push({ path: `data.choices.${i}.name`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
        if (!isObj(c) || !(typeof c.value === 'number' || (typeof c.value === 'string' && strLen(c.value) <= 100)))
          problems.push({ path: `data.choices.${i}.value`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
      });
    }
  } else if (type === 9) {
    if (!data || !strLen(data.custom_id) || strLen(data.custom_id) > 100) problems.push({ path: 'data.custom_id', code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
    if (!data || !strLen(data.title) || strLen(data.title) > 45) problems.push({ path: 'data.title', code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 45 in length.' });
    if (!data || !Array.isArray(data.components) || data.components.length < 1 || data.components.length > 5)
      problems.push({ path: 'data.components', code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 5 in length.' });
  }
  return problems;
}
