import type { HostSnapshot } from '../core/cluster.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { withTimeout } from './errors.js';
import type { GpuHost } from './gpu-host.js';
import { assembleSnapshot, containersOfPids, type RunningContainer } from './gpu-probe.js';
import type { ContainerSummary, RuntimeEvent } from './runtime.js';
import { APPS_QUERY, GPU_QUERY, parseGpus, parseProcesses, splitCombined, type SmiGpu, type SmiProcess, type SmiResult } from './nvidia-smi.js';

const FRAME_END = '::gpubot-frame';
/**
 * The sampling loop: both fixed queries, each exit code kept, then a frame mark, then a sleep of
 * "$1" seconds. The script is a constant; the only argument is a number the config validated.
 */
const LOOP_SCRIPT = `while :; do ${GPU_QUERY.join(' ')}; echo "::gpubot-exit $?"; ${APPS_QUERY.join(' ')}; echo "::gpubot-exit $?"; echo "${FRAME_END}"; sleep "$1" || exit 1; done`;
export const monitorArgv = (intervalMs: number): string[] => ['sh', '-c', LOOP_SCRIPT, 'gpubot-monitor', (intervalMs / 1000).toFixed(3)];

/** The full-rate history kept in memory per host. */
export const WINDOW_MS = 10 * 60_000;
const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 10_000;
/** How long a die event looks back for a kill event (docker stop waits up to its timeout before SIGKILL). */
const KILL_MEMORY_S = 300;

export interface GpuReading {
  utilization: number | null;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
}

/** One sample of every GPU on a host; `gpus` null when nvidia-smi failed (unknown, not idle). */
export interface Frame {
  at: number;
  gpus: Map<number, GpuReading> | null;
}

/** One minute's mean (and peak utilization) of one GPU, for the GpuSample table. */
export interface MinuteMean {
  host: string;
  gpuIndex: number;
  at: Date;
  utilization: number | null;
  utilizationMax: number | null;
  memoryUsedMiB: number | null;
  samples: number;
}

export interface ContainerEvent {
  host: string;
  action: 'start' | 'die' | 'oom' | 'destroy' | 'kill';
  id: string;
  /** Docker's name for it. */
  name: string;
  /** Its labels (with Docker's own attributes: name, image, exitCode). */
  labels: Record<string, string>;
  exitCode?: number;
  /** die: an OOM event came for this container before it died. */
  oom?: boolean;
  /** die: someone killed or stopped it (a kill event came first): not a crash. */
  killed?: boolean;
  /** The daemon's time, seconds. */
  time: number;
}

export interface MonitorHooks {
  onEvent?: (e: ContainerEvent) => void;
  /** After the events stream (re)connects: every gpubot container the host has, running or not. */
  onResync?: (host: string, containers: ContainerSummary[]) => void;
  onMinute?: (rows: MinuteMean[]) => void;
}

export interface MonitorOptions {
  intervalMs: number;
  /** timeouts.hostMs: how long a channel may take to open. */
  hostMs: number;
  log: Logger;
  hooks: MonitorHooks;
}

interface Sample {
  at: number;
  seq: number;
  gpus: SmiResult<SmiGpu[]>;
  procs: SmiResult<SmiProcess[]>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * The live feed of one host over its kept connection: an exec channel that samples nvidia-smi
 * every intervalMs, and Docker's event stream. Either restarts with backoff when it breaks; after
 * the events stream reconnects it asks for the events it missed (since the last one seen) and
 * lists the containers again.
 */
export class HostMonitor {
  private closed = false;
  private sample: Sample | undefined;
  private seq = 0;
  private readonly frames: Frame[] = [];
  private readonly pidContainers = new Map<number, string | null>();
  private containers = new Map<string, RunningContainer>();
  private containersVersion = 0;
  /** Docker answered at least once; false while it never did. */
  private dockerSynced = false;
  private dockerError: string | undefined;
  private lastEventTime: number | undefined;
  private readonly kills = new Map<string, number>();
  private readonly ooms = new Map<string, number>();
  private minute: { at: number; byGpu: Map<number, { n: number; sumU: number; nU: number; maxU: number | null; sumM: number; nM: number }> } | undefined;
  private current: { close(): void } | undefined;
  private stopEvents: (() => void) | undefined;
  private firstSample: Promise<void>;
  private resolveFirst!: () => void;
  private cache: { key: string; snapshot: HostSnapshot } | undefined;
  /** Channel restarts and event-stream reconnects (for tests and the benchmark). */
  readonly restarts = { sampler: 0, events: 0 };

