import { pino, type Logger } from 'pino';
import { logContext } from './log-context.js';

export type { Logger };

/**
 * JSON logs; keys that may hold secrets are redacted wherever they appear. Lines logged while a
 * command or job runs carry its user, command, host and job (log-context.ts).
 */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', destination?: NodeJS.WritableStream): Logger {
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
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** For tests and one-shot CLI runs. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
