import {
  SlashCommandBuilder,
  type SlashCommandBooleanOption,
  type SlashCommandIntegerOption,
  type SlashCommandNumberOption,
  type SlashCommandStringOption,
  type SlashCommandSubcommandBuilder,
} from 'discord.js';
import { catalogue, tokenize, type ArgSpec, type CatalogueEntry, type OptionSpec, type ValueInfo } from '../../core/grammar.js';
import type { ChoiceSource } from '../../core/port.js';
import { InputError, printable } from '../../core/validate.js';

/** Values known when /gpu is registered (e.g. the job names): offered as fixed choices, not autocomplete. */
export type FixedChoices = Partial<Record<ChoiceSource, string[]>>;

/** One Discord option of a subcommand, as the catalogue describes it. */
interface SlashValue extends ValueInfo {
  name: string;
  boolean?: boolean;
}

const clip = (s: string, n = 100): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** Free text standing in for positionals a spec has not named (so a new command works at once). */
const FREE_ARGS = 'args';
/** The text after "--" for commands that run one. */
const COMMAND = 'command';

/** The positionals of an entry as named values; a spec without names gets one free-text value. */
function argsOf(entry: CatalogueEntry): ArgSpec[] {
  if (entry.args) return entry.args;
  const [min, max] = entry.command.positionals;
  const taken = entry.words.length - 1; // an action's name is the first positional
  if (max <= taken) return [];
  return [{ name: FREE_ARGS, required: min > taken, maxLength: 1000, description: `Arguments, as typed after "${entry.words.join(' ')}"` }];
}

/** Every Discord option of one subcommand: required ones first, as Discord demands. */
export function slashValues(entry: CatalogueEntry): SlashValue[] {
  const values: SlashValue[] = [
    ...argsOf(entry),
    ...Object.entries(entry.options).map(([name, o]: [string, OptionSpec]) => ({ ...o, name, boolean: o.type === 'boolean', description: o.description ?? `--${name}` })),
  ];
  if (entry.command.takesCommand && !values.some((v) => v.name === COMMAND))
    values.push({ name: COMMAND, maxLength: 4000, description: 'Command to run (empty: the container idles)' });
  return [...values.filter((v) => v.required), ...values.filter((v) => !v.required)].slice(0, 25);
}

function addValue(s: SlashCommandSubcommandBuilder, v: SlashValue, fixed: FixedChoices, limit: number): SlashCommandSubcommandBuilder {
  const common = <O extends SlashCommandStringOption | SlashCommandIntegerOption | SlashCommandNumberOption | SlashCommandBooleanOption>(o: O): O =>
    o
      .setName(v.name)
      .setDescription(clip(v.description ?? v.name, limit))
      .setRequired(v.required === true) as O;
  if (v.boolean) return s.addBooleanOption((o) => common(o));
  const list = v.complete ? fixed[v.complete] : undefined;
  const numeric = <O extends SlashCommandIntegerOption | SlashCommandNumberOption>(o: O): O => {
    if (v.min !== undefined) o.setMinValue(v.min);
    if (v.max !== undefined) o.setMaxValue(v.max);
    return o;
  };
  if (v.kind === 'integer') return s.addIntegerOption((o) => numeric(common(o)));
  if (v.kind === 'number') return s.addNumberOption((o) => numeric(common(o)));
  return s.addStringOption((o) => {
    common(o);
    if (v.maxLength !== undefined) o.setMaxLength(v.maxLength);
    if (list) o.addChoices(...list.slice(0, 25).map((value) => ({ name: clip(value), value })));
    else if (v.complete) o.setAutocomplete(true);
    return o;
  });
}

const subcommand = (s: SlashCommandSubcommandBuilder, name: string, entry: CatalogueEntry, fixed: FixedChoices, limit: number) =>
  slashValues(entry).reduce((b, v) => addValue(b, v, fixed, limit), s.setName(name).setDescription(clip(entry.summary, limit)));

/** Discord refuses a command whose names, descriptions and choices add up to more than 4000 characters. */
const MAX_COMMAND_CHARS = 4000;

