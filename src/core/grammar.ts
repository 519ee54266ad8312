import { parseArgs, type ParseArgsConfig } from 'node:util';
import stringArgv from 'string-argv';
import type { ChoiceSource } from './port.js';
import type { Request, CommandName } from './requests.js';
import * as v from './validate.js';
import { InputError, printable } from './validate.js';
import { buildArgs, userImageName, workspacePath } from './dockerfile.js';

type Values = Record<string, string | boolean | undefined>;

/**
 * What a chat needs to ask for one value as a typed option (Discord) or a form field (Slack).
 * All optional: without it a value is free text.
 */
export interface ValueInfo {
  description?: string;
  /** The value's type where a chat can type it; default text. */
  kind?: 'text' | 'integer' | 'number';
  min?: number;
  max?: number;
  maxLength?: number;
  /** Where suggestions come from (autocomplete, form selects). */
  complete?: ChoiceSource;
  required?: boolean;
}

/** An option as `node:util` parseArgs takes it, plus what chats need to offer it. */
export type OptionSpec = { type: 'string' | 'boolean'; short?: string; /** May be given more than once (an array). */ multiple?: boolean } & ValueInfo;
type Options = Record<string, OptionSpec>;

/** A positional argument by name, for chats that ask for each value on its own. */
export interface ArgSpec extends ValueInfo {
  name: string;
  /** Words said before the value, e.g. "cancel" in "queue cancel ID". */
  prefix?: string[];
}

/** One action of a command with actions ("admin quota ..."): its own usage, help line and values. */
export interface ActionSpec {
  name: string;
  usage: string;
  summary: string;
  args?: ArgSpec[];
  /** Which of the command's options this action takes. */
  options?: string[];
}

export interface CommandSpec {
  name: CommandName;
  usage: string;
  summary: string;
  examples: string[];
  options: Options;
  /** Accepts `-- CMD ARGS...` after the options. */
  takesCommand?: boolean;
  /** Takes its words as they are, no options (a pasted key line may hold anything, even "-----BEGIN"). */
  rawWords?: boolean;
  positionals: [min: number, max: number];
  /** The positionals by name, in order. Without it, chats ask for them as one free-text "args". */
  args?: ArgSpec[];
  /** Sub-actions, named by the first positional: a line each in help, a subcommand group in Discord. */
  actions?: ActionSpec[];
  build(values: Values, positionals: string[], cmd: string[] | undefined): Request;
}

const containerArg: ArgSpec = { name: 'name', description: 'Container name', required: true, complete: 'container', maxLength: 63 };
const hoursOption: OptionSpec = { type: 'string', kind: 'number', min: 0.01, max: 8760, description: 'How long, in hours (default 24, at most your maxHours)' };

const str = (values: Values, key: string): string | undefined => values[key] as string | undefined;

