/**
 * Builds users' images on a host: the context is the host's own copy of the user's directory,
 * tarred there by a fixed argv over an exec channel, filtered by .dockerignore here as it streams
 * past, and posted to the same host's Docker (classic builder). Nothing touches the bot's disk.
 */
import { PassThrough, type Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { DockerIgnore } from '../core/dockerignore.js';
import { errorMessage } from '../util/errors.js';
import type { GpuHost } from './gpu-host.js';
import type { BuildMessage } from './runtime.js';

const MAX_SMALL_FILE = 256 * 1024;

export interface WorkspaceEntry {
  type: string;
  content?: Buffer;
}

/**
 * Reads a few files of a directory on the host (the Dockerfile, .dockerignore) with each of their
 * parent directories, without following any symlink: tar archives a symlink as a link, so the
 * caller sees it and refuses it.
 */
export async function readWorkspaceFiles(host: GpuHost, dir: string, paths: string[], timeoutMs: number): Promise<Map<string, WorkspaceEntry>> {
  const members = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) members.add(parts.slice(0, i).join('/'));
  }
  const cmd = await host.runStream(['tar', '-C', dir, '-cf', '-', '--no-recursion', '--ignore-failed-read', '--', ...[...members].map((m) => `./${m}`)], timeoutMs);
  const found = new Map<string, WorkspaceEntry>();
  const extract = tarStream.extract();
  const timer = setTimeout(() => cmd.close(), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, stream, next) => {
        const chunks: Buffer[] = [];
        let size = 0;
        stream.on('data', (d: Buffer) => {
          size += d.length;
          if (size <= MAX_SMALL_FILE + 1) chunks.push(d);
        });
        stream.on('end', () => {
          found.set(contextPath(header.name), { type: header.type ?? 'file', content: header.type === 'file' ? Buffer.concat(chunks) : undefined });
          next();
        });
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
      cmd.stdout.on('error', reject);
      cmd.stdout.pipe(extract);
    });
    const { code, stderr } = await cmd.done;
    if (code !== 0) throw new Error(`cannot read ${dir} on ${host.name}: ${stderr.trim().split('\n').slice(0, 3).join(' ') || `tar exit ${code}`}`);
  } finally {
    clearTimeout(timer);
    cmd.close();
  }
  return found;
}

/** "./a/b/" → "a/b"; "./" → "". */
export const contextPath = (name: string): string => name.replace(/^\.\/?/, '').replace(/\/+$/, '');

export interface BuildStep {
  n: number;
  total: number;
  instruction: string;
  cached: boolean;
}

export interface BuildOptions {
  dir: string;
  dockerfile: string;
  /** The Dockerfile as it was checked: the one built, whatever the workspace holds by the time the context streams. */
  dockerfileContent: Buffer;
  ignore: DockerIgnore;
  tag: string;
  buildArgs: Record<string, string>;
  memoryBytes: number;
  cpus: number;
  timeoutMs: number;
  maxContextBytes: number;
  onStep: (step: BuildStep) => void;
}

export type BuildResult =
  | { ok: true; imageId: string; log: string; contextBytes: number; steps: BuildStep[] }
  | { ok: false; error: string; log: string; failedStep?: BuildStep; stepOutput: string; steps: BuildStep[] };

const MAX_LOG = 256 * 1024;

/** Runs one build on the host's Docker through its classic builder, reporting each step. */
export async function buildOnHost(host: GpuHost, opts: BuildOptions): Promise<BuildResult> {
  let log = '';
  const append = (text: string) => {
    log += text;
    if (log.length > MAX_LOG * 2) log = log.slice(-MAX_LOG);
  };
  const steps: BuildStep[] = [];
  let stepOutput = '';
  let imageId: string | undefined;
  let failure: string | undefined;

  const excludes = opts.ignore.literalExcludes();
  const tar = await host.runStream(
    ['tar', '-C', opts.dir, '-cf', '-', ...(excludes.length ? ['--anchored', '--no-wildcards', ...excludes.map((e) => `--exclude=./${e}`)] : []), '.'],
    10_000,
  );
  const context = filterContext(tar.stdout, opts);
  const abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
    tar.close();
    context.body.destroy(new Error('build timed out'));
  }, opts.timeoutMs);
  // tar failing (unreadable file, say) must not look like a short but valid context.
  void tar.done.then(({ code, stderr }) => {
    if (code !== 0 && code !== null) context.fail(`tar on ${host.name} failed: ${stderr.trim().split('\n').slice(-3).join(' ') || `exit ${code}`}`);
  });

  try {
    let partial = '';
    let unannounced = false;
    const announce = () => {
      const current = steps[steps.length - 1];
      if (unannounced && current) opts.onStep({ ...current });
      unannounced = false;
    };
    const onLine = (line: string) => {
      const step = /^Step (\d+)\/(\d+) : (.*)$/.exec(line);
      if (step) {
        announce();
        steps.push({ n: Number(step[1]), total: Number(step[2]), instruction: step[3]!, cached: false });
        unannounced = true;
        stepOutput = '';
        return;
      }
      const current = steps[steps.length - 1];
      const cached = line.trim() === '---> Using cache';
      if (current && cached) current.cached = true;
      // A step is reported once, when its next line says whether it came from cache.
      announce();
      if (cached || /^ ---> /.test(line) || /^Removing intermediate container /.test(line)) return;
      const built = /^Successfully built ([0-9a-f]+)$/.exec(line);
      if (built && !imageId) imageId = built[1];
      if (!built && !/^Successfully tagged /.test(line)) stepOutput += `${line}\n`;
    };
    const onMessage = (message: BuildMessage) => {
      if (message.aux?.ID) imageId = message.aux.ID;
      if (message.error) {
        failure = message.errorDetail?.message ?? message.error;
        append(`${failure}\n`);
        return;
      }
      if (message.status) append(`${message.status}\n`);
      if (message.stream === undefined) return;
      append(message.stream);
      partial += message.stream;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) onLine(line);
    };
    try {
      await host.runtime.build(
        context.body,
        { tag: opts.tag, dockerfile: CHECKED_DOCKERFILE, buildArgs: opts.buildArgs, memoryBytes: opts.memoryBytes, cpus: opts.cpus },
        onMessage,
        abort.signal,
      );
    } finally {
      announce();
    }
  } catch (err) {
    failure ??= context.failure() ?? errorMessage(err);
  } finally {
    clearTimeout(timer);
    tar.close();
  }
  if (timedOut)
    failure = `the build took longer than ${opts.timeoutMs >= 60_000 ? `${Math.round(opts.timeoutMs / 60_000)} min` : `${Math.round(opts.timeoutMs / 1000)} s`} and was stopped`;
  failure ??= context.failure();
  if (!failure && !imageId) failure = 'Docker did not say which image it built';
  const failedStep = steps[steps.length - 1];
  if (failure) return { ok: false, error: plainText(failure), log: plainText(log), failedStep, stepOutput: plainText(stepOutput.slice(-8000)), steps };
  return { ok: true, imageId: imageId!, log: plainText(log), contextBytes: context.bytes(), steps };
}

