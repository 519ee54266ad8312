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
  close(): void;
}