  constructor(
    readonly host: GpuHost,
    private readonly options: MonitorOptions,
  ) {
    this.firstSample = new Promise((r) => (this.resolveFirst = r));
  }

  private readonly startedAt = Date.now();

  start(): void {
    void this.samplerLoop();
    void this.eventsLoop();
  }

  close(): void {
    this.closed = true;
    this.current?.close();
    this.stopEvents?.();
    this.flushMinute();
    this.resolveFirst();
  }

  /** Resolves at the first sample (or close); callers bound it with their own deadline. */
  waitForSample(): Promise<void> {
    return this.firstSample;
  }

  get intervalMs(): number {
    return this.options.intervalMs;
  }

  /** A sample older than this is stale (shown with its age). */
  get staleAfterMs(): number {
    return 2 * this.options.intervalMs;
  }

  /** A sample older than this no longer stands for the GPUs: they are unknown. */
  get unknownAfterMs(): number {
    return 5 * this.options.intervalMs + this.options.hostMs;
  }

  sampleAge(now = Date.now()): number | undefined {
    return this.sample ? now - this.sample.at : undefined;
  }

  /** Whether the live state can stand in for a probe: a fresh sample and Docker in sync. */
  fresh(maxAgeMs: number, now = Date.now()): boolean {
    return this.sample !== undefined && now - this.sample.at <= maxAgeMs && this.dockerSynced && this.dockerError === undefined && this.host.connection().state === 'up';
  }

  /** The full-rate samples kept in memory (the last 10 minutes), oldest first. */
  history(): readonly Frame[] {
    return this.frames;
  }

  /** The host as the live feed shows it now; never waits. The result is shared: read-only. */
  snapshot(now = Date.now()): HostSnapshot {
    const name = this.host.name;
    const conn = this.host.connection();
    if (conn.state === 'closed' || conn.down) return { name, state: 'down', error: conn.lastError ?? 'not connected', gpus: null, tookMs: 0 };
    if (conn.state !== 'up') {
      const error = conn.neverUp && !conn.lastError ? 'connecting to the host' : `reconnecting${conn.lastError ? ` (${conn.lastError})` : ''}`;
      return { name, state: 'connecting', error, gpus: null, tookMs: 0 };
    }
    const sample = this.sample;
    if (!sample) {
      if (now - this.startedAt <= this.unknownAfterMs) return { name, state: 'connecting', error: 'waiting for the first GPU sample', gpus: null, tookMs: 0 };
      return { name, state: 'stale', gpus: null, gpuError: 'no GPU sample yet: nvidia-smi does not answer', tookMs: 0 };
    }
    const age = now - sample.at;
    if (age > this.unknownAfterMs) {
      return { name, state: 'stale', gpus: null, gpuError: `no GPU sample for ${Math.round(age / 1000)} s: nvidia-smi does not answer`, sampleAgeMs: age, tookMs: 0 };
    }
    const dockerError = this.dockerError ?? (this.dockerSynced ? undefined : 'Docker has not answered yet');
    const key = `${sample.seq}:${this.containersVersion}:${dockerError ?? ''}`;
    if (this.cache?.key !== key) this.cache = { key, snapshot: assembleSnapshot(name, sample, this.containers.values(), this.pidContainers, dockerError) };
    if (age <= this.staleAfterMs) return this.cache.snapshot;
    return { ...this.cache.snapshot, state: 'stale', sampleAgeMs: age };
  }

  // ------------------------------------------------------------------------------------------
  // nvidia-smi sampling

