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
}

export interface ContainerDetails extends ContainerSummary {
  running: boolean;
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
   * called; `ended` is called once if the host ends the subscription (connection lost).
   */
  events(listener: (event: RuntimeEvent) => void, ended?: (err?: Error) => void): Promise<() => void>;
  hasImage(image: string): Promise<boolean>;
  /** Pulls an image, reporting progress now and then; abandoned when it shows no progress for a while. */
  pull(image: string, progress: ProgressSink): Promise<void>;
  listImages(): Promise<ImageSummary[]>;
  /** Removes dangling image layers; returns how many went. */
  pruneImages(): Promise<number>;
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