export const commands: CommandSpec[] = [
  {
    name: 'help',
    usage: 'help [COMMAND]',
    summary: 'List the commands, or explain one.',
    examples: ['help', 'help run'],
    options: {},
    positionals: [0, 1],
    args: [{ name: 'command', description: 'A command to explain', maxLength: 20 }],
    build: (_v, [topic]) => {
      if (topic !== undefined && !commands.some((c) => c.name === topic)) throw new InputError(`there is no command "${printable(topic)}"; try "help"`);
      return { command: 'help', topic };
    },
  },
  {
    name: 'status',
    usage: 'status [HOST] [--chart]',
    summary: 'Every GPU on every host: model, memory, utilization, who holds it, and processes gpubot did not start (--chart: a picture of utilization over the last hours).',
    examples: ['status', 'status gpu1', 'status --chart'],
    options: { chart: { type: 'boolean', description: 'Post a chart of utilization per host over the last hours' } },
    positionals: [0, 1],
    args: [{ name: 'host', description: 'Only this host', complete: 'host', maxLength: 63 }],
    build: (values, [host]) => ({ command: 'status', host: host === undefined ? undefined : v.hostName(host), ...(values.chart ? { chart: true } : {}) }),
  },
  {
    name: 'run',
    usage: 'run [--gpus N] [--image IMAGE] [--host HOST] [--name NAME] [--hours H] [--shm SIZE] [--queue] [--jupyter] [-- CMD ARGS...]',
    summary: 'Allocate GPUs and start a container with them; without CMD it stays up for `docker exec`.',
    examples: ['run --gpus 2', 'run --gpus 1 --image pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime --hours 8 --name exp1 -- python train.py --lr 3e-4'],
    options: {
      gpus: { type: 'string', kind: 'integer', min: 1, max: 64, description: 'How many GPUs (default 1)' },
      image: { type: 'string', complete: 'image', maxLength: 255, description: 'Image (default from the config)' },
      host: { type: 'string', complete: 'free-host', maxLength: 63, description: 'Host (default: the best fit)' },
      name: { type: 'string', maxLength: 63, description: 'Container name' },
      hours: hoursOption,
      shm: { type: 'string', maxLength: 8, description: 'Shared memory, e.g. 16g' },
      queue: { type: 'boolean', description: 'Wait in the queue if no GPUs are free' },
      jupyter: { type: 'boolean', description: 'Start JupyterLab (an image under images.jupyter)' },
    },
    takesCommand: true,
    positionals: [0, 0],
    build: (values, _p, cmd) => ({
      command: 'run',
      gpus: values.gpus === undefined ? 1 : v.integer(str(values, 'gpus')!, 'gpus', 1, 64),
      image: values.image === undefined ? undefined : v.imageRef(str(values, 'image')!),
      host: values.host === undefined ? undefined : v.hostName(str(values, 'host')!),
      name: values.name === undefined ? undefined : v.containerName(str(values, 'name')!),
      hours: values.hours === undefined ? undefined : v.hours(str(values, 'hours')!),
      shm: values.shm === undefined ? undefined : v.shmSize(str(values, 'shm')!),
      cmd: cmd === undefined ? undefined : v.containerCommand(cmd),
      ...(values.queue ? { queue: true } : {}),
      ...(values.jupyter ? { jupyter: true } : {}),
    }),
  },
  {
    name: 'reserve',
    usage: 'reserve N [--host HOST] [--hours H]',
    summary: 'Hold N GPUs without a container, for work over SSH.',
    examples: ['reserve 2 --hours 4', 'reserve 1 --host gpu2'],
    options: { host: { type: 'string', complete: 'free-host', maxLength: 63, description: 'Host (default: the best fit)' }, hours: hoursOption },
    positionals: [1, 1],
    args: [{ name: 'gpus', kind: 'integer', min: 1, max: 64, required: true, description: 'How many GPUs' }],
    build: (values, [n]) => ({
      command: 'reserve',
      gpus: v.integer(n!, 'the number of GPUs', 1, 64),
      host: values.host === undefined ? undefined : v.hostName(str(values, 'host')!),
      hours: values.hours === undefined ? undefined : v.hours(str(values, 'hours')!),
    }),
  },
  {
    name: 'release',
    usage: 'release ID|all',
    summary: 'Give back a reservation (or all of yours).',
    examples: ['release 12', 'release all'],
    options: {},
    positionals: [1, 1],
    args: [{ name: 'id', required: true, maxLength: 12, description: 'Reservation id, or "all"' }],
    build: (_v, [t]) => ({ command: 'release', target: t === 'all' ? 'all' : v.integer(t!, 'the reservation id', 1, 2 ** 31 - 1) }),
  },
  {
    name: 'ls',
    usage: 'ls [--all]',
    summary: 'Your containers and reservations (--all: everyone’s, names and GPUs only).',
    examples: ['ls', 'ls --all'],
    options: { all: { type: 'boolean', description: 'Everyone’s (names and GPUs only)' } },
    positionals: [0, 0],
    build: (values) => ({ command: 'ls', all: values.all === true }),
  },
  ...(['stop', 'start', 'rm'] as const).map((name): CommandSpec => ({
    name,
    usage: `${name} NAME`,
    summary: {
      stop: 'Stop a container and free its GPUs (its files stay).',
      start: 'Start a stopped container again on the same GPUs, if they are free.',
      rm: 'Remove a container. Your files in the workspace stay.',
    }[name],
    examples: [`${name} exp1`],
    options: {},
    positionals: [1, 1],
    args: [containerArg],
    build: (_v, [n]) => ({ command: name, name: v.containerName(n!) }),
  })),
  {
    name: 'logs',
    usage: 'logs NAME [--tail N]',
    summary: 'The last lines a container printed.',
    examples: ['logs exp1', 'logs exp1 --tail 200'],
    options: { tail: { type: 'string', kind: 'integer', min: 1, max: 5000, description: 'Lines (default 50)' } },
    positionals: [1, 1],
    args: [containerArg],
    build: (values, [n]) => ({ command: 'logs', name: v.containerName(n!), tail: values.tail === undefined ? 50 : v.integer(str(values, 'tail')!, 'tail', 1, 5000) }),
  },
  {
    name: 'extend',
    usage: 'extend NAME --hours H',
    summary: 'Push back the end time of a container (within your quota).',
    examples: ['extend exp1 --hours 4'],
    options: { hours: { ...hoursOption, required: true, description: 'Hours to add' } },
    positionals: [1, 1],
    args: [containerArg],
    build: (values, [n]) => {
      if (values.hours === undefined) throw new InputError('extend needs --hours H');
      return { command: 'extend', name: v.containerName(n!), hours: v.hours(str(values, 'hours')!) };
    },
  },
  {
    name: 'keep',
    usage: 'keep NAME',
    summary: 'Stopped container: hold off its automatic removal. Running: keep it up even while its GPUs are idle.',
    examples: ['keep exp1'],
    options: {},
    positionals: [1, 1],
    args: [containerArg],
    build: (_v, [n]) => ({ command: 'keep', name: v.containerName(n!) }),
  },
  {
    name: 'images',
    usage: 'images [HOST]',
    summary: 'Images present on the hosts, and which ones are allowed.',
    examples: ['images', 'images gpu1'],
    options: {},
    positionals: [0, 1],
    args: [{ name: 'host', description: 'Only this host', complete: 'host', maxLength: 63 }],
    build: (_v, [host]) => ({ command: 'images', host: host === undefined ? undefined : v.hostName(host) }),
  },
  {
    name: 'quota',
    usage: 'quota [USER]',
    summary: 'GPU-hours used this week against the limit, when the window ends, and what is held now (another user: admins).',
    examples: ['quota', 'quota alice'],
    options: {},
    positionals: [0, 1],
    args: [{ name: 'user', description: 'Someone else’s (admins)', maxLength: 36 }],
    build: (_v, [user]) => ({ command: 'quota', user: user === undefined ? undefined : v.handle(user) }),
  },
  {
    name: 'queue',
    usage: 'queue [cancel ID]',
    summary: 'Runs waiting for GPUs (from "run --queue"), in the order they will launch; cancel one of yours.',
    examples: ['queue', 'queue cancel 3'],
    options: {},
    positionals: [0, 2],
    args: [{ name: 'cancel', prefix: ['cancel'], kind: 'integer', min: 1, description: 'Cancel this queued run (its id)' }],
    build: (_v, [action, id]) => {
      if (action === undefined) return { command: 'queue' };
      if (action !== 'cancel' || id === undefined) throw new InputError('usage: queue [cancel ID]');
      return { command: 'queue', cancel: v.integer(id, 'the queue id', 1, 2 ** 31 - 1) };
    },
  },
  {
    name: 'link',
    // "link yes|no CODE" is what the confirmation's buttons say; people type the two forms above.
    usage: 'link [CODE]',
    summary: 'Join your Slack and Discord identities into one user: "link" gives a code; say "link CODE" in the other chat, then confirm in the first (Yes, or "link yes CODE").',
    examples: ['link', 'link K7Q2XM'],
    options: {},
    positionals: [0, 2],
    // Chats ask for the code; "yes"/"no" come from the confirmation's buttons.
    args: [{ name: 'code', description: 'The code from "link" in your other chat', maxLength: 6 }],
    build: (_v, words) => {
      const answer = words.length === 2 ? words[0]!.toLowerCase() : undefined;
      if (answer !== undefined && answer !== 'yes' && answer !== 'no') throw new InputError(`"${printable(words[0]!)}" is not "yes" or "no"`);
      const code = words.length === 2 ? words[1] : words[0];
      if (code !== undefined && !/^[A-Z0-9]{6}$/i.test(code)) throw new InputError(`"${printable(code)}" is not a link code (6 letters and digits)`);
      return { command: 'link', code: code?.toUpperCase(), ...(answer ? { answer } : {}) };
    },
  },
  {
    name: 'image',
    usage: 'image build NAME [--file PATH] [--host HOST] [--build-arg KEY=VALUE]... | image logs NAME | image ls | image rm NAME[:n]',
    summary:
      'Your own images: build one from a Dockerfile in your workspace (tagged gpubot/<you>/NAME:n), read its build log, list or remove them; run one with "run --image mine/NAME[:n]".',
    examples: ['image build trainer', 'image build trainer --file docker/Dockerfile --host gpu2', 'image logs trainer', 'image ls', 'image rm trainer:2'],
    options: {
      file: { type: 'string', maxLength: 255, description: 'The Dockerfile, a path inside your workspace (default Dockerfile)' },
      host: { type: 'string', maxLength: 63, complete: 'host', description: 'Build on this host (default: the best one)' },
      'build-arg': { type: 'string', multiple: true, maxLength: 1100, description: 'KEY=VALUE for an ARG of the Dockerfile' },
    },
    positionals: [1, 2],
    actions: [
      {
        name: 'build',
        usage: 'image build NAME [--file PATH] [--host HOST] [--build-arg KEY=VALUE]...',
        summary: 'Build your image from a Dockerfile in your workspace; tagged gpubot/<you>/NAME:n.',
        args: [{ name: 'name', required: true, maxLength: 64, description: 'Image name (lowercase)' }],
        options: ['file', 'host', 'build-arg'],
      },
      {
        name: 'logs',
        usage: 'image logs NAME',
        summary: 'The build log of your newest build of NAME.',
        args: [{ name: 'name', required: true, maxLength: 64, description: 'Image name' }],
      },
      { name: 'ls', usage: 'image ls', summary: 'Your images: tag, size, created, hosts, containers using them.' },
      {
        name: 'rm',
        usage: 'image rm NAME[:n]',
        summary: 'Remove a version (or all) of your image; never one in use.',
        args: [{ name: 'name', required: true, maxLength: 72, description: 'NAME or NAME:n' }],
      },
    ],
    build: (values, [action, arg]) => {
      const only = (allowed: string[]) => {
        const extra = Object.keys(values).find((k) => !allowed.includes(k));
        if (extra) throw new InputError(`image ${printable(action!)} takes no --${extra}`);
      };
      if (action === 'ls') {
        only([]);
        if (arg !== undefined) throw new InputError('image ls takes no argument');
        return { command: 'image', action };
      }
      if (action !== 'build' && action !== 'logs' && action !== 'rm') throw new InputError(`unknown image action "${printable(action!)}"; try "help image"`);
      if (arg === undefined) throw new InputError(`image ${action} needs a NAME`);
      if (action === 'logs') {
        only([]);
        return { command: 'image', action, name: userImageName(arg) };
      }
      if (action === 'rm') {
        only([]);
        const [name, version, ...rest] = arg.split(':');
        if (rest.length) throw new InputError(`"${printable(arg)}" is not NAME or NAME:n`);
        return { command: 'image', action, name: userImageName(name!), ...(version === undefined ? {} : { version: v.integer(version, 'the version', 1, 1_000_000) }) };
      }
      only(['file', 'host', 'build-arg']);
      return {
        command: 'image',
        action,
        name: userImageName(arg),
        file: values.file === undefined ? 'Dockerfile' : workspacePath(str(values, 'file')!),
        host: values.host === undefined ? undefined : v.hostName(str(values, 'host')!),
        buildArgs: buildArgs((values['build-arg'] as unknown as string[] | undefined) ?? []),
      };
    },
  },
  {
    name: 'usage',
    usage: 'usage [USER] [--days N] [--chart]',
    summary:
      'GPU-hours per day and the mean utilization of the GPUs held, over the last N days (default 7; another user: admins). --chart: a picture of GPU-hours per user this week.',
    examples: ['usage', 'usage --days 30', 'usage alice', 'usage --chart'],
    options: { days: { type: 'string' }, chart: { type: 'boolean', description: 'Post a chart of GPU-hours per user this week' } },
    positionals: [0, 1],
    build: (values, [user]) => ({
      command: 'usage',
      user: user === undefined ? undefined : v.handle(user),
      days: values.days === undefined ? 7 : v.integer(str(values, 'days')!, 'days', 1, 90),
      ...(values.chart ? { chart: true } : {}),
    }),
  },
  {
    name: 'dashboard',
    usage: 'dashboard [revoke]',
    summary: 'A personal link to the live web dashboard (signed, expires after http.dashboard.linkHours); "dashboard revoke" voids all your links.',
    examples: ['dashboard', 'dashboard revoke'],
    options: {},
    positionals: [0, 1],
    args: [{ name: 'revoke', description: 'Say "revoke" to void all your links', maxLength: 6 }],
    build: (_v, [word]) => {
      if (word !== undefined && word !== 'revoke') throw new InputError(`"${printable(word)}" is not "revoke"; usage: dashboard [revoke]`);
      return { command: 'dashboard', revoke: word === 'revoke' };
    },
  },
  {
    name: 'key',
    rawWords: true,
    usage: 'key add PUBLIC-KEY | key ls | key rm FINGERPRINT|all',
    summary: 'Your SSH public keys for the gateway (ssh into your containers): add one (ed25519, ecdsa, rsa ≥ 3072), list them, remove one or all.',
    examples: ['key add ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI... me@laptop', 'key ls', 'key rm SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', 'key rm all'],
    options: {},
    positionals: [1, 40],
    actions: [
      {
        name: 'add',
        usage: 'key add PUBLIC-KEY',
        summary: 'Add an SSH public key (the line from ~/.ssh/id_ed25519.pub).',
        args: [{ name: 'key', required: true, maxLength: 4000, description: 'The public key line: ssh-ed25519 AAAA... you@laptop' }],
      },
      { name: 'ls', usage: 'key ls', summary: 'Your SSH keys: fingerprints and comments.' },
      {
        name: 'rm',
        usage: 'key rm FINGERPRINT|all',
        summary: 'Remove a key (its open sessions end), or all of them.',
        args: [{ name: 'fingerprint', required: true, maxLength: 60, description: 'SHA256:... from "key ls", or all' }],
      },
    ],
    build: (_v, [action, ...rest]) => {
      if (action === 'ls') {
        if (rest.length) throw new InputError('key ls takes no argument');
        return { command: 'key', action: 'ls' };
      }
      if (action === 'add') {
        // Typed text arrives as words, a Discord option as one value: both are the same key line.
        const line = rest.join(' ').trim().split(/\s+/).filter(Boolean);
        if (line.length < 2) throw new InputError('key add needs a public key line, like "key add ssh-ed25519 AAAA... me@laptop" (the contents of ~/.ssh/id_ed25519.pub)');
        return { command: 'key', action: 'add', line: line.join(' ') };
      }
      if (action === 'rm') {
        if (rest.length !== 1) throw new InputError('usage: key rm FINGERPRINT|all (see "key ls")');
        const [target] = rest as [string];
        if (target !== 'all' && !/^SHA256:[A-Za-z0-9+/]{43}$/.test(target))
          throw new InputError(`"${printable(target)}" is not a key fingerprint like SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8 (see "key ls")`);
        return { command: 'key', action: 'rm', target };
      }
      throw new InputError(`unknown key action "${printable(action!)}"; use key add, key ls or key rm`);
    },
  },
  {
    name: 'ssh-config',
    usage: 'ssh-config',
    summary: 'A ready ~/.ssh/config block with a "Host gpubot-NAME" per running container of yours (for ssh, scp and VS Code Remote-SSH).',
    examples: ['ssh-config'],
    options: {},
    positionals: [0, 0],
    build: () => ({ command: 'ssh-config' }),
  },
  {
    name: 'admin',
    usage:
      'admin run-job JOB | admin quota USER [--max-gpus N] [--gpu-hours H] [--max-hours H] | admin audit [N] | admin hosts | admin drain HOST | admin undrain HOST | admin forget HOST',
    summary: 'Admins only: run a job now, change limits, read the audit log, see the hosts, drain a host, forget a host that left the config.',
    examples: [
      'admin run-job expiry',
      'admin quota alice --gpu-hours 300 --max-gpus 8',
      'admin audit 20',
      'admin hosts',
      'admin drain gpu2',
      'admin undrain gpu2',
      'admin forget gpu9',
    ],
    options: {
      'max-gpus': { type: 'string', kind: 'integer', min: 0, max: 1024, description: 'GPUs at a time' },
      'gpu-hours': { type: 'string', kind: 'number', min: 0, max: 100_000, description: 'GPU-hours per week' },
      'max-hours': { type: 'string', kind: 'number', min: 0, max: 24 * 365, description: 'Longest run, in hours' },
    },
    positionals: [1, 2],
    actions: [
      {
        name: 'run-job',
        usage: 'admin run-job JOB',
        summary: 'Admins: run a scheduled job now.',
        args: [{ name: 'job', required: true, complete: 'job', description: 'The job to run' }],
      },
      {
        name: 'quota',
        usage: 'admin quota USER [--max-gpus N] [--gpu-hours H] [--max-hours H]',
        summary: 'Admins: change a user’s limits (wins over the config file; audited).',
        args: [{ name: 'user', required: true, maxLength: 36, description: 'The user' }],
        options: ['max-gpus', 'gpu-hours', 'max-hours'],
      },
      {
        name: 'audit',
        usage: 'admin audit [N]',
        summary: 'Admins: the last N (20) audit events.',
        args: [{ name: 'count', kind: 'integer', min: 1, max: 200, description: 'How many events (default 20)' }],
      },
      { name: 'hosts', usage: 'admin hosts', summary: 'Admins: each host’s connection, last error, GPU count, drained or not.' },
      {
        name: 'drain',
        usage: 'admin drain HOST',
        summary: 'Admins: place no new work on a host (what runs keeps running).',
        args: [{ name: 'host', required: true, complete: 'host', maxLength: 63, description: 'The host' }],
      },
      {
        name: 'undrain',
        usage: 'admin undrain HOST',
        summary: 'Admins: let a drained host take work again.',
        args: [{ name: 'host', required: true, complete: 'host', maxLength: 63, description: 'The host' }],
      },
      {
        name: 'forget',
        usage: 'admin forget HOST',
        summary: 'Admins: a host no longer in the config: record its containers gone, release its GPUs (audited).',
        args: [{ name: 'host', required: true, maxLength: 63, description: 'The host that left the config' }],
      },
    ],
    build: (values, [action, arg]) => {
      const noOptions = () => {
        if (Object.keys(values).length) throw new InputError(`admin ${printable(action!)} takes no options`);
      };
      if (action === 'hosts') {
        noOptions();
        if (arg !== undefined) throw new InputError('admin hosts takes no argument');
        return { command: 'admin', action };
      }
      if (action === 'audit') {
        noOptions();
        return { command: 'admin', action, count: arg === undefined ? 20 : v.integer(arg, 'the number of events', 1, 200) };
      }
      if (action === 'drain' || action === 'undrain' || action === 'forget') {
        noOptions();
        if (arg === undefined) throw new InputError(`admin ${action} needs a HOST`);
        return { command: 'admin', action, host: v.hostName(arg) };
      }
      if (arg === undefined) throw new InputError(`admin ${printable(action!)} needs an argument; try "help admin"`);
      if (action === 'run-job') {
        if (Object.keys(values).length) throw new InputError('run-job takes no options');
        if (!/^[a-z-]{1,30}$/.test(arg!)) throw new InputError(`"${printable(arg!)}" is not a job name`);
        return { command: 'admin', action, job: arg! };
      }
      if (action === 'quota') {
        if (!Object.keys(values).length) throw new InputError('admin quota needs at least one of --max-gpus, --gpu-hours, --max-hours');
        const num = (key: string, max: number) => (values[key] === undefined ? undefined : v.hours(str(values, key)!, max));
        return {
          command: 'admin',
          action,
          user: v.handle(arg!),
          maxGpus: values['max-gpus'] === undefined ? undefined : v.integer(str(values, 'max-gpus')!, 'max-gpus', 0, 1024),
          gpuHoursPerWeek: num('gpu-hours', 100_000),
          maxHours: num('max-hours', 24 * 365),
        };
      }
      throw new InputError(`unknown admin action "${printable(action!)}"; try "help admin"`);
    },
  },
];

