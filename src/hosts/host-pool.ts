import type { Config } from '../config/schema.js';
import type { ClusterView, HostSnapshot } from '../core/cluster.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { withTimeout } from './errors.js';
import type { GpuHost } from './gpu-host.js';
import { probeHost } from './gpu-probe.js';
import { HostMonitor, type MonitorHooks } from './host-monitor.js';
import { LocalHost } from './local-host.js';
import { RemoteHost } from './remote-host.js';
import { runtimeTimeouts } from './runtime.js';

/** Every configured host, connected once at start and kept open, each with its live monitor. */
export class HostPool implements ClusterView {
  private readonly hosts = new Map<string, GpuHost>();
  private readonly monitors = new Map<string, HostMonitor>();
  private readonly startedAt = Date.now();
  private hooks: MonitorHooks = {};
  private readonly connectMs: number;

  constructor(
    config: Config,
    log: Logger,
    private readonly timeoutMs = config.timeouts.hostMs,
    localEnv: NodeJS.ProcessEnv = process.env,
    { live = true }: { live?: boolean } = {},
  ) {
    this.connectMs = Math.max(0, ...config.hosts.map((h) => h.ssh?.connectTimeoutMs ?? 0));
    const timeouts = runtimeTimeouts(config.timeouts.hostMs);
    for (const h of config.hosts) {
      const host = h.ssh ? new RemoteHost({ ...h, ssh: h.ssh }, config, timeouts, log, timeoutMs) : new LocalHost(h, config, timeouts, localEnv);
      this.hosts.set(h.name, host);
      if (live) {
        // Hooks are read at call time, so the app can set them after the pool is built.
        const hooks: MonitorHooks = {
          onEvent: (e) => this.hooks.onEvent?.(e),
          onResync: (name, list) => this.hooks.onResync?.(name, list),
          onMinute: (rows) => this.hooks.onMinute?.(rows),
        };
        const monitor = new HostMonitor(host, { intervalMs: config.telemetry.intervalMs, hostMs: timeoutMs, log, hooks });
        this.monitors.set(h.name, monitor);
        monitor.start();
      }
    }
  }

  /** Where container events, resyncs and minute means go (set once by the app). */
  setHooks(hooks: MonitorHooks): void {
    this.hooks = hooks;
  }

  hostNames(): string[] {
    return [...this.hosts.keys()];
  }

  get(name: string): GpuHost | undefined {
    return this.hosts.get(name);
  }

  monitor(name: string): HostMonitor | undefined {
    return this.monitors.get(name);
  }

  all(): GpuHost[] {
    return [...this.hosts.values()];
  }

  /** Resolves once every host has connected or failed its first attempt (at most the connect timeout). */
  async settled(): Promise<void> {
    await Promise.all(this.all().map((h) => (h instanceof RemoteHost ? h.ssh.ready(h.config.ssh.connectTimeoutMs + 1000).catch(() => {}) : undefined)));
  }

  /**
   * Every host as its live feed shows it: never waits on a host. Only just after start (within
   * timeouts.hostMs of it) does it wait for the first samples, so a one-shot command right after
   * start sees the hosts rather than "connecting".
   */
  async live(names = this.hostNames()): Promise<HostSnapshot[]> {
    // Just after start (a one-shot `gpubot chat`), wait for the first samples of hosts still connecting, up to timeouts.hostMs.
    if (Date.now() - this.startedAt < this.timeoutMs + this.connectMs) {
      const pending = names.map((n) => this.monitors.get(n)).filter((m): m is HostMonitor => m !== undefined && m.sampleAge() === undefined && !m.host.connection().down);
      if (pending.length) await withTimeout(Promise.all(pending.map((m) => m.waitForSample())), this.timeoutMs, 'first samples').catch(() => {});
    }
    const now = Date.now();
    return Promise.all(names.map((name) => this.monitors.get(name)?.snapshot(now) ?? this.probe(name)));
  }

  private readonly recent = new Map<string, { at: number; snapshot: Promise<HostSnapshot> }>();

  /**
   * For an allocation: the live state when it is younger than maxAgeMs, else a probe. Waits for a
   * connecting host (up to timeouts.hostMs). Concurrent callers share one probe per host.
   */
  async recentSnapshot(maxAgeMs: number, names = this.hostNames()): Promise<HostSnapshot[]> {
    return Promise.all(
      names.map(async (name) => {
        const host = this.hosts.get(name);
        if (host && host.connection().state !== 'up' && !host.connection().down) await host.waitUp(this.timeoutMs);
        const monitor = this.monitors.get(name);
        const now = Date.now();
        const hit = this.recent.get(name);
        const probed = hit && now - hit.at < maxAgeMs ? hit : undefined;
        // A probe begun after the last live sample knows more (a process started since, say): it wins.
        const sampledAt = now - (monitor?.sampleAge(now) ?? Infinity);
        if (monitor?.fresh(maxAgeMs, now) && !(probed && probed.at > sampledAt)) {
          // Young enough for an allocation even if status would call it stale.
          const live = monitor.snapshot(now);
          return live.state === 'stale' && live.gpus ? { ...live, state: 'up' as const, sampleAgeMs: undefined } : live;
        }
        if (probed) return probed.snapshot;
        return this.probe(name);
      }),
    );
  }

  /** Probes every host now (one probe per host in flight, shared). The results are shared: treat them as read-only. */
  async snapshot(names = this.hostNames()): Promise<HostSnapshot[]> {
    return Promise.all(names.map((name) => this.probe(name)));
  }

  private readonly inFlight = new Map<string, Promise<HostSnapshot>>();

  private probe(name: string): Promise<HostSnapshot> {
    const running = this.inFlight.get(name);
    if (running) return running;
    const snapshot = this.probeNow(name).finally(() => this.inFlight.delete(name));
    this.inFlight.set(name, snapshot);
    this.recent.set(name, { at: Date.now(), snapshot });
    // A failed probe is never reused.
    void snapshot.then((s) => {
      if (s.state !== 'up' || !s.gpus) this.recent.delete(name);
    });
    return snapshot;
  }

  private async probeNow(name: string): Promise<HostSnapshot> {
    const host = this.hosts.get(name);
    if (!host) return { name, state: 'down', error: 'no such host in the config', gpus: null, tookMs: 0 };
    const started = performance.now();
    try {
      return await withTimeout(probeHost(host, this.timeoutMs), this.timeoutMs, `status of ${name}`);
    } catch (err) {
      const c = host.connection();
      // A host that answers slowly, or is reconnecting, is not down.
      const state = c.down || c.state === 'closed' ? 'down' : c.state === 'up' ? 'stale' : 'connecting';
      return { name, state, error: errorMessage(err), gpus: null, gpuError: state === 'stale' ? errorMessage(err) : undefined, tookMs: Math.round(performance.now() - started) };
    }
  }

  close(): void {
    for (const m of this.monitors.values()) m.close();
    for (const h of this.hosts.values()) h.close();
  }
}
