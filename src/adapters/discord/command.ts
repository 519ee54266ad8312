import { SlashCommandBuilder, type ChatInputCommandInteraction, type SlashCommandSubcommandBuilder } from 'discord.js';
import { commandSpec, tokenize } from '../../core/grammar.js';
import { jobs } from '../../jobs/index.js';

const describe = (name: string): string => (commandSpec(name)?.summary ?? name).slice(0, 100);
const sub = (b: SlashCommandBuilder, name: string, build: (s: SlashCommandSubcommandBuilder) => SlashCommandSubcommandBuilder = (s) => s) =>
  b.addSubcommand((s) => build(s.setName(name).setDescription(describe(name))));

const nameOption = (s: SlashCommandSubcommandBuilder) => s.addStringOption((o) => o.setName('name').setDescription('Container name').setRequired(true).setAutocomplete(true).setMaxLength(63));
const hostOption = (s: SlashCommandSubcommandBuilder, what = 'Host (default: the best fit)') => s.addStringOption((o) => o.setName('host').setDescription(what).setAutocomplete(true).setMaxLength(63));

/** `/gpu` with native subcommands and typed options: the same commands as the text grammar. */
export function gpuCommand(jobNames: string[] = jobs.map((j) => j.name)): SlashCommandBuilder {
  const b = new SlashCommandBuilder().setName('gpu').setDescription('GPUs on the shared servers').setDMPermission(false);
  sub(b, 'status', (s) => hostOption(s, 'Only this host'));
  sub(b, 'run', (s) =>
    hostOption(
      s
        .addIntegerOption((o) => o.setName('gpus').setDescription('How many GPUs (default 1)').setMinValue(1).setMaxValue(64))
        .addStringOption((o) => o.setName('image').setDescription('Image (default from the config)').setAutocomplete(true).setMaxLength(255)),
    )
      .addNumberOption((o) => o.setName('hours').setDescription('How long (default 24, at most your maxHours)').setMinValue(0.01).setMaxValue(8760))
      .addStringOption((o) => o.setName('name').setDescription('Container name').setMaxLength(63))
      .addStringOption((o) => o.setName('shm').setDescription('Shared memory, e.g. 16g').setMaxLength(8))
      .addStringOption((o) => o.setName('command').setDescription('Command to run (empty: the container idles)').setMaxLength(4000))
      .addBooleanOption((o) => o.setName('queue').setDescription('Wait in the queue if no GPUs are free')),
  );
  sub(b, 'queue', (s) => s.addIntegerOption((o) => o.setName('cancel').setDescription('Cancel this queued run (its id)').setMinValue(1)));
  sub(b, 'reserve', (s) =>
    hostOption(s.addIntegerOption((o) => o.setName('gpus').setDescription('How many GPUs').setRequired(true).setMinValue(1).setMaxValue(64))).addNumberOption((o) =>
      o.setName('hours').setDescription('How long').setMinValue(0.01).setMaxValue(8760),
    ),
  );
  sub(b, 'release', (s) => s.addStringOption((o) => o.setName('id').setDescription('Reservation id, or "all"').setRequired(true).setMaxLength(12)));
  sub(b, 'ls', (s) => s.addBooleanOption((o) => o.setName('all').setDescription('Everyone’s (names and GPUs only)')));
  for (const n of ['stop', 'start', 'rm', 'keep']) sub(b, n, nameOption);
  sub(b, 'logs', (s) => nameOption(s).addIntegerOption((o) => o.setName('tail').setDescription('Lines (default 50)').setMinValue(1).setMaxValue(5000)));
  sub(b, 'extend', (s) => nameOption(s).addNumberOption((o) => o.setName('hours').setDescription('Hours to add').setRequired(true).setMinValue(0.01).setMaxValue(8760)));
  sub(b, 'images', (s) => hostOption(s, 'Only this host'));
  sub(b, 'help', (s) => s.addStringOption((o) => o.setName('command').setDescription('A command to explain').setMaxLength(20)));
  sub(b, 'link', (s) => s.addStringOption((o) => o.setName('code').setDescription('The code from "link" in your other chat').setMaxLength(6)));
  sub(b, 'quota', (s) => s.addStringOption((o) => o.setName('user').setDescription('Someone else’s (admins)').setMaxLength(36)));
  sub(b, 'usage', (s) =>
    s.addStringOption((o) => o.setName('user').setDescription('Someone else’s (admins)').setMaxLength(36)).addIntegerOption((o) => o.setName('days').setDescription('Days back (default 7)').setMinValue(1).setMaxValue(90)),
  );
  sub(b, 'admin', (s) =>
    s.addStringOption((o) =>
      o
        .setName('run-job')
        .setDescription('Run this scheduled job now')
        .setRequired(true)
        .addChoices(...jobNames.map((name) => ({ name, value: name }))),
    ),
  );
  return b;
}

/** The options of a `/gpu` interaction as grammar words, so one parser and one set of rules apply. */
export function commandWords(i: Pick<ChatInputCommandInteraction, 'options'>): string[] {
  const o = i.options;
  const subcommand = o.getSubcommand();
  const words = [subcommand];
  const flag = (name: string, value: string | number | null | undefined) => {
    if (value !== null && value !== undefined) words.push(`--${name}`, String(value));
  };
  switch (subcommand) {
    case 'status':
    case 'images':
      if (o.getString('host')) words.push(o.getString('host')!);
      break;
    case 'help':
      if (o.getString('command')) words.push(o.getString('command')!);
      break;
    case 'run':
      flag('gpus', o.getInteger('gpus'));
      flag('image', o.getString('image'));
      flag('host', o.getString('host'));
      flag('hours', o.getNumber('hours'));
      flag('name', o.getString('name'));
      flag('shm', o.getString('shm'));
      if (o.getBoolean('queue')) words.push('--queue');
      if (o.getString('command')) words.push('--', ...tokenize(o.getString('command')!));
      break;
    case 'reserve':
      words.push(String(o.getInteger('gpus', true)));
      flag('host', o.getString('host'));
      flag('hours', o.getNumber('hours'));
      break;
    case 'release':
      words.push(o.getString('id', true));
      break;
    case 'ls':
      if (o.getBoolean('all')) words.push('--all');
      break;
    case 'logs':
      words.push(o.getString('name', true));
      flag('tail', o.getInteger('tail'));
      break;
    case 'extend':
      words.push(o.getString('name', true));
      flag('hours', o.getNumber('hours', true));
      break;
    case 'queue':
      if (o.getInteger('cancel') !== null) words.push('cancel', String(o.getInteger('cancel')));
      break;
    case 'link':
      if (o.getString('code')) words.push(o.getString('code')!);
      break;
    case 'quota':
      if (o.getString('user')) words.push(o.getString('user')!);
      break;
    case 'usage':
      if (o.getString('user')) words.push(o.getString('user')!);
      flag('days', o.getInteger('days'));
      break;
    case 'admin':
      words.push('run-job', o.getString('run-job', true));
      break;
    default:
      words.push(o.getString('name', true));
  }
  return words;
}
