import type { Duplex, Readable } from 'node:stream';
import type { HostConfig } from '../config/schema.js';
import type { CommandOutput } from './nvidia-smi.js';
import type { ContainerRuntime } from './runtime.js';

export interface HostConnectionState {
  state: 'connecting' | 'up' | 'down' | 'closed';
  lastError?: string;
  /** Failing for longer than timeouts.hostMs (a reconnect in progress before that is not "down"). */
  down?: boolean;
  /** When the current run of failures began. */
  failingSince?: number;
  /** Never connected yet. */
  neverUp?: boolean;
}

/** A long-running command's output as it comes (the live monitor's sampling loop). */
export interface CommandStream {
  stdout: NodeJS.ReadableStream;
  /** Ends the command (closes the channel or kills the process). */
  close(): void;
  /** Resolves when the command has ended, for whatever reason. */
  ended: Promise<void>;
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
  /** Starts a fixed argv whose output is read as it comes. */
  stream(argv: string[], timeoutMs: number): Promise<CommandStream>;
  /** Waits (at most timeoutMs) for the connection; false when the host is down or did not connect in time. */
  waitUp(timeoutMs: number): Promise<boolean>;
  /** Runs a fixed argv whose stdout is streamed (a tar of a directory), for as long as it takes. */
  runStream(argv: string[], openTimeoutMs: number): Promise<StreamedCommand>;
  /**
   * A TCP connection made by the host itself (to a container's bridge address): over SSH a
   * direct-tcpip channel, so the host's sshd connects. Rejects with ConnectionRefused when the host
   * could open no connection there.
   */
  connectTcp(address: string, port: number, timeoutMs: number): Promise<Duplex>;
  close(): void;
}

/** A command whose output is read as a stream; `done` settles when it exits. */
export interface StreamedCommand {
  stdout: Readable;
  done: Promise<{ code: number | null; stderr: string }>;
  /** Ends the command early (closes the channel, or kills the process). */
  close(): void;
}
