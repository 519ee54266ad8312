import type Docker from 'dockerode';
import type { HostConfig } from '../config/schema.js';
import type { CommandOutput } from './nvidia-smi.js';

export interface HostConnectionState {
  state: 'connecting' | 'up' | 'down' | 'closed';
  lastError?: string;
}

/** One GPU machine, local or over SSH: the same interface either way. */
export interface GpuHost {
  readonly name: string;
  readonly config: HostConfig;
  readonly docker: Docker;
  connection(): HostConnectionState;
  /** Runs a fixed argv (never a shell string built from input); exit code returned, not thrown. */
  run(argv: string[], timeoutMs: number): Promise<CommandOutput>;
  close(): void;
}
