import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import type { ChatIdentity, ChatPort } from '../../core/port.js';
import { isFailure, type Reply } from '../../core/reply.js';
import type { ChatAdapter } from '../adapter.js';
import { renderText } from './render.js';

export interface ConsoleIO {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

/** A console user is who the terminal says they are (`--user NAME`). */
const consoleUser = (handle: string): ChatIdentity => ({ platform: 'console', id: handle, name: handle });

/** Runs one command as `handle` and prints the reply; progress lines as the work goes on. */
export async function runOnce(port: ChatPort, handle: string, message: string | string[], output: NodeJS.WritableStream): Promise<Reply> {
  const reply = await port.handle(consoleUser(handle), message, (line) => {
    output.write(`… ${line}\n`);
  });
  output.write(`${renderText(reply)}\n`);
  if (reply.image) output.write(`  Chart: ${saveImage(reply.image.png, reply.image.filename)}\n  (${reply.image.alt})\n`);
  return reply;
}

/** A terminal shows no pictures: the PNG goes to a fresh private folder, and its path is printed. */
function saveImage(png: Uint8Array, filename: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'gpubot-chart-')), filename.replace(/[^A-Za-z0-9._-]/g, '_'));
  writeFileSync(path, png, { mode: 0o600 });
  return path;
}

/** A terminal chat: each line is a command, as `/gpu ...` would be in Slack or Discord. */
export class ConsoleAdapter implements ChatAdapter {
  readonly name = 'console';
  private rl: Interface | undefined;
  private resolveDone!: () => void;
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    private readonly handle: string,
    private readonly io: ConsoleIO = { input: process.stdin, output: process.stdout },
  ) {}

  async start(port: ChatPort): Promise<void> {
    const { input, output } = this.io;
    const interactive = (input as NodeJS.ReadStream).isTTY === true;
    this.rl = createInterface({ input, output, prompt: `${this.handle}> `, terminal: interactive });
    // Notices for a person (their container ended, ...) are printed where the console runs.
    port.registerNotifier('console', async (user, message) => {
      output.write(`\n[for ${user}] ${renderText(message)}\n`);
    });
    output.write(`gpubot console: you are "${this.handle}". Type "help", or "quit" to leave.\n`);
    this.rl.prompt();
    let queue = Promise.resolve();
    this.rl.on('line', (line) => {
      // One command at a time, in order, as a person typing would expect.
      queue = queue
        .then(async () => {
          const text = line.trim();
          if (text === 'quit' || text === 'exit') return void this.rl?.close();
          if (text) {
            const reply = await runOnce(port, this.handle, text, output);
            if (isFailure(reply) && !interactive) process.exitCode = 1;
          }
        })
        // The port answers every command, failures included; only printing can fail here.
        .catch(() => {
          if (!interactive) process.exitCode = 1;
        })
        .finally(() => this.rl?.prompt());
    });
    this.rl.on('close', () => void queue.then(() => this.resolveDone()));
  }

  async stop(): Promise<void> {
    this.rl?.close();
    await this.done;
    // A closed readline only pauses its input; an open stdin pipe would keep the process alive.
    (this.io.input as { destroy?: () => void }).destroy?.();
  }
}
