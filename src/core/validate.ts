/** Validation of every value that can come from chat, before anything touches a host. */
import type { RefusalCode } from './reply.js';

/** A bad value from chat, or a refusal thrown from deep inside a command; `code` says which. */
export class InputError extends Error {
  override name = 'InputError';
  constructor(
    message: string,
    readonly code: RefusalCode = 'invalid',
  ) {
    super(message);
  }
}

const HOST = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const CONTAINER = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
// Docker's reference grammar, simplified: [registry[:port]/]path[:tag][@digest]
const IMAGE =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

export function hostName(value: string): string {
  if (!HOST.test(value)) throw new InputError(`"${printable(value)}" is not a host name (lowercase letters, digits and -)`);
  return value;
}

/** A gpubot user handle (also a directory name on the hosts). */
export function handle(value: string): string {
  if (!/^[a-z0-9](?:[a-z0-9-]{0,34}[a-z0-9])?$/.test(value)) throw new InputError(`"${printable(value)}" is not a user handle (lowercase letters, digits and -)`);
  return value;
}

export function containerName(value: string): string {
  if (!CONTAINER.test(value)) throw new InputError(`"${printable(value)}" is not a valid name (letters, digits, _ . -, at most 63, starting with a letter or digit)`);
  return value;
}

export function imageRef(value: string): string {
  if (value.length > 255 || !IMAGE.test(value)) throw new InputError(`"${printable(value)}" is not an image reference like pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime`);
  return value;
}

export function integer(value: string, what: string, min: number, max: number): number {
  if (!/^\d{1,7}$/.test(value)) throw new InputError(`${what} must be a whole number from ${min} to ${max}, not "${printable(value)}"`);
  const n = Number(value);
  if (n < min || n > max) throw new InputError(`${what} must be from ${min} to ${max}, not ${n}`);
  return n;
}

export function hours(value: string, max = 24 * 365): number {
  if (!/^\d{1,5}(?:\.\d{1,2})?$/.test(value)) throw new InputError(`hours must be a positive number like 8 or 1.5, not "${printable(value)}"`);
  const n = Number(value);
  if (n <= 0 || n > max) throw new InputError(`hours must be more than 0 and at most ${max}, not ${n}`);
  return n;
}

const UNITS = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;

/** Bytes of a size like 8g, 512m or 64k (the unit is required). */
export function sizeBytes(value: string): number {
  const m = /^(\d{1,6})([kmg])$/i.exec(value);
  if (!m) return NaN;
  return Number(m[1]) * UNITS[m[2]!.toLowerCase() as keyof typeof UNITS];
}

/** Shared-memory size for /dev/shm, e.g. 8g; PyTorch DataLoaders need far more than Docker's 64m. */
export function shmSize(value: string): string {
  const bytes = sizeBytes(value);
  if (Number.isNaN(bytes)) throw new InputError(`shm size must look like 8g or 512m, not "${printable(value)}"`);
  // /dev/shm is RAM: a bound keeps one container from claiming a host's memory.
  if (bytes < 64 * 1024 ** 2 || bytes > 64 * 1024 ** 3) throw new InputError('shm size must be between 64m and 64g');
  return value.toLowerCase();
}

/** The command run inside the container: an argv array handed to Docker, never to a shell. */
export function containerCommand(argv: string[]): string[] {
  if (argv.length > 256) throw new InputError('the command has too many arguments (at most 256)');
  const total = argv.reduce((n, a) => n + a.length, 0);
  if (total > 8192) throw new InputError('the command is too long (at most 8192 characters)');
  for (const a of argv) if (/[\0]/.test(a)) throw new InputError('the command contains a NUL character');
  return argv;
}

/** Shows hostile input back safely: no control characters, bounded length. */
export function printable(value: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}
