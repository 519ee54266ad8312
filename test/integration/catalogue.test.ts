// The command catalogue (src/core/grammar.ts) is the one source of every chat's commands: this
// walks it and sends every command and admin action, by its own examples, through each adapter
// (real Bolt and discord.js against the stand-ins; the console over a stream) into a recording
// port, and checks each arrives as the same request the typed text parses to.
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsoleAdapter } from '../../src/adapters/console/console-adapter.js';
import { slashValues } from '../../src/adapters/discord/command.js';
import { DiscordAdapter } from '../../src/adapters/discord/discord-adapter.js';
import { SlackAdapter } from '../../src/adapters/slack/slack-adapter.js';
import { catalogue, commandText, parseCommand, parseWords, tokenize, type CatalogueEntry } from '../../src/core/grammar.js';
import type { Request } from '../../src/core/requests.js';
import { silentLogger } from '../../src/log.js';
import { startDiscordStandin, type DiscordStandin } from '../support/discord-standin.js';
import { recordingPort } from '../support/fake-port.js';
import { startSlackStandin, type SlackStandin } from '../support/slack-standin.js';

const STRING = 3;
const INTEGER = 4;
const BOOLEAN = 5;
const NUMBER = 10;

/** Each catalogue entry with the examples that name it (an admin action: "admin ACTION ..."). */
const walk = catalogue().map((entry) => ({ entry, examples: entry.command.examples.filter((x) => tokenize(x).slice(0, entry.words.length).join(' ') === entry.words.join(' ')) }));
const label = (e: CatalogueEntry) => e.words.join(' ');
const parsed = (input: string | string[]): Request => (typeof input === 'string' ? parseCommand(input) : parseWords(input));

/** An example as the options a Discord user fills in for its subcommand. */
function discordOptions(entry: CatalogueEntry, example: string): { name: string; type: number; value: string | number | boolean }[] {
  const words = tokenize(example).slice(entry.words.length);
  const dashdash = words.indexOf('--');
  const cmd = dashdash >= 0 ? words.slice(dashdash + 1) : undefined;
  const options = Object.fromEntries(Object.entries(entry.options).map(([k, o]) => [k, { type: o.type }]));
  const { values, positionals } = parseArgs({ args: dashdash >= 0 ? words.slice(0, dashdash) : words, options, allowPositionals: true, strict: true });
  const typed = new Map(slashValues(entry).map((v) => [v.name, v]));
  const out: { name: string; type: number; value: string | number | boolean }[] = [];
  const typeOf = (name: string) => {
    const v = typed.get(name)!;
    return v.boolean ? BOOLEAN : v.kind === 'integer' ? INTEGER : v.kind === 'number' ? NUMBER : STRING;
  };
  const add = (name: string, raw: string | boolean) => {
    const type = typeOf(name);
    out.push({ name, type, value: type === INTEGER || type === NUMBER ? Number(raw) : raw });
  };
  const rest = [...positionals];
  if (entry.args) {
    for (const arg of entry.args) {
      if (rest.length === 0) break;
      for (const word of arg.prefix ?? []) expect(rest.shift()).toBe(word);
      // A command that takes its words as typed (key add) gets the whole rest in its last value.
      const last = arg === entry.args[entry.args.length - 1];
      add(arg.name, last && entry.command.rawWords ? rest.splice(0).join(' ') : rest.shift()!);
    }
  } else if (rest.length) add('args', rest.splice(0).join(' '));
  expect(rest).toEqual([]);
  for (const [name, value] of Object.entries(values)) add(name, value as string | boolean);
  if (cmd) add('command', commandText(cmd)!);
  return out;
}

