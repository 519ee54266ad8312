// Who and what a log line is about, carried through async calls: every line logged while a
// command runs gets its user, command and (once known) host, without passing a logger down.
//
//   await withLogContext({ user: 'alice', command: 'run' }, () => work());
//   setLogHost('gpu1');   // inside: later lines of this command say host=gpu1

import { AsyncLocalStorage } from 'node:async_hooks';

export interface LogContext {
  user?: string;
  command?: string;
  host?: string;
  job?: string;
}

const storage = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(context: LogContext, work: () => Promise<T>): Promise<T> {
  return storage.run({ ...storage.getStore(), ...context }, work);
}

/** The host the current command turned out to act on (placement, a container's host). */
export function setLogHost(host: string): void {
  const current = storage.getStore();
  if (current) current.host = host;
}

/** The fields for the current line (pino's mixin); empty outside any command or job. */
export function logContext(): LogContext {
  const current = storage.getStore();
  return current ? { ...current } : {};
}