  private async samplerLoop(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    let silentRestarts = 0;
    while (!this.closed) {
      let gotFrame = false;
      try {
        if (!(await this.host.waitUp(this.options.hostMs))) throw new Error('host not connected');
        const stream = await this.host.stream(monitorArgv(this.options.intervalMs), this.options.hostMs);
        if (this.closed) {
          stream.close();
          break;
        }
        this.current = stream;
        let buffer = '';
        let frame: string[] = [];
        let processing = Promise.resolve();
        let pending: string[] | undefined;
        let lastFrameAt = Date.now();
        const handle = (lines: string[]) => {
          // One frame at a time; if frames pile up behind a slow PID lookup, only the newest is kept.
          if (pending) {
            pending = lines;
            return;
          }
          pending = lines;
          processing = processing.then(async () => {
            while (pending) {
              const next = pending;
              await this.onFrame(next).catch((err) => this.options.log.warn({ host: this.host.name, err: errorMessage(err) }, 'could not read a GPU sample'));
              if (pending === next) pending = undefined;
            }
          });
        };
        stream.stdout.on('data', (chunk: Buffer) => {
          buffer += chunk.toString('utf8');
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (line === FRAME_END) {
              gotFrame = true;
              lastFrameAt = Date.now();
              backoff = MIN_BACKOFF_MS;
              handle(frame);
              frame = [];
            } else if (frame.length < 10_000) frame.push(line);
          }
          if (buffer.length > 1_000_000) buffer = '';
        });
        // A loop that stops answering (nvidia-smi hung) is closed and started again, less and less often.
        let giveUp!: () => void;
        const closedByWatchdog = new Promise<void>((r) => (giveUp = r));
        const watchdog = setInterval(() => {
          if (Date.now() - lastFrameAt > this.unknownAfterMs + silentRestarts * this.unknownAfterMs) {
            silentRestarts = Math.min(silentRestarts + 1, 10);
            stream.close();
            giveUp();
          }
        }, this.options.intervalMs);
        watchdog.unref();
        // Closed by the watchdog: a hung command may keep the channel open; it is left behind.
        await Promise.race([stream.ended, closedByWatchdog]).finally(() => clearInterval(watchdog));
        if (gotFrame && Date.now() - lastFrameAt < this.unknownAfterMs) silentRestarts = 0;
        this.current = undefined;
      } catch (err) {
        if (!this.closed) this.options.log.debug({ host: this.host.name, err: errorMessage(err) }, 'GPU sampler could not start');
      }
      if (this.closed) break;
      this.restarts.sampler++;
      if (!gotFrame) backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      await sleep(backoff * (0.8 + Math.random() * 0.4));
    }
  }

  private async onFrame(lines: string[]): Promise<void> {
    const at = Date.now();
    const [gpuOut, appsOut] = splitCombined({ code: 0, stdout: lines.join('\n'), stderr: '' });
    const gpus = parseGpus(gpuOut);
    const procs = parseProcesses(appsOut);
    const pids = new Set(gpus.ok && procs.ok ? procs.value.map((p) => p.pid) : []);
    for (const pid of this.pidContainers.keys()) if (!pids.has(pid)) this.pidContainers.delete(pid);
    const unknown = [...pids].filter((p) => !this.pidContainers.has(p));
    if (unknown.length) {
      const found = await containersOfPids(this.host, unknown, this.options.hostMs);
      for (const [pid, id] of found) this.pidContainers.set(pid, id);
      // Events cover gpubot's containers only: a process in another container started since is named from a fresh list.
      if ([...found.values()].some((id) => id !== null && !this.containers.has(id))) {
        const running = await this.host.runtime.listRunning().catch(() => null);
        if (running) {
          this.containers = new Map(running.map((c) => [c.id, { id: c.id, name: c.name, labels: c.labels }]));
          this.containersVersion++;
        }
      }
    }
    this.sample = { at, seq: ++this.seq, gpus, procs };
    this.record(at, gpus.ok ? gpus.value : null);
    this.resolveFirst();
  }

  private record(at: number, gpus: SmiGpu[] | null): void {
    this.frames.push({
      at,
      gpus: gpus ? new Map(gpus.map((g) => [g.index, { utilization: g.utilization, memoryUsedMiB: g.memoryUsedMiB, memoryTotalMiB: g.memoryTotalMiB }])) : null,
    });
    while (this.frames.length && this.frames[0]!.at < at - WINDOW_MS) this.frames.shift();

    const minuteAt = Math.floor(at / 60_000) * 60_000;
    if (this.minute && this.minute.at !== minuteAt) this.flushMinute();
    this.minute ??= { at: minuteAt, byGpu: new Map() };
    for (const g of gpus ?? []) {
      const m = this.minute.byGpu.get(g.index) ?? { n: 0, sumU: 0, nU: 0, maxU: null, sumM: 0, nM: 0 };
      m.n++;
      if (g.utilization !== null) {
        m.sumU += g.utilization;
        m.nU++;
        m.maxU = Math.max(m.maxU ?? 0, g.utilization);
      }
      if (g.memoryUsedMiB !== null) {
        m.sumM += g.memoryUsedMiB;
        m.nM++;
      }
      this.minute.byGpu.set(g.index, m);
    }
  }

