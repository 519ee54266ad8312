import type { Readable } from 'node:stream';
import type { HostConfig } from '../config/schema.js';
import type { CommandOutput } from './nvidia-smi.js';
import type { ContainerRuntime } from './runtime.js';

export interface HostConnectionState {
  state: 'connecting' | 'up' | 'down' | 'closed';
  lastError?: string;
}

/** One GPU machine, local or over SSH: the same interface either way. */
export interface GpuHost {
  readonly name: string;
  readonly config: HostConfig;
  /** Its containers: the only way the rest of gpubot reaches the host's container engine. */
  readonly runtime: ContainerRuntime;
  connection(): HostConnectionState;
  /** Runs a fixed argv (never a shell string built from input); exit code returned, not thrown. */
  run(argv: string[], timeoutMs: number): Promise<CommandOutput>;
  /** Runs a fixed argv whose stdout is streamed (a tar of a directory), for as long as it takes. */
  runStream(argv: string[], openTimeoutMs: number): Promise<StreamedCommand>;
  close(): void;
}

/** A command whose output is read as a stream; `done` settles when it exits. */
export interface StreamedCommand {
  stdout: Readable;
  done: Promise<{ code: number | null; stderr: string }>;
  /** Ends the command early (closes the channel, or kills the process). */
  close(): void;
}