describe('the command catalogue reaches every adapter', () => {
  it('names an example for every command and every admin action', () => {
    expect(walk.map((w) => label(w.entry))).toEqual(
      expect.arrayContaining(['help', 'run', 'queue', 'admin run-job', 'admin quota', 'admin audit', 'admin hosts', 'admin drain', 'admin undrain']),
    );
    for (const { entry, examples } of walk) expect(examples, label(entry)).not.toEqual([]);
    // And every example belongs to exactly one entry: an action missing from the catalogue shows here.
    for (const spec of catalogue().map((e) => e.command)) {
      for (const x of spec.examples) expect(walk.filter((w) => w.examples.includes(x)).length, x).toBe(1);
    }
  });

  it('console: every example typed at the prompt reaches the port as typed', async () => {
    const port = recordingPort();
    const input = new PassThrough();
    const output = new PassThrough();
    output.resume();
    const adapter = new ConsoleAdapter('alice', { input, output });
    await adapter.start(port);
    const all = walk.flatMap((w) => w.examples.map((x) => ({ entry: w.entry, x })));
    for (const { x } of all) input.write(`${x}\n`);
    input.end();
    await adapter.done;
    expect(port.received.map((r) => r.input)).toEqual(all.map((a) => a.x));
    for (const [i, { entry, x }] of all.entries()) {
      const request = parsed(port.received[i]!.input);
      expect(request.command, x).toBe(entry.command.name);
      if (entry.action) expect((request as { action?: string }).action, x).toBe(entry.action.name);
    }
    expect(port.received.every((r) => r.who.platform === 'console' && r.who.id === 'alice')).toBe(true);
    expect(port.notifiers).toEqual(['console']);
  });

  describe('over the chat stand-ins', () => {
    let slack: SlackStandin;
    let discord: DiscordStandin;
    let slackAdapter: SlackAdapter;
    let discordAdapter: DiscordAdapter;
    const slackPort = recordingPort();
    const discordPort = recordingPort();

    beforeAll(async () => {
      slack = await startSlackStandin({ users: { U1: { name: 'alice' } } });
      discord = await startDiscordStandin({ users: { D1: { username: 'alice' } } });
      slackAdapter = new SlackAdapter({ botToken: slack.botToken, appToken: slack.appToken, port: 0, apiUrl: slack.apiUrl, retries: 0 }, silentLogger());
      discordAdapter = new DiscordAdapter({ token: discord.token, appId: discord.appId, guildId: discord.guildId, apiUrl: discord.apiUrl }, silentLogger());
      await slackAdapter.start(slackPort);
      await slack.waitForSocket();
      await discordAdapter.start(discordPort);
    });
    afterAll(async () => {
      await slackAdapter?.stop();
      await discordAdapter?.stop();
      await slack?.close();
      await discord?.close();
    });

    it('Slack: every example as /gpu text reaches the port and parses to its command', async () => {
      for (const { entry, examples } of walk) {
        for (const x of examples) {
          const { payload, responseId } = slack.slashCommand({ userId: 'U1', text: x });
          await slack.sendEnvelope('slash_commands', payload);
          await slack.waitForResponse(responseId);
          const last = slackPort.received.at(-1)!;
          expect(last.who).toMatchObject({ platform: 'slack', id: 'U1' });
          expect(parsed(last.input), x).toEqual(parseCommand(x));
          expect(parsed(last.input).command).toBe(entry.command.name);
        }
      }
    });

    it('Slack: the launch form asks for the run options with the choices the catalogue names', async () => {
      const { payload } = slack.slashCommand({ userId: 'U1', text: 'run' });
      await slack.sendEnvelope('slash_commands', payload);
      const opened = await slack.waitForCall('views.open');
      const view = (typeof opened.view === 'string' ? JSON.parse(opened.view) : opened.view) as { blocks: { block_id: string; element: { options?: { value: string }[] } }[] };
      const options = (id: string) => view.blocks.find((b) => b.block_id === id)!.element.options!.map((o) => o.value);
      expect(view.blocks.map((b) => b.block_id)).toEqual(['image', 'gpus', 'host', 'hours', 'name', 'command']);
      expect(options('image')).toEqual((await slackPort.choices('image')).map((c) => c.value));
      expect(options('host')).toEqual(['any', 'gpu2', 'gpu1']);
      expect(options('gpus')).toEqual(['1', '2', '3']); // up to the most free on one host
    });

    it('Discord: the registered tree has a subcommand for every entry, and each example arrives as the same request', async () => {
      const tree = discord.commands(discord.guildId).find((c) => c.name === 'gpu');
      for (const { entry, examples } of walk) {
        const [group, sub] = entry.words.length === 2 ? entry.words : [undefined, entry.words[0]];
        const parent = group ? tree.options.find((o: { name: string; type: number }) => o.type === 2 && o.name === group)?.options : tree.options;
        expect(
          parent?.some((o: { name: string; type: number }) => o.type === 1 && o.name === sub),
          label(entry),
        ).toBe(true);
        for (const x of examples) {
          const before = discordPort.received.length;
          const sent = discord.dispatchInteraction(discord.slashCommand({ userId: 'D1', subcommandGroup: group, subcommand: sub, options: discordOptions(entry, x) }));
          await sent.callback;
          await discord.waitForOriginal(sent.token, (m) => (m.embeds?.length ?? 0) > 0);
          expect(discordPort.received.length).toBe(before + 1);
          const last = discordPort.received.at(-1)!;
          expect(last.who).toMatchObject({ platform: 'discord', id: 'D1' });
          expect(parsed(last.input), x).toEqual(parseCommand(x));
        }
      }
      expect(discord.violations).toEqual([]);
    });
  });
});
