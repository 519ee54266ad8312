import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { Config } from '../config/schema.js';
import type { ProgressSink } from '../core/reply.js';
import { containerSpec, type LaunchSpec } from './container-spec.js';
import { AlreadyStopped, ContainerNotFound, HostUnavailable, ImageMissing, NetworkUnusable, Timeout, withTimeout } from './errors.js';
import { pullImage } from './images.js';
import { errorMessage } from '../util/errors.js';
import { LABEL } from './labels.js';
import type { CommandOutput } from './nvidia-smi.js';
import {
  STOP_GRACE_SECONDS,
  type BuildMessage,
  type BuildParams,
  type ContainerRuntime,
  type ContainerSummary,
  type ImageFacts,
  type ContainerDetails,
  type ImageSummary,
  type RuntimeEvent,
  type RuntimeTimeouts,
} from './runtime.js';

const statusCode = (err: unknown): number | undefined => (err as { statusCode?: number }).statusCode;

/** Socket-level failures: the engine is not there, as opposed to refusing a request. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'EHOSTUNREACH', 'ETIMEDOUT']);

const MANAGED_FILTER = { label: [`${LABEL.managed}=true`] };

/** Docker's words for a container's network that is gone or named twice (at create on newer engines, at start on older ones). */
const NETWORK_UNUSABLE = /\bnetwork \S+ (?:not found|is ambiguous)/i;

const summary = (c: Docker.ContainerInfo): ContainerSummary => ({
  id: c.Id,
  name: (c.Names?.[0] ?? c.Id.slice(0, 12)).replace(/^\//, ''),
  state: c.State,
  labels: c.Labels ?? {},
  image: c.Image,
  createdAt: new Date(c.Created * 1000),
});

/**
 * Docker's multiplexed stream (no TTY): 8-byte headers (stream type, size) before each chunk.
 * Returns [stdout, stderr, both interleaved]; a buffer that is not framed is all stdout.
 */
export function demux(buf: Buffer): [string, string, string] {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const both: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length && (buf[i] === 1 || buf[i] === 2 || buf[i] === 0) && buf[i + 1] === 0) {
    const size = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + size);
    (buf[i] === 2 ? err : out).push(chunk);
    both.push(chunk);
    i += 8 + size;
  }
  if (i === 0) return [buf.toString('utf8'), '', buf.toString('utf8')];
  return [Buffer.concat(out).toString('utf8'), Buffer.concat(err).toString('utf8'), Buffer.concat(both).toString('utf8')];
}

interface DockerEvent {
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The container runtime of a host whose Docker daemon dockerode reaches (its own socket, or over SSH). */
export class DockerRuntime implements ContainerRuntime {
  constructor(
    private readonly host: string,
    readonly docker: Docker,
    private readonly config: Config,
    private readonly timeouts: RuntimeTimeouts,
  ) {}

  /** Runs one engine call under the timeout policy and turns its failures into the typed ones. */
  private async call<T>(what: string, ms: number, work: () => Promise<T>, container?: string): Promise<T> {
    try {
      return await withTimeout(work(), ms, what);
    } catch (err) {
      throw this.typed(err, container);
    }
  }

  private typed(err: unknown, container?: string): unknown {
    if (err instanceof HostUnavailable || err instanceof Timeout) return err;
    // Before the 404 below: Docker answers a start whose network is gone with 404, and the container is there.
    if (statusCode(err) !== undefined && NETWORK_UNUSABLE.test(errorMessage(err))) return new NetworkUnusable(this.host, errorMessage(err));
    if (container !== undefined && statusCode(err) === 404) return new ContainerNotFound(this.host, container);
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE.has(code)) {
      // The socket's own words (they name the socket) stay the message.
      return new HostUnavailable(this.host, (err as Error).message, (err as Error).message);
    }
    return err;
  }

  async create(spec: LaunchSpec): Promise<string> {
    try {
      const created = await this.call('creating the container', this.timeouts.actionMs, () => this.docker.createContainer(containerSpec(this.config, spec)));
      return created.id;
    } catch (err) {
      if (statusCode(err) === 404 && /no such image/i.test(errorMessage(err))) throw new ImageMissing(this.host, spec.image, errorMessage(err));
      throw err;
    }
  }

  async start(idOrName: string): Promise<void> {
    try {
      await this.call('starting', this.timeouts.actionMs, () => this.docker.getContainer(idOrName).start(), idOrName);
    } catch (err) {
      if (statusCode(err) !== 304) throw err; // 304: already running
    }
  }

  async stop(idOrName: string): Promise<void> {
    try {
      await this.call('stopping', this.timeouts.actionMs, () => this.docker.getContainer(idOrName).stop({ t: STOP_GRACE_SECONDS }), idOrName);
    } catch (err) {
      throw statusCode(err) === 304 ? new AlreadyStopped(this.host, idOrName) : err;
    }
  }

