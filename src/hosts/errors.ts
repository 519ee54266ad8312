/**
 * What can go wrong when gpubot asks a host for something, as types callers can switch on
 * (never on message text). The messages are what a chat user reads.
 */

/** The host (its SSH connection, or its container engine) cannot be reached now. */
export class HostUnavailable extends Error {
  override name = 'HostUnavailable';
  constructor(
    readonly host: string,
    readonly reason: string,
    message = `${host} is down: ${reason}`,
  ) {
    super(message);
  }
}

/** The host answered, slower than the timeout policy allows; the call may still finish there. */
export class Timeout extends Error {
  override name = 'Timeout';
}

/** The host says there is no such container. */
export class ContainerNotFound extends Error {
  override name = 'ContainerNotFound';
  constructor(
    readonly host: string,
    readonly container: string,
  ) {
    super(`${container} does not exist on ${host}`);
  }
}

/** The host has no image of that name (create does not pull). */
export class ImageMissing extends Error {
  override name = 'ImageMissing';
  constructor(
    readonly host: string,
    readonly image: string,
    message: string,
  ) {
    super(message);
  }
}

/** The container's network is gone, or its name matches more than one network (Docker's words kept). */
export class NetworkUnusable extends Error {
  override name = 'NetworkUnusable';
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(message);
  }
}

/** Stop asked of a container that was not running. */
export class AlreadyStopped extends Error {
  override name = 'AlreadyStopped';
  constructor(
    readonly host: string,
    readonly container: string,
  ) {
    super(`${container} on ${host} is already stopped`);
  }
}

/** The host could open no TCP connection to that address and port (nothing listens there, say). */
export class ConnectionRefused extends Error {
  override name = 'ConnectionRefused';
  constructor(
    readonly host: string,
    readonly target: string,
    reason: string,
  ) {
    super(`${host} could not connect to ${target}: ${reason}`);
  }
}

/** Rejects with a Timeout after `ms`; the work itself is left to finish or fail on its own. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