/** Build output as plain text: no terminal escapes, no control characters but newlines and tabs. */
/* eslint-disable no-control-regex -- removing control characters is the point */
const TERMINAL_ESCAPE = /\u001b\[[0-9;?]*[A-Za-z]/g;
const CONTROL_BUT_NEWLINE_AND_TAB = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;
/* eslint-enable no-control-regex */
export const plainText = (text: string): string =>
  text
    .replace(TERMINAL_ESCAPE, '')
    .replace(/\r(?!\n)/g, '\n')
    .replace(CONTROL_BUT_NEWLINE_AND_TAB, '');

/**
 * Re-packs the host's tar as it streams: entries .dockerignore excludes are dropped (the
 * Dockerfile and .dockerignore always go, as with the docker CLI), special files are skipped, and
 * the total is capped.
 */
/** Where the checked Dockerfile goes in the context; a workspace file of that name is left out. */
export const CHECKED_DOCKERFILE = '.gpubot-checked.Dockerfile';

function filterContext(source: Readable, opts: Pick<BuildOptions, 'ignore' | 'dockerfile' | 'dockerfileContent' | 'maxContextBytes'>) {
  const extract = tarStream.extract();
  const pack = tarStream.pack();
  const body = new PassThrough();
  let total = 0;
  let failed: string | undefined;
  const fail = (message: string) => {
    failed ??= message;
    body.destroy(new Error(message));
    source.destroy();
  };
  extract.on('entry', (header, stream, next) => {
    const path = contextPath(header.name);
    // The workspace's own Dockerfile could have been swapped since it was checked (a FROM nobody allowed): the checked copy is sent instead.
    const keep = path !== opts.dockerfile && path !== CHECKED_DOCKERFILE && (path === '.dockerignore' || !opts.ignore.excludes(path));
    const kinds = ['file', 'directory', 'symlink', 'link'];
    if (!keep || !kinds.includes(header.type ?? 'file')) {
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    total += header.size ?? 0;
    if (total > opts.maxContextBytes) {
      fail(`the build context is larger than ${(opts.maxContextBytes / 1024 ** 3).toFixed(0)} GB: list what the image does not need (data, checkpoints) in .dockerignore`);
      return;
    }
    const into = pack.entry(header, (err) => next(err ?? undefined));
    stream.pipe(into);
  });
  pack.entry({ name: CHECKED_DOCKERFILE, mode: 0o644, mtime: new Date(0) }, opts.dockerfileContent);
  extract.on('finish', () => pack.finalize());
  extract.on('error', (err) => fail(`reading the context failed: ${err.message}`));
  source.on('error', (err) => fail(`reading the context failed: ${err.message}`));
  pack.pipe(body);
  source.pipe(extract);
  return { body, bytes: () => total, failure: () => failed, fail };
}

/**
 * Copies an image from one host to another: `docker save` on one engine streamed straight into
 * `docker load` on the other, through the bot's two connections (no registry, nothing on disk).
 */
export async function copyImage(from: GpuHost, to: GpuHost, ref: string, onBytes: (bytes: number) => void, timeoutMs: number): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const saved = await from.runtime.saveImage(ref, abort.signal);
    let bytes = 0;
    const counted = new PassThrough();
    saved.on('data', (d: Buffer) => {
      bytes += d.length;
      onBytes(bytes);
    });
    saved.on('error', (err) => counted.destroy(err));
    saved.pipe(counted);
    await to.runtime.loadImage(counted, abort.signal);
  } catch (err) {
    if (abort.signal.aborted) throw new Error(`copying ${ref} took longer than ${Math.round(timeoutMs / 60_000)} min`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
