#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8';
import { App } from '../app.js';
import { ConsoleAdapter, runOnce } from '../adapters/console/console-adapter.js';
import { adapterFactories, fallbackAdapterFactory } from '../adapters/registry.js';
import type { ChatAdapter } from '../adapters/adapter.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { isFailure } from '../core/reply.js';
import { createLogger } from '../log.js';
import { databaseUrl } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { backupDatabase } from '../db/backup.js';
import { startOpsServer } from '../http/ops-server.js';
import { errorMessage } from '../util/errors.js';

const USAGE = `gpubot: share GPU servers from Slack, Discord or a terminal.

Usage:
  gpubot start                      start every configured chat adapter (the console one when no chat token is set)
  gpubot chat --user NAME MESSAGE   run one command as NAME and print the reply (exit 0 done, 1 refused or failed)
  gpubot chat --user NAME           an interactive console as NAME
  gpubot migrate                    apply pending database migrations
  gpubot backup FILE                a consistent copy of the SQLite database, safe while the bot runs
  gpubot help                       this text

Config: $GPUBOT_CONFIG or ./gpubot.yaml; database: $DATABASE_URL (default file:./data/gpubot.db).`;

/** How long SIGTERM waits for commands in flight (a pull or launch) before closing anyway. */
const SHUTDOWN_GRACE_MS = 30_000;

/** `--user NAME` then the message: everything after it, so `chat --user a run --gpus 2` works unquoted. */
function chatArgs(args: string[]): { user?: string; message: string[] } {
  let user: string | undefined;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--user' || a === '-u') user = args[++i];
    else if (a.startsWith('--user=')) user = a.slice('--user='.length);
    else if (a === '--') {
      i++;
      break;
    } else break;
  }
  return { user, message: args.slice(i) };
}

// Prisma's query compiler is WebAssembly; V8's optimizing tier would keep a second, larger copy
// of its code (~15 MB resident) for no measurable speed-up. Read when the module compiles, at the
// first database open, so setting it here is in time (docs/BENCHMARKS.md, "Memory").
setFlagsFromString('--liftoff-only');

async function main(argv: string[]): Promise<number> {
  const [sub = 'help', ...rest] = argv;
  if (sub === 'help' || sub === '--help' || sub === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!['start', 'chat', 'migrate', 'backup'].includes(sub)) {
    process.stderr.write(`unknown command "${sub}"\n\n${USAGE}\n`);
    return 2;
  }

  const oneShot = sub === 'chat' && chatArgs(rest).message.length > 0;
  // One-shot runs keep stdout for the reply; logs go to stderr at warn unless asked otherwise.
  // So does an interactive console: only warnings and errors interleave with its prompt.
  const consoleAtTerminal = sub === 'start' && process.stdin.isTTY === true && !adapterFactories.some((f) => f.isConfigured(process.env));
  const log = createLogger(process.env.LOG_LEVEL ?? (sub === 'chat' || consoleAtTerminal ? 'warn' : 'info'));
  const { config, path } = await loadConfig();
  if (!path) log.warn('no gpubot.yaml found (set GPUBOT_CONFIG): starting with one host, "local", on this machine’s Docker socket');

  const url = databaseUrl();
  if (sub === 'backup') {
    const [file] = rest;
    if (!file) {
      process.stderr.write('gpubot backup needs a FILE to write\n');
      return 2;
    }
    const { bytes } = await backupDatabase(url, file);
    process.stdout.write(`wrote ${file} (${bytes} bytes)\n`);
    return 0;
  }
  if (sub === 'migrate') {
    const { applied } = await migrate(url, { log: (msg) => log.info(msg) });
    process.stdout.write(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}\n` : 'the database is up to date\n');
    return 0;
  }

  // `chat` may run beside a running bot: only `start` reconciles (another process's launches in
  // flight look abandoned from here).
  const app = await App.create({ config, log, databaseUrl: url, failpoint: process.env.GPUBOT_FAILPOINT, reconcileOnStart: sub === 'start' });
  try {
    if (sub === 'chat') {
      const { user, message } = chatArgs(rest);
      if (!user) {
        process.stderr.write('gpubot chat needs --user NAME\n');
        return 2;
      }
      if (oneShot) {
        // A host still connecting is not down: one command waits for the first attempt (at most the connect timeout).
        await app.pool.settled();
        const reply = await runOnce(app, user, message.length === 1 ? message[0]! : message, process.stdout);
        return isFailure(reply) ? 1 : 0;
      }
      const console = new ConsoleAdapter(user);
      await console.start(app);
      await console.done;
      return 0;
    }

    // start
    const env = process.env;
    const adapters: ChatAdapter[] = await Promise.all(adapterFactories.filter((f) => f.isConfigured(env)).map((f) => f.create(env, log)));
    if (adapters.length === 0) {
      log.info('no chat token is set: starting the console adapter');
      adapters.push(await fallbackAdapterFactory.create(env, log));
    }
    for (const a of adapters) await a.start(app);
    app.startJobs();
    await app.startGateway();
    const ops = config.http ? await startOpsServer(app, config.http.port, config.http.host) : undefined;
    if (config.http) log.info({ port: config.http.port }, 'health and metrics at /healthz and /metrics');
    log.info({ adapters: adapters.map((a) => a.name), hosts: app.pool.hostNames() }, 'gpubot started');
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      // The process ends when every adapter that can end by itself has.
      const ending = adapters.map((a) => a.done).filter((d): d is Promise<void> => d !== undefined);
      if (ending.length === adapters.length) void Promise.all(ending).then(stop);
    });
    log.info({ inFlight: app.busy }, 'shutting down');
    // Whatever hangs below (a library's close, a database that does not answer), the process ends.
    setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS + 15_000).unref();
    // A second signal does not wait.
    const force = () => process.exit(1);
    process.once('SIGTERM', force);
    process.once('SIGINT', force);
    // Stop taking commands and let those in flight finish (their answers still need the chat
    // connections), then stop the adapters; `finally` closes SSH and the database.
    ops?.close();
    const unfinished = await app.drain(SHUTDOWN_GRACE_MS);
    if (unfinished > 0) log.warn({ unfinished }, `gave up waiting for commands after ${SHUTDOWN_GRACE_MS / 1000} s`);
    await Promise.all(adapters.map((a) => a.stop()));
    log.info('stopped');
    return 0;
  } finally {
    await app.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Done: whatever handle a library left open (a socket being torn down) may not keep a
    // stopped bot running; the grace lets stdout and the logs flush first.
    setTimeout(() => process.exit(code), 3_000).unref();
  },
  (err) => {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `gpubot: ${errorMessage(err)}`}\n`);
    process.exitCode = 1;
    // An adapter that did connect before another failed must not keep the process up.
    setTimeout(() => process.exit(1), 3_000).unref();
  },
);