  async remove(idOrName: string, { force }: { force: boolean }): Promise<void> {
    await this.call('removing', this.timeouts.actionMs, () => this.docker.getContainer(idOrName).remove({ force, v: false }), idOrName);
  }

  async inspect(idOrName: string): Promise<ContainerDetails> {
    const info = await this.call('inspecting', this.timeouts.actionMs, () => this.docker.getContainer(idOrName).inspect(), idOrName);
    const date = (t: string | undefined) => (t && !t.startsWith('0001-') ? new Date(t) : undefined);
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      state: info.State.Status,
      running: info.State.Running,
      labels: info.Config.Labels ?? {},
      exitCode: info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
      startedAt: date(info.State.StartedAt),
      finishedAt: date(info.State.FinishedAt),
      image: info.Config.Image,
      createdAt: new Date(info.Created),
      addresses: Object.values(info.NetworkSettings?.Networks ?? {})
        .map((n) => n.IPAddress)
        .filter((a): a is string => typeof a === 'string' && a !== ''),
    };
  }

  async listManaged(): Promise<ContainerSummary[]> {
    const list = await this.call('listing', this.timeouts.listMs, () => this.docker.listContainers({ all: true, filters: MANAGED_FILTER }));
    return list.map(summary);
  }

  async listRunning(): Promise<ContainerSummary[]> {
    const list = await this.call('listing', this.timeouts.listMs, () => this.docker.listContainers({ all: false }));
    return list.map(summary);
  }

  async logs(idOrName: string, tail: number): Promise<string> {
    const raw = (await this.call(
      'reading logs',
      this.timeouts.actionMs,
      () => this.docker.getContainer(idOrName).logs({ stdout: true, stderr: true, tail, follow: false }),
      idOrName,
    )) as unknown;
    return demux(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)))[2];
  }

  async exec(idOrName: string, argv: string[]): Promise<CommandOutput> {
    if (argv.length === 0) throw new Error('empty argv');
    return this.call(
      `running ${argv[0]} in ${idOrName}`,
      this.timeouts.actionMs,
      async () => {
        const exec = await this.docker.getContainer(idOrName).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
        const [stdout, stderr] = demux(await readAll(await exec.start({})));
        const { ExitCode } = await exec.inspect();
        return { code: ExitCode, stdout, stderr };
      },
      idOrName,
    );
  }

  async events(listener: (event: RuntimeEvent) => void, ended?: (err?: Error) => void, options: { since?: Date } = {}): Promise<() => void> {
    const since = options.since ? { since: Math.floor(options.since.getTime() / 1000) } : {};
    const stream = (await this.call('subscribing to events', this.timeouts.actionMs, () =>
      this.docker.getEvents({ filters: { type: ['container'], ...MANAGED_FILTER }, ...since }),
    )) as NodeJS.ReadableStream & { destroy(): void };
    let pending = '';
    stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (!line.trim()) continue;
        let e: DockerEvent;
        try {
          e = JSON.parse(line) as DockerEvent;
        } catch {
          continue;
        }
        const attributes = e.Actor?.Attributes ?? {};
        listener({
          action: e.Action ?? e.status ?? '',
          containerId: e.Actor?.ID ?? e.id ?? '',
          name: attributes.name ?? '',
          attributes,
          at: new Date(e.timeNano ? e.timeNano / 1e6 : (e.time ?? 0) * 1000),
        });
      }
    });
    let stopped = false;
    let done = false;
    const end = (err?: Error) => {
      if (done || stopped) return;
      done = true;
      ended?.(err);
    };
    stream.on('error', (err: Error) => end(this.typed(err) as Error));
    stream.on('end', () => end());
    stream.on('close', () => end());
    return () => {
      stopped = true;
      stream.destroy();
    };
  }

  /** Docker does not refuse a second network of the same name made at the same moment, so launches share one attempt. */
  private readonly networksInFlight = new Map<string, Promise<void>>();
  /**
   * Networks this process made or found on this host: not asked for again (a round trip per run).
   * One removed meanwhile makes create or start fail with NetworkUnusable; the caller then asks with recheck.
   */
  private readonly networksKnown = new Set<string>();

  ensureNetwork(name: string, labels: Record<string, string>, { recheck = false }: { recheck?: boolean } = {}): Promise<void> {
    let pending = this.networksInFlight.get(name);
    if (pending) return pending;
    if (!recheck && this.networksKnown.has(name)) return Promise.resolve();
    this.networksKnown.delete(name);
    pending = this.makeNetwork(name, labels)
      .then(() => void this.networksKnown.add(name))
      .finally(() => this.networksInFlight.delete(name));
    this.networksInFlight.set(name, pending);
    return pending;
  }

  private async makeNetwork(name: string, labels: Record<string, string>): Promise<void> {
    const named = async () =>
      (await this.call('listing networks', this.timeouts.actionMs, () => this.docker.listNetworks({ filters: { name: [name] } }))).filter((n) => n.Name === name);
    let found = await named();
    if (found.length === 0) {
      try {
        await this.call('creating a network', this.timeouts.actionMs, () => this.docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true, Labels: labels }));
      } catch (err) {
        // Made meanwhile by another process: fine.
        if (statusCode(err) !== 409) throw err;
      }
      found = await named();
    }
    // Two processes raced and Docker kept both: a name that matches two networks breaks every later create, so keep the oldest.
    const extra = found.sort((a, b) => (a.Created ?? '').localeCompare(b.Created ?? '') || a.Id.localeCompare(b.Id)).slice(1);
    for (const n of extra)
      await this.docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.call(`looking for ${image}`, this.timeouts.actionMs, () => this.docker.getImage(image).inspect());
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      throw err;
    }
  }

  pull(image: string, progress: ProgressSink): Promise<void> {
    return pullImage(this.docker, image, progress, { stallMs: this.timeouts.pullStallMs }).catch((err: unknown) => {
      throw this.typed(err);
    });
  }

  async listImages(): Promise<ImageSummary[]> {
    const images = await this.call('listing images', this.timeouts.listMs, () => this.docker.listImages());
    return images.map((i) => ({ tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'), sizeBytes: i.Size }));
  }

  async pruneImages(): Promise<number> {
    const r = await this.call('pruning images', this.timeouts.pruneMs, () => this.docker.pruneImages({ filters: { dangling: ['true'] } }));
    return r.ImagesDeleted?.filter((d) => d.Deleted).length ?? 0;
  }

  async build(context: Readable, params: BuildParams, onMessage: (message: BuildMessage) => void, signal: AbortSignal): Promise<void> {
    let response: Readable;
    try {
      response = (await this.docker.buildImage(
        context as never,
        {
          t: params.tag,
          dockerfile: params.dockerfile,
          buildargs: params.buildArgs,
          memory: params.memoryBytes,
          memswap: params.memoryBytes,
          cpuperiod: 100_000,
          cpuquota: Math.round(params.cpus * 100_000),
          rm: true,
          forcerm: true,
          abortSignal: signal,
        } as never,
      )) as unknown as Readable;
    } catch (err) {
      throw this.typed(err);
    }
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(response, (err: Error | null) => (err ? reject(this.typed(err)) : resolve()), onMessage);
    });
  }

  async imageFacts(ref: string): Promise<ImageFacts> {
    const image = this.docker.getImage(ref);
    const info = (await this.call(`inspecting ${ref}`, this.timeouts.actionMs, () => image.inspect())) as Docker.ImageInspectInfo;
    const history = (await this.call(`reading the history of ${ref}`, this.timeouts.actionMs, () => image.history())) as { CreatedBy?: string; Size?: number }[];
    return { id: info.Id, sizeBytes: info.Size, history: history.map((h) => ({ createdBy: h.CreatedBy ?? '', sizeBytes: h.Size ?? 0 })) };
  }

  async removeImage(ref: string): Promise<'removed' | 'missing' | 'in-use'> {
    try {
      await this.call(`removing ${ref}`, this.timeouts.actionMs, () => this.docker.getImage(ref).remove({ noprune: false }));
      return 'removed';
    } catch (err) {
      if (statusCode(err) === 404) return 'missing';
      if (statusCode(err) === 409) return 'in-use';
      throw err;
    }
  }

  async saveImage(ref: string, signal: AbortSignal): Promise<Readable> {
    const stream = (await this.call(`saving ${ref}`, this.timeouts.actionMs, () => this.docker.getImage(ref).get())) as unknown as Readable;
    signal.addEventListener('abort', () => stream.destroy(new Error('aborted')), { once: true });
    return stream;
  }

  async loadImage(tar: Readable, signal: AbortSignal): Promise<void> {
    let answer = '';
    try {
      const loaded = (await this.docker.loadImage(tar, { quiet: true, abortSignal: signal } as never)) as unknown as Readable;
      for await (const chunk of loaded) if (answer.length < 65_536) answer += String(chunk);
    } catch (err) {
      throw this.typed(err);
    }
    const error = /"error(?:Detail)?":\s*(?:\{"message":)?"([^"]*)"/.exec(answer)?.[1];
    if (error) throw new Error(`loading the image on ${this.host} failed: ${error}`);
  }
}
