import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import { logContext } from './log-context.js';

export type { Logger };

export interface LoggerOptions {
  /**
   * Human-readable lines instead of JSON. Default: when logging to stderr and stderr is a
   * terminal; files, containers and CI get JSON lines.
   */
  pretty?: boolean;
}

/**
 * JSON logs; keys that may hold secrets are redacted wherever they appear. Lines logged while a
 * command or job runs carry its user, command, host and job (log-context.ts).
 */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: NodeJS.WritableStream, options: LoggerOptions = {}): Logger {
  const human = options.pretty ?? (destination === undefined && process.stderr.isTTY === true);
  // Loaded only for a terminal: JSON runs (services, CI, one-shot chat) start without it.
  const pretty = human ? (createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty) : undefined;
  const out = pretty
    ? pretty({ destination: destination ?? 2, sync: true, colorize: destination === undefined, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname,app' })
    : (destination ?? pino.destination({ dest: 2, sync: false }));
  return pino(
    {
      level,
      base: { app: 'gpubot' },
      mixin: logContext,
      redact: {
        paths: ['token', 'privateKey', 'password', 'passphrase', 'secret', 'appToken', 'botToken', 'signingSecret', '*.token', '*.privateKey', '*.password', '*.secret'],
        censor: '[redacted]',
      },
    },
    out,
  );
}

/** For tests and one-shot CLI runs. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