export const commandSpec = (name: string): CommandSpec | undefined => commands.find((c) => c.name === name);

/** One line of the catalogue: a command, or one action of a command with actions. */
export interface CatalogueEntry {
  command: CommandSpec;
  action?: ActionSpec;
  usage: string;
  summary: string;
  /** The words that name it: ["stop"], ["admin", "drain"]. */
  words: string[];
  args: ArgSpec[] | undefined;
  options: Options;
}

/** Every command and every action, in catalogue order: what help, chats and the README list. */
export function catalogue(): CatalogueEntry[] {
  return commands.flatMap((command): CatalogueEntry[] =>
    command.actions
      ? command.actions.map((action) => ({
          command,
          action,
          usage: action.usage,
          summary: action.summary,
          words: [command.name, action.name],
          args: action.args ?? [],
          options: Object.fromEntries((action.options ?? []).map((o) => [o, command.options[o]!])),
        }))
      : [{ command, usage: command.usage, summary: command.summary, words: [command.name], args: command.args, options: command.options }],
  );
}

/** parseArgs wants only its own keys. */
const parseOptions = (options: Options): NonNullable<ParseArgsConfig['options']> =>
  Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]));

const MAX_INPUT = 10_000;

/** Splits chat text into words the way a shell would quote them, but expands nothing. */
export function tokenize(text: string): string[] {
  if (text.length > MAX_INPUT) throw new InputError(`the message is too long (at most ${MAX_INPUT} characters)`);
  // Slack and Discord turn quotes into typographic ones; people mean plain quotes.
  const plain = text.replace(/[\u201c\u201d\u201e]/g, '"').replace(/[\u2018\u2019]/g, "'");
  if (openQuote(plain)) throw new InputError(`a ${openQuote(plain)} quote is not closed`);
  return stringArgv(plain.trim());
}

