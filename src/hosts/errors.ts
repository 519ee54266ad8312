export class HostDownError extends Error {
  override name = 'HostDownError';
  constructor(readonly host: string, reason: string) {
    super(`${host} is down: ${reason}`);
  }
}

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Rejects after `ms`; the work itself is left to finish or fail on its own. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
