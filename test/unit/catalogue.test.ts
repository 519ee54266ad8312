import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COLUMNS, renderText } from '../../src/adapters/console/render.js';
import { helpReply } from '../../src/core/commands/help.js';
import { catalogue, commands, commandText, parseCommand, runWords } from '../../src/core/grammar.js';
import { REFUSAL_CODES, refuse } from '../../src/core/reply.js';
import { queueableRefusal, withQueueButton } from '../../src/operations/queue.js';

/** The usages in the first column of the README's command table (a row may list several). */
export function readmeUsages(readme: string): string[] {
  const section = readme.split('\n## Chat commands')[1]!.split('\n## ')[0]!;
  const rows = section.split('\n').filter((l) => l.startsWith('| `'));
  return rows.flatMap((row) => {
    const first = row.slice(1).split(/(?<!\\)\|/)[0]!;
    return [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\\\|/g, '|'));
  });
}

describe('the command catalogue', () => {
  it('and the README command table list the same commands, usage for usage', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const documented = readmeUsages(readme);
    expect(documented.length).toBeGreaterThan(10);
    expect([...documented].sort()).toEqual(
      catalogue()
        .map((e) => e.usage)
        .sort(),
    );
  });

  it(`prints help within ${COLUMNS} columns, every command and admin action on it`, () => {
    const help = helpReply();
    const text = renderText(help);
    const tooWide = text.split('\n').filter((l) => [...l].length > COLUMNS);
    expect(tooWide).toEqual([]);
    const table = help.blocks.find((b) => b.type === 'table');
    expect(table?.type === 'table' && table.rows.map((r) => r[0])).toEqual(catalogue().map((e) => e.usage));
    // Each row starts on its own line (long usages continue on the next ones).
    for (const e of catalogue())
      expect(
        text.split('\n').some((l) => l.startsWith(`  ${e.usage.split(' [')[0]}`)),
        e.usage,
      ).toBe(true);
  });

  it('parses every example, and each usage starts with its command', () => {
    for (const spec of commands) {
      for (const x of spec.examples) expect(parseCommand(x).command, x).toBe(spec.name);
    }
    for (const e of catalogue()) expect(e.usage.startsWith(e.words.join(' '))).toBe(true);
  });

  it('writes a run back as text that parses to the same run, or not at all', () => {
    const run = parseCommand(`run --gpus 2 --name exp1 --hours 1.5 -- python -c "print('a b')" '$(id)'`);
    if (run.command !== 'run') throw new Error('not a run');
    const text = commandText(runWords({ ...run, queue: true }))!;
    expect(parseCommand(text)).toEqual({ ...run, queue: true });
    expect(commandText(['run', '--', `it's "both"`])).toBeNull();
  });
});

describe('typed outcomes', () => {
  it('are all named in the README, and only those', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const listed = /A refusal's `code` is one of (.*?) \(tried and broke/.exec(readme.replace(/\n\s*/g, ' '))![1]!;
    expect([...listed.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]).sort()).toEqual([...REFUSAL_CODES].sort());
  });

  const run = { command: 'run' as const, gpus: 2, name: 'exp1', cmd: ['python', 'train.py'] };

  it('decides "Queue it" on the refusal code, never on its words', () => {
    expect(queueableRefusal(refuse('no-gpus', 'Anything at all'), 'refuse')).toBe('no-gpus');
    expect(queueableRefusal(refuse('over-gpu-hours', 'Over your quota'), 'queue')).toBe('over-hours');
    expect(queueableRefusal(refuse('over-gpu-hours', 'Over your quota'), 'refuse')).toBeNull();
    expect(queueableRefusal(refuse('over-quota', 'No GPUs for you right now', 'quota gpuHoursPerWeek: ...'), 'queue')).toBeNull();
    expect(queueableRefusal(refuse('not-found', 'No GPUs for you right now'), 'queue')).toBeNull();
  });

  it('offers a "Queue it" button that runs the same run with --queue', () => {
    const answer = withQueueButton(refuse('no-gpus', 'No GPUs for you right now', 'no host has 2 free GPUs.'), run);
    const actions = answer.blocks.flatMap((b) => (b.type === 'actions' ? b.actions : []));
    expect(actions).toEqual([{ id: 'queue', label: 'Queue it', command: 'run --gpus 2 --name exp1 --queue -- python train.py', style: 'primary' }]);
    expect(parseCommand(actions[0]!.command)).toEqual({ ...run, queue: true });
    expect(answer.code).toBe('no-gpus');
  });
});

describe('a new command with no chat metadata', () => {
  it('still becomes a working /gpu subcommand (free-text args, its options as they are)', async () => {
    const { gpuCommand, commandWords } = await import('../../src/adapters/discord/command.js');
    const { parseWords } = await import('../../src/core/grammar.js');
    // Appended as other commands are, in the existing style, with nothing for chats.
    const spec = {
      name: 'newcmd' as unknown as 'ls', // not yet in the Request union: the grammar does not care
      usage: 'newcmd A [B] [--flag X] [--on]',
      summary: 'A command added later.',
      examples: ['newcmd a'],
      options: { flag: { type: 'string' as const }, on: { type: 'boolean' as const } },
      positionals: [1, 2] as [number, number],
      build: (values: Record<string, unknown>, positionals: string[]) => ({ command: 'ls' as const, all: values.on === true && positionals.length === 2 && values.flag === 'x y' }),
    };
    commands.splice(commands.length - 1, 0, spec);
    try {
      const json = gpuCommand().toJSON() as unknown as { options: { name: string; options?: { name: string; type: number; required?: boolean }[] }[] };
      const sub = json.options.find((o) => o.name === 'newcmd');
      expect(sub?.options).toEqual([
        expect.objectContaining({ name: 'args', type: 3, required: true }),
        expect.objectContaining({ name: 'flag', type: 3, required: false }),
        expect.objectContaining({ name: 'on', type: 5, required: false }),
      ]);
      const given: Record<string, string | boolean> = { args: 'a "b c"', flag: 'x y', on: true };
      const words = commandWords({ getSubcommandGroup: () => null, getSubcommand: () => 'newcmd', get: (n) => (n in given ? { value: given[n]! } : null) });
      expect(words).toEqual(['newcmd', 'a', 'b c', '--flag=x y', '--on']);
      // The same grammar takes them: both positionals and both options arrive.
      expect(parseWords(words)).toEqual({ command: 'ls', all: true });
    } finally {
      commands.splice(commands.indexOf(spec), 1);
    }
  });
});