  private flushMinute(): void {
    const m = this.minute;
    this.minute = undefined;
    if (!m || m.byGpu.size === 0) return;
    const rows: MinuteMean[] = [...m.byGpu].map(([gpuIndex, v]) => ({
      host: this.host.name,
      gpuIndex,
      at: new Date(m.at),
      utilization: v.nU ? v.sumU / v.nU : null,
      utilizationMax: v.maxU,
      memoryUsedMiB: v.nM ? v.sumM / v.nM : null,
      samples: v.n,
    }));
    try {
      this.options.hooks.onMinute?.(rows);
    } catch (err) {
      this.options.log.warn({ host: this.host.name, err: errorMessage(err) }, 'could not keep GPU minute means');
    }
  }

  // ------------------------------------------------------------------------------------------
  // Docker events

  private async eventsLoop(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    while (!this.closed) {
      try {
        if (!(await this.host.waitUp(this.options.hostMs))) throw new Error('host not connected');
        // Events that arrive while the lists are being read are applied after them.
        const early: RuntimeEvent[] = [];
        let listed = false;
        let streamEnded!: () => void;
        const ended = new Promise<void>((r) => (streamEnded = r));
        // Missed events are asked for again after a gap; handlers are idempotent, repeats are harmless.
        const since = this.lastEventTime !== undefined ? { since: new Date(this.lastEventTime * 1000) } : {};
        const stop = await withTimeout(
          this.host.runtime.events(
            (e) => (listed ? this.onEvent(e) : early.push(e)),
            () => streamEnded(),
            since,
          ),
          this.options.hostMs,
          'opening the Docker event stream',
        );
        if (this.closed) {
          stop();
          break;
        }
        this.stopEvents = stop;
        const [running, managed] = await Promise.all([this.host.runtime.listRunning(), this.host.runtime.listManaged()]);
        this.containers = new Map(running.map((c) => [c.id, { id: c.id, name: c.name, labels: c.labels }]));
        this.containersVersion++;
        this.dockerSynced = true;
        this.dockerError = undefined;
        listed = true;
        for (const e of early) this.onEvent(e);
        backoff = MIN_BACKOFF_MS;
        try {
          this.options.hooks.onResync?.(this.host.name, managed);
        } catch (err) {
          this.options.log.warn({ host: this.host.name, err: errorMessage(err) }, 'resync failed');
        }
        await ended;
        this.stopEvents = undefined;
      } catch (err) {
        if (!this.closed) {
          this.dockerError = `Docker is unreachable: ${errorMessage(err)}`;
          this.options.log.debug({ host: this.host.name, err: errorMessage(err) }, 'Docker event stream could not start');
        }
      }
      if (this.closed) break;
      this.restarts.events++;
      // Until the stream is back, who holds what may miss changes: the live state is not fresh.
      this.dockerError ??= 'Docker events are reconnecting';
      this.containersVersion++;
      await sleep(backoff * (0.8 + Math.random() * 0.4));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }

  private onEvent(raw: RuntimeEvent): void {
    const action = raw.action as ContainerEvent['action'];
    const id = raw.containerId;
    if (!id || !['start', 'die', 'oom', 'destroy', 'kill'].includes(action)) return;
    const labels = raw.attributes;
    const time = Math.floor(raw.at.getTime() / 1000);
    this.lastEventTime = Math.max(this.lastEventTime ?? 0, time);
    const event: ContainerEvent = { host: this.host.name, action, id, name: raw.name || id.slice(0, 12), labels, time };
    if (action === 'start') {
      // A kill or OOM before an earlier run says nothing about this one.
      this.kills.delete(id);
      this.ooms.delete(id);
      this.containers.set(id, { id, name: event.name, labels });
      this.containersVersion++;
    } else if (action === 'kill') this.kills.set(id, time);
    else if (action === 'oom') this.ooms.set(id, time);
    else {
      if (this.containers.delete(id)) this.containersVersion++;
      if (action === 'die') {
        const code = Number(labels.exitCode);
        event.exitCode = Number.isInteger(code) ? code : undefined;
        event.oom = (this.ooms.get(id) ?? -Infinity) >= time - KILL_MEMORY_S;
        event.killed = (this.kills.get(id) ?? -Infinity) >= time - KILL_MEMORY_S;
      }
      if (action === 'destroy') {
        this.kills.delete(id);
        this.ooms.delete(id);
      }
    }
    try {
      this.options.hooks.onEvent?.(event);
    } catch (err) {
      this.options.log.warn({ host: this.host.name, err: errorMessage(err) }, 'a container event handler failed');
    }
  }
}
