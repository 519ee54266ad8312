/** What the core knows about hosts and GPUs; the hosts layer fills these in. */

/**
 * up: a fresh sample; stale: the last sample is older than two intervals (a slow or stuck host,
 * never "down"); connecting: the first connection or a reconnect is in progress; down: the
 * connection has been failing for longer than timeouts.hostMs.
 */
export type HostState = 'up' | 'stale' | 'connecting' | 'down';

export interface GpuProcess {
  pid: number;
  name: string;
  usedMemoryMiB: number | null;
  /** Set when the process runs in a gpubot container. */
  owner?: string;
  container?: string;
  /** Set for a process that is in a container gpubot did not start. */
  foreignContainer?: string;
}

export interface GpuHolder {
  owner: string;
  /** Container name, or null for a reservation without a container. */
  container: string | null;
  /** The installation (label gpubot.instance) of the container, as the host reports it. */
  instance?: string;
  /** Held by a container of another gpubot installation: never touched, never handed out. */
  otherGpubot?: boolean;
}

export interface GpuView {
  index: number;
  uuid: string;
  model: string;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
  utilization: number | null;
  temperature: number | null;
  holders: GpuHolder[];
  /** Processes on this GPU that gpubot did not start. */
  unmanaged: GpuProcess[];
  /** Processes in gpubot containers. */
  managed: GpuProcess[];
}

export interface HostSnapshot {
  name: string;
  state: HostState;
  /** Why the host is down, or why its GPUs are unknown. */
  error?: string;
  /** null when nvidia-smi failed: the GPUs are unknown, not idle. */
  gpus: GpuView[] | null;
  gpuError?: string;
  /** Set when the host answers but its Docker daemon does not: holders are unknown. */
  dockerError?: string;
  drained?: boolean;
  tookMs: number;
  /** How old the GPU sample is (live feed); set when the host is stale. */
  sampleAgeMs?: number;
}

export interface ClusterView {
  hostNames(): string[];
  /** Every host at once; a down or slow host never delays the others past the timeout. */
  snapshot(hosts?: string[]): Promise<HostSnapshot[]>;
}