/** The quote character left open at the end of the text, if any. */
function openQuote(text: string): string | null {
  let open: string | null = null;
  for (const ch of text) {
    if (open === null && (ch === '"' || ch === "'")) open = ch;
    else if (ch === open) open = null;
  }
  return open;
}

const quoteWord = (w: string): string => (w === '' ? '""' : /[\s'"\u2018-\u201e]/.test(w) ? (w.includes('"') ? `'${w}'` : `"${w}"`) : w);

/** Words as one line that `tokenize` reads back as the same words (for buttons); null if none does. */
export function commandText(words: string[]): string | null {
  const text = words.map(quoteWord).join(' ');
  try {
    const back = tokenize(text);
    return back.length === words.length && back.every((w, i) => w === words[i]) ? text : null;
  } catch {
    return null;
  }
}

/** A parsed `run` as the words that ask for it again (what a "Queue it" button runs). */
export function runWords(req: Extract<Request, { command: 'run' }>): string[] {
  const words = ['run', '--gpus', String(req.gpus)];
  for (const key of ['image', 'host', 'name', 'hours', 'shm'] as const) if (req[key] !== undefined) words.push(`--${key}`, String(req[key]));
  if (req.queue) words.push('--queue');
  if (req.cmd) words.push('--', ...req.cmd);
  return words;
}

/** Parses one command line (with or without a leading "/gpu" or "gpu") into a typed request. */
export function parseCommand(text: string): Request {
  const words = tokenize(text);
  if (words[0] === '/gpu' || words[0] === 'gpu') words.shift();
  return parseWords(words);
}

export function parseWords(words: string[]): Request {
  const [name, ...rest] = words;
  if (name === undefined || name === '') return { command: 'help' };
  const spec = commandSpec(name);
  if (!spec) throw new InputError(`unknown command "${printable(name)}"; try "help"`);

  if (spec.rawWords) {
    const [min, max] = spec.positionals;
    if (rest.length < min || rest.length > max) throw new InputError(`${spec.name} needs ${min}-${max} words. Usage: ${spec.usage}`);
    return spec.build({}, rest, undefined);
  }
  let args = rest;
  let cmd: string[] | undefined;
  const dashdash = rest.indexOf('--');
  if (dashdash >= 0) {
    if (!spec.takesCommand) throw new InputError(`${spec.name} takes no command after "--"`);
    args = rest.slice(0, dashdash);
    cmd = rest.slice(dashdash + 1);
    if (cmd.length === 0) throw new InputError('nothing follows "--"; give the command to run, e.g. -- python train.py');
  }

  let parsed: { values: Values; positionals: string[]; tokens: { kind: string; name?: string }[] };
  try {
    parsed = parseArgs({ args, options: parseOptions(spec.options), allowPositionals: true, strict: true, tokens: true }) as typeof parsed;
  } catch (err) {
    throw new InputError(`${parseArgsMessage(err as Error, spec.options)}. Usage: ${spec.usage}`);
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option' || !token.name) continue;
    if (seen.has(token.name) && !spec.options[token.name]?.multiple) throw new InputError(`--${token.name} is given twice. Usage: ${spec.usage}`);
    seen.add(token.name);
  }
  const [min, max] = spec.positionals;
  if (parsed.positionals.length < min) throw new InputError(`${spec.name} needs more arguments. Usage: ${spec.usage}`);
  if (parsed.positionals.length > max) {
    throw new InputError(`unexpected "${printable(parsed.positionals[max]!)}". Usage: ${spec.usage}`);
  }
  for (const [key, value] of Object.entries(parsed.values)) {
    if (typeof value === 'string' && value.length === 0) throw new InputError(`--${key} needs a value. Usage: ${spec.usage}`);
  }
  return spec.build(parsed.values, parsed.positionals, cmd);
}

function parseArgsMessage(err: Error, options: Options): string {
  const code = (err as NodeJS.ErrnoException).code;
  const flag = /'(-{1,2}[^'\s]*)/.exec(err.message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option "${printable(flag)}"`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = flag.replace(/^-+/, '');
    return options[name]?.type === 'boolean' ? `${flag} takes no value` : `${flag} needs a value`;
  }
  return 'could not read the options';
}
