import type { Config } from '../config/schema.js';
import type { ClusterView, HostSnapshot } from '../core/cluster.js';
import type { Logger } from '../log.js';
import { errorMessage } from '../util/errors.js';
import { withTimeout } from './errors.js';
import type { GpuHost } from './gpu-host.js';
import { probeHost } from './gpu-probe.js';
import { LocalHost } from './local-host.js';
import { RemoteHost } from './remote-host.js';
import { runtimeTimeouts } from './runtime.js';

/** Every configured host, connected once at start and kept open. */
export class HostPool implements ClusterView {
  private readonly hosts = new Map<string, GpuHost>();

  constructor(
    config: Config,
    log: Logger,
    private readonly timeoutMs = config.timeouts.hostMs,
    localEnv: NodeJS.ProcessEnv = process.env,
  ) {
    const timeouts = runtimeTimeouts(config.timeouts.hostMs);
    for (const h of config.hosts) {
      this.hosts.set(h.name, h.ssh ? new RemoteHost({ ...h, ssh: h.ssh }, config, timeouts, log) : new LocalHost(h, config, timeouts, localEnv));
    }
  }

  hostNames(): string[] {
    return [...this.hosts.keys()];
  }

  get(name: string): GpuHost | undefined {
    return this.hosts.get(name);
  }

  all(): GpuHost[] {
    return [...this.hosts.values()];
  }

  /** Resolves once every host has connected or failed its first attempt (at most the connect timeout). */
  async settled(): Promise<void> {
    await Promise.all(this.all().map((h) => (h instanceof RemoteHost ? h.ssh.ready(h.config.ssh.connectTimeoutMs + 1000).catch(() => {}) : undefined)));
  }

  private readonly recent = new Map<string, { at: number; snapshot: Promise<HostSnapshot> }>();

  /** Like snapshot, but reuses a probe of an up host younger than maxAgeMs (in flight or done). */
  async recentSnapshot(maxAgeMs: number, names = this.hostNames()): Promise<HostSnapshot[]> {
    const now = Date.now();
    return Promise.all(
      names.map((name) => {
        const hit = this.recent.get(name);
        if (hit && now - hit.at < maxAgeMs && this.hosts.get(name)?.connection().state === 'up') return hit.snapshot;
        return this.probe(name);
      }),
    );
  }

  /** Probes every host now. The results are shared with recentSnapshot callers: treat them as read-only. */
  async snapshot(names = this.hostNames()): Promise<HostSnapshot[]> {
    return Promise.all(names.map((name) => this.probe(name)));
  }

  private probe(name: string): Promise<HostSnapshot> {
    const snapshot = this.probeNow(name);
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
      return { name, state: 'down', error: errorMessage(err), gpus: null, tookMs: Math.round(performance.now() - started) };
    }
  }

  close(): void {
    for (const h of this.hosts.values()) h.close();
  }
}