/** The characters Discord counts toward that limit. */
function commandChars(json: unknown): number {
  if (Array.isArray(json)) return json.reduce((n: number, x) => n + commandChars(x), 0);
  if (json === null || typeof json !== 'object') return 0;
  const o = json as Record<string, unknown>;
  const text = (k: string) => (typeof o[k] === 'string' ? (o[k] as string).length : 0);
  const value = typeof o['value'] === 'string' ? (o['value'] as string).length : 0;
  return text('name') + text('description') + value + commandChars(o['options']) + commandChars(o['choices']);
}

/**
 * `/gpu` generated from the command catalogue: a subcommand per command, a subcommand group per
 * command with actions (`/gpu admin drain`), typed options from the specs.
 */
export function gpuCommand(fixed: FixedChoices = {}): SlashCommandBuilder {
  // Descriptions are clipped shorter as the catalogue grows, so /gpu always fits Discord's limit.
  for (const limit of [100, 80, 64, 50, 40, 32]) {
    const b = buildGpuCommand(fixed, limit);
    if (commandChars(b.toJSON()) <= MAX_COMMAND_CHARS) return b;
  }
  return buildGpuCommand(fixed, 24);
}

function buildGpuCommand(fixed: FixedChoices, limit: number): SlashCommandBuilder {
  const b = new SlashCommandBuilder().setName('gpu').setDescription('GPUs on the shared servers').setDMPermission(false);
  const entries = catalogue();
  for (const entry of entries) {
    const [name, action] = entry.words as [string, string | undefined];
    if (action === undefined) {
      b.addSubcommand((s) => subcommand(s, name, entry, fixed, limit));
    } else if (entry === entries.find((e) => e.words[0] === name)) {
      b.addSubcommandGroup((g) => {
        g.setName(name).setDescription(clip(entry.command.summary, limit));
        for (const e of entries.filter((x) => x.words[0] === name)) g.addSubcommand((s) => subcommand(s, e.words[1]!, e, fixed, limit));
        return g;
      });
    }
  }
  return b;
}

/** What commandWords reads of an interaction (discord.js's option resolver has it). */
export interface SlashOptions {
  getSubcommandGroup(required: false): string | null;
  getSubcommand(): string;
  get(name: string): { value?: string | number | boolean | null } | null;
}

/** The catalogue entry a `/gpu` interaction names. */
export function slashEntry(o: SlashOptions): CatalogueEntry | undefined {
  const group = o.getSubcommandGroup(false);
  const words = group ? [group, o.getSubcommand()] : [o.getSubcommand()];
  return catalogue().find((e) => e.words.length === words.length && e.words.every((w, i) => w === words[i]));
}

/** The options of a `/gpu` interaction as grammar words, so one parser and one set of rules apply. */
export function commandWords(o: SlashOptions): string[] {
  const entry = slashEntry(o);
  if (!entry) throw new InputError(`unknown command "${printable(o.getSubcommand())}"; try "help"`);
  const words = [...entry.words];
  const value = (name: string) => {
    const v = o.get(name)?.value;
    return v === null || v === undefined || v === '' ? undefined : v;
  };
  for (const arg of argsOf(entry)) {
    const v = value(arg.name);
    if (v === undefined) continue;
    if (arg.name === FREE_ARGS && !entry.args) words.push(...tokenize(String(v)));
    else words.push(...(arg.prefix ?? []), String(v));
  }
  for (const [name, option] of Object.entries(entry.options)) {
    const v = value(name);
    if (v === undefined) continue;
    // "--name=value": a value that starts with "-" stays a value, and meets the same validation.
    if (option.type === 'boolean') {
      if (v === true) words.push(`--${name}`);
    } else words.push(`--${name}=${String(v)}`);
  }
  const cmd = entry.command.takesCommand ? value(COMMAND) : undefined;
  if (typeof cmd === 'string' && cmd.trim()) words.push('--', ...tokenize(cmd));
  return words;
}

/** Where the focused option's suggestions come from, per the catalogue. */
export function completionSource(o: SlashOptions, focused: string): ChoiceSource | undefined {
  const entry = slashEntry(o);
  return entry ? slashValues(entry).find((v) => v.name === focused)?.complete : undefined;
}
