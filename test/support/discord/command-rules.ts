/** Discord's checks of application command registrations (names, options, choices, sizes), as pure functions. */
import { isObj, strLen, type Problem } from './protocol.js';

const NAME_RE = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

function optionProblems(options: unknown, path: string, level: 'command' | 'group' | 'subcommand'): { problems: Problem[]; chars: number } {
  const out: Problem[] = [];
  let chars = 0;
  if (options === undefined || options === null) return { problems: out, chars };
  if (!Array.isArray(options)) return { problems: [{ path, code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }], chars };
  if (options.length > 25) out.push({ path, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
  const names = new Set<string>();
  const nested = options.filter((o) => isObj(o) && (o.type === 1 || o.type === 2)).length;
  if (nested && nested !== options.length)
    out.push({ path, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-command and sub-command group option types are mutually exclusive to all other types' });
  let sawOptional = false;
  options.forEach((o: unknown, i) => {
    const p = `${path}.${i}`;
    if (!isObj(o)) return out.push({ path: p, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
    const type = o.type as number;
    if (!Number.isInteger(type) || type < 1 || type > 11) out.push({ path: `${p}.type`, code: 'BASE_TYPE_CHOICES', message: 'Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.' });
    if (typeof o.name !== 'string' || !NAME_RE.test(o.name) || o.name !== o.name.toLowerCase())
      out.push({ path: `${p}.name`, code: 'APPLICATION_COMMAND_INVALID_NAME', message: 'Command name is invalid' });
    else if (names.has(o.name)) out.push({ path: `${p}.name`, code: 'APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS', message: 'Option name already exists' });
    else names.add(o.name);
    if (!strLen(o.description) || strLen(o.description) > 100) out.push({ path: `${p}.description`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
    chars += strLen(o.name) + strLen(o.description);
    if (type === 2) {
      if (level !== 'command') out.push({ path: `${p}.type`, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-command groups can only be nested in commands' });
      const sub = optionProblems(o.options, `${p}.options`, 'group');
      out.push(...sub.problems);
      chars += sub.chars;
      if (Array.isArray(o.options) && o.options.some((x: unknown) => !isObj(x) || x.type !== 1))
        out.push({ path: `${p}.options`, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-command groups may only contain sub-commands' });
      return;
    }
    if (type === 1) {
      if (level === 'subcommand') out.push({ path: `${p}.type`, code: 'APPLICATION_COMMAND_OPTIONS_TYPE_INVALID', message: 'Sub-commands cannot be nested in sub-commands' });
      const sub = optionProblems(o.options, `${p}.options`, 'subcommand');
      out.push(...sub.problems);
      chars += sub.chars;
      return;
    }
    if (o.required === true && sawOptional) out.push({ path: `${p}.required`, code: 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', message: 'Required options must be placed before non-required options' });
    if (o.required !== true) sawOptional = true;
    const choices: unknown[] | undefined = Array.isArray(o.choices) ? o.choices : undefined;
    if (choices) {
      if (![3, 4, 10].includes(type)) out.push({ path: `${p}.choices`, code: 'APPLICATION_COMMAND_OPTION_CHOICES_INVALID', message: 'Choices are only allowed for string, integer and number options' });
      if (choices.length > 25) out.push({ path: `${p}.choices`, code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 25 or fewer in length.' });
      choices.forEach((c, k) => {
        if (!isObj(c) || !strLen(c.name) || strLen(c.name) > 100) out.push({ path: `${p}.choices.${k}.name`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
        if (isObj(c)) {
          chars += strLen(c.name) + String(c.value ?? '').length;
          if (type === 3 ? typeof c.value !== 'string' || strLen(c.value) > 100 : typeof c.value !== 'number')
            out.push({ path: `${p}.choices.${k}.value`, code: 'APPLICATION_COMMAND_OPTION_CHOICE_VALUE_INVALID', message: 'Invalid choice value' });
        }
      });
    }
    if (o.autocomplete === true) {
      if (![3, 4, 10].includes(type)) out.push({ path: `${p}.autocomplete`, code: 'APPLICATION_COMMAND_AUTOCOMPLETE_INVALID', message: 'Autocomplete is only allowed for string, integer and number options' });
      if (choices?.length) out.push({ path: `${p}.autocomplete`, code: 'APPLICATION_COMMAND_AUTOCOMPLETE_CHOICES_INVALID', message: 'Autocomplete cannot be used with choices' });
    }
    for (const k of ['min_value', 'max_value'] as const)
      if (o[k] !== undefined && ![4, 10].includes(type)) out.push({ path: `${p}.${k}`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: `${k} is only allowed for integer and number options` });
    if (typeof o.min_value === 'number' && typeof o.max_value === 'number' && o.min_value > o.max_value)
      out.push({ path: `${p}.min_value`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: 'min_value must be less than or equal to max_value' });
    for (const k of ['min_length', 'max_length'] as const) {
      if (o[k] === undefined) continue;
      if (type !== 3) out.push({ path: `${p}.${k}`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: `${k} is only allowed for string options` });
      const lo = k === 'min_length' ? 0 : 1;
      if (!Number.isInteger(o[k]) || o[k] < lo || o[k] > 6000) out.push({ path: `${p}.${k}`, code: 'NUMBER_TYPE_OUT_OF_RANGE', message: `Must be between ${lo} and 6000.` });
    }
    if (o.channel_types !== undefined && type !== 7) out.push({ path: `${p}.channel_types`, code: 'APPLICATION_COMMAND_OPTION_INVALID', message: 'channel_types is only allowed for channel options' });
  });
  return { problems: out, chars };
}

export function commandProblems(commands: unknown): Problem[] {
  if (!Array.isArray(commands)) return [{ path: '', code: 'LIST_TYPE_CONVERT', message: 'Only iterables may be used in a ListType' }];
  const out: Problem[] = [];
  const seen = new Set<string>();
  const counts: Record<number, number> = {};
  commands.forEach((c: unknown, i) => {
    const p = String(i);
    if (!isObj(c)) return out.push({ path: p, code: 'MODEL_TYPE_CONVERT', message: 'Only dictionaries may be used in a ModelType' });
    const type = (c.type as number | undefined) ?? 1;
    counts[type] = (counts[type] ?? 0) + 1;
    if (typeof c.name !== 'string' || !NAME_RE.test(type === 1 ? c.name : c.name.replace(/ /g, '_')) || (type === 1 && c.name !== c.name.toLowerCase()))
      out.push({ path: `${p}.name`, code: 'APPLICATION_COMMAND_INVALID_NAME', message: 'Command name is invalid' });
    const key = `${type}:${String(c.name)}`;
    if (seen.has(key)) out.push({ path: `${p}.name`, code: 'APPLICATION_COMMANDS_DUPLICATE_NAME', message: `Application command names must be unique` });
    seen.add(key);
    if (type === 1) {
      if (!strLen(c.description) || strLen(c.description) > 100) out.push({ path: `${p}.description`, code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' });
      const opts = optionProblems(c.options, `${p}.options`, 'command');
      out.push(...opts.problems);
      const chars = strLen(c.name) + strLen(c.description) + opts.chars;
      if (chars > 4000) out.push({ path: p, code: 'APPLICATION_COMMAND_TOO_LARGE', message: 'Command exceeds maximum size (4000)' });
    } else if (strLen(c.description)) {
      out.push({ path: `${p}.description`, code: 'APPLICATION_COMMAND_DESCRIPTION_INVALID', message: 'Context menu commands cannot have description' });
    } else if (c.options !== undefined && Array.isArray(c.options) && c.options.length) {
      out.push({ path: `${p}.options`, code: 'APPLICATION_COMMAND_OPTIONS_INVALID', message: 'Context menu commands cannot have options' });
    }
  });
  if ((counts[1] ?? 0) > 100) out.push({ path: '', code: 'APPLICATION_COMMANDS_TOO_MANY', message: 'Maximum number of application commands reached (100)' });
  for (const t of [2, 3]) if ((counts[t] ?? 0) > 15) out.push({ path: '', code: 'APPLICATION_COMMANDS_TOO_MANY', message: 'Maximum number of context menu commands reached (15)' });
  return out;
}
