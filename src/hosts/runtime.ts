import type { Readable } from 'node:stream';
import type { ProgressSink } from '../core/reply.js';
import { AlreadyStopped, ContainerNotFound } from './errors.js';
import type { LaunchSpec } from './container-spec.js';
import type { CommandOutput } from './nvidia-smi.js';

/** A container as a listing shows it. `name` is the engine's name; gpubot's own is labels[LABEL.name]. */
export interface ContainerSummary {
  id: string;
  name: string;
  /** The engine's word: running, exited, created, paused, ... */
  state: string;
  labels: Record<string, string>;
  /** The image as the container was created from (a reference or an image id). */
  image: string;
  createdAt: Date;
}

export interface ContainerDetails extends ContainerSummary {
  running: boolean;
  /** How the last run ended (set once it has run). */
  exitCode?: number;
  oomKilled?: boolean;
  startedAt?: Date;
  finishedAt?: Date;
  /** Its IPv4 addresses on its networks (where the host reaches it). */
  addresses: string[];
}

export interface ImageSummary {
  tags: string[];
  sizeBytes: number;
}

/** A managed container changed state on its host (created, start, die, stop, destroy, ...). */
export interface RuntimeEvent {
  action: string;
  containerId: string;
  name: string;
  /** The engine's attributes of the event: the container's labels, its image, an exit code, ... */
  attributes: Record<string, string>;
  at: Date;
}

/**
 * Everything the rest of gpubot asks of a host's container engine. Failures are typed
 * (src/hosts/errors.ts): HostUnavailable, Timeout, ContainerNotFound, AlreadyStopped; anything
 * else is the engine's own refusal, its message kept. Every call obeys RUNTIME_TIMEOUTS.
 */
export interface ContainerRuntime {
  /** Creates (does not start) gpubot's one container shape (container-spec.ts); returns its id. */
  create(spec: LaunchSpec): Promise<string>;
  /** Starts a container; one already running counts as started. */
  start(idOrName: string): Promise<void>;
  /** Stops a container (SIGTERM, then SIGKILL after the grace period). AlreadyStopped if it was not running. */
  stop(idOrName: string): Promise<void>;
  /** Removes a container, never its volumes. `force` removes a running one too. */
  remove(idOrName: string, options: { force: boolean }): Promise<void>;
  inspect(idOrName: string): Promise<ContainerDetails>;
  /** Every container labelled gpubot.managed, in any state. */
  listManaged(): Promise<ContainerSummary[]>;
  /** Every running container, gpubot's or not (to tell whose process holds a GPU). */
  listRunning(): Promise<ContainerSummary[]>;
  /** The last `tail` lines the container printed, stdout and stderr interleaved. */
  logs(idOrName: string, tail: number): Promise<string>;
  /** Runs a fixed argv inside a running container; the exit code is returned, not thrown. */
  exec(idOrName: string, argv: string[]): Promise<CommandOutput>;
  /**
   * Calls `listener` for each state change of a managed container until the returned stop() is
   * called; `ended` is called once if the host ends the subscription (connection lost). With
   * `since`, the events from then on are replayed first (after a gap: none is missed).
   */
  events(listener: (event: RuntimeEvent) => void, ended?: (err?: Error) => void, options?: { since?: Date }): Promise<() => void>;
  /**
   * Makes the bridge network `name` (with these labels) unless it exists. May answer from memory
   * that it exists; `recheck` asks the host (after create or start said it is gone or named twice).
   */
  ensureNetwork(name: string, labels: Record<string, string>, options?: { recheck?: boolean }): Promise<void>;
  hasImage(image: string): Promise<boolean>;
  /** Pulls an image, reporting progress now and then; abandoned when it shows no progress for a while. */
  pull(image: string, progress: ProgressSink): Promise<void>;
  listImages(): Promise<ImageSummary[]>;
  /** Removes dangling image layers; returns how many went. */
  pruneImages(): Promise<number>;
  /**
   * Builds an image from a tar context with the engine's classic builder, handing each message of
   * its progress stream to onMessage; resolves when the stream ends (a failed step is a message).
   */
  build(context: Readable, params: BuildParams, onMessage: (message: BuildMessage) => void, signal: AbortSignal): Promise<void>;
  /** An image's id, size and history (newest layer first). */
  imageFacts(ref: string): Promise<ImageFacts>;
  /** Removes an image tag, never forced: 'in-use' when a container was created from it. */
  removeImage(ref: string): Promise<'removed' | 'missing' | 'in-use'>;
  /** The image as a `docker save` tar stream. */
  saveImage(ref: string, signal: AbortSignal): Promise<Readable>;
  /** Loads a `docker save` tar stream. */
  loadImage(tar: Readable, signal: AbortSignal): Promise<void>;
}

/** What a build may set: the tag, the Dockerfile inside the context, ARG values and limits per step. */
export interface BuildParams {
  tag: string;
  dockerfile: string;
  buildArgs: Record<string, string>;
  memoryBytes: number;
  cpus: number;
}

/** One message of the classic builder's JSON stream. */
export interface BuildMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export interface ImageFacts {
  id: string;
  sizeBytes: number;
  history: { createdBy: string; sizeBytes: number }[];
}

/**
 * The one timeout policy for runtime calls. Listings feed status-like replies and answer within
 * the status budget (config timeouts.hostMs); an action on one container may take longer (a stop
 * waits out the grace period). A pull has no deadline, only a stall limit.
 */
export interface RuntimeTimeouts {
  listMs: number;
  actionMs: number;
  pruneMs: number;
  pullStallMs: number;
}

export const STOP_GRACE_SECONDS = 10;

export const runtimeTimeouts = (hostMs: number): RuntimeTimeouts => ({ listMs: hostMs, actionMs: 30_000, pruneMs: 60_000, pullStallMs: 120_000 });

/**
 * Makes sure a container is not running: 'stopped' when it is (now or already), 'gone' when the
 * host has no such container. Anything else (host down, timeout, engine refusal) is thrown.
 */
export async function ensureStopped(runtime: ContainerRuntime, idOrName: string): Promise<'stopped' | 'gone'> {
  try {
    await runtime.stop(idOrName);
  } catch (err) {
    if (err instanceof ContainerNotFound) return 'gone';
    if (!(err instanceof AlreadyStopped)) throw err;
  }
  return 'stopped';
}
