// A minimal Docker Registry HTTP API v2 (pull side only) for tests, in plain node:http, and a way to
// put it where a bed host's dockerd can reach it.
//
// A bed host's dockerd lives in its own network namespace (`unshare --net`), so 127.0.0.1 of this
// process is not its 127.0.0.1. The registry itself runs in THIS process (so request counts and logs
// are plain reads) and listens on a unix socket under the bed's dir; unix sockets bound to a path are
// reachable from every network namespace. A ~10-line TCP->unix forwarder (`node -e`, no files) runs
// inside the dockerd's namespace via `nsenter --net=/proc/<dockerd pid>/ns/net` and listens on
// 127.0.0.1:<ephemeral port> there (after `ip link set lo up`: unshare leaves lo down). dockerd
// treats 127.0.0.0/8 registries as insecure by default, so plain HTTP works with no daemon config.
//
//   const reg = await startRegistryFor(bed, 'h1', [{ name: 'gpubot-test/pulled', tag: '1' }], { delayMs: 30 });
//   reg.ref('gpubot-test/pulled', '1');   // "127.0.0.1:41234/gpubot-test/pulled:1", as h1's dockerd sees it
//   reg.requests();                       // HTTP requests served so far; reg.log() has method/path/status
//   await reg.stop();
//
// The forwarder exits when its stdin closes (this process died) and its argv mentions the bed's dir,
// so bed.teardown() sweeps it too.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Bed, BedStateFile } from '../bed/testbed.js';

export const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';
export const CONFIG_V1 = 'application/vnd.docker.container.image.v1+json';
export const LAYER_TAR_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export interface RegistryImageSpec {
  name: string; // repository path, e.g. "gpubot-test/pulled"
  tag: string;
  /** config.Cmd; default ["sleep","infinity"] */
  cmd?: string[];
  /** bytes of random (incompressible) data in /padding.bin; default RegistryOptions.paddingBytes */
  paddingBytes?: number;
}

export interface RegistryOptions {
  /** A plain tar of the image's root filesystem; default <bed.baseDir>/rootfs.tar (the bed's busybox rootfs). */
  rootfsTar?: string;
  /** Size of /padding.bin appended to the layer so a pull has something to report; default 4 MiB. */
  paddingBytes?: number;
  /** Sleep this long after each `chunkBytes` of a blob body (throttles pulls so progress is observable); default 0. */
  delayMs?: number;
  /** default 64 KiB */
  chunkBytes?: number;
}

/** One image as served: the digests a test may want to compare with `docker image inspect`. */
export interface BuiltImage {
  name: string;
  tag: string;
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layer: Buffer; // gzipped tar
  layerDigest: string; // sha256 of the gzipped bytes
  diffId: string; // sha256 of the uncompressed tar
}

export interface RegistryRequest {
  method: string;
  path: string;
  status: number;
}

export interface RegistryServer {
  images: BuiltImage[];
  requests(): number;
  log(): RegistryRequest[];
  close(): Promise<void>;
}

export interface Registry extends RegistryServer {
  /** "127.0.0.1:PORT" as the host's dockerd sees it. */
  address: string;
  /** "127.0.0.1:PORT/NAME:TAG"; works for names the registry does not have (they 404). */
  ref(name: string, tag: string): string;
  /** Kills the forwarder in the host's namespace and closes the server (idempotent). */
  stop(): Promise<void>;
}

const sha256 = (b: Buffer | string): string => 'sha256:' + createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// images

/** Offset of the end-of-archive marker (two zero blocks) of a ustar/GNU tar. */
function tarEnd(tar: Buffer): number {
  let off = 0;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) return off;
    const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error('not a tar archive (no end-of-archive marker)');
}

function tarHeader(name: string, size: number, mode = 0o644): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, at: number, len: number) => h.write(s.slice(0, len), at, len, 'latin1');
  const octal = (n: number, len: number) => n.toString(8).padStart(len - 1, '0') + '\0';
  put(name, 0, 100);
  put(octal(mode, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(Math.floor(Date.now() / 1000), 12), 136, 12);
  put('        ', 148, 8);
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put('root', 265, 32);
  put('root', 297, 32);
  const sum = h.reduce((n, b) => n + b, 0);
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** `rootfs` plus a file at ./`name` holding `data`, as one tar. */
function appendToTar(rootfs: Buffer, name: string, data: Buffer): Buffer {
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([rootfs.subarray(0, tarEnd(rootfs)), tarHeader(name, data.length), data, pad, Buffer.alloc(1024)]);
}

/** Builds one single-layer image: rootfs + /padding.bin, gzip level 1 (the padding does not compress anyway). */
export function buildImage(spec: RegistryImageSpec, rootfsTar: Buffer, paddingBytes: number): BuiltImage {
  const tar = appendToTar(rootfsTar, './padding.bin', randomBytes(spec.paddingBytes ?? paddingBytes));
  const layer = gzipSync(tar, { level: 1 });
  const diffId = sha256(tar);
  const layerDigest = sha256(layer);
  const created = new Date().toISOString();
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created,
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Cmd: spec.cmd ?? ['sleep', 'infinity'],
        WorkingDir: '/',
        Labels: { 'gpubot-test.registry': 'true' },
      },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created, created_by: 'gpubot test registry: busybox rootfs + /padding.bin' }],
    }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_V2,
      config: { mediaType: CONFIG_V1, size: config.length, digest: configDigest },
      layers: [{ mediaType: LAYER_TAR_GZIP, size: layer.length, digest: layerDigest }],
    }),
  );
  return { name: spec.name, tag: spec.tag, manifest, manifestDigest: sha256(manifest), config, configDigest, layer, layerDigest, diffId };
}

// ---------------------------------------------------------------------------------------------
// the HTTP API

/**
 * Serves `images` (Registry API v2, pull only) on `listen` (a unix socket path, or a TCP port on
 * 127.0.0.1). Blob bodies are sent in `chunkBytes` pieces with `delayMs` between them.
 */
export async function startRegistryServer(images: BuiltImage[], listen: string | number, opts: Pick<RegistryOptions, 'delayMs' | 'chunkBytes'> = {}): Promise<RegistryServer> {
  const delayMs = opts.delayMs ?? 0;
  const chunkBytes = opts.chunkBytes ?? 64 * 1024;
  const log: RegistryRequest[] = [];
  let closing = false;

  const sendError = (res: http.ServerResponse, status: number, code: string, message: string, head: boolean) => {
    const body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': body.length, 'Docker-Distribution-API-Version': 'registry/2.0' });
    res.end(head ? undefined : body);
  };

  const sendBlob = async (res: http.ServerResponse, body: Buffer, headers: http.OutgoingHttpHeaders, head: boolean) => {
    res.writeHead(200, { ...headers, 'Content-Length': body.length, 'Docker-Distribution-API-Version': 'registry/2.0' });
    if (head) return void res.end();
    for (let off = 0; off < body.length && !res.destroyed && !closing; off += chunkBytes) {
      if (off > 0 && delayMs > 0) await sleep(delayMs);
      if (!res.write(body.subarray(off, off + chunkBytes))) {
        await new Promise<void>((r) => {
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            r();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      }
    }
    res.end();
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://registry');
    const head = method === 'HEAD';
    if (method !== 'GET' && !head) return sendError(res, 405, 'UNSUPPORTED', 'this test registry only serves pulls', head);
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 2, 'Docker-Distribution-API-Version': 'registry/2.0' });
      return void res.end(head ? undefined : '{}');
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return sendError(res, 404, 'NOT_FOUND', `no route ${url.pathname}`, head);
    const [, name, kind, reference] = m as unknown as [string, string, string, string];
    const repo = images.filter((i) => i.name === name);
    if (kind === 'manifests') {
      const img = repo.find((i) => i.tag === reference || i.manifestDigest === reference);
      if (!img) {
        return repo.length === 0
          ? sendError(res, 404, 'NAME_UNKNOWN', `repository name not known to registry: ${name}`, head)
          : sendError(res, 404, 'MANIFEST_UNKNOWN', `manifest unknown: ${name}:${reference}`, head);
      }
      res.writeHead(200, {
        'Content-Type': MANIFEST_V2,
        'Content-Length': img.manifest.length,
        'Docker-Content-Digest': img.manifestDigest,
        'Docker-Distribution-API-Version': 'registry/2.0',
        ETag: `"${img.manifestDigest}"`,
      });
      return void res.end(head ? undefined : img.manifest);
    }
    for (const img of repo) {
      if (reference === img.configDigest) return sendBlob(res, img.config, { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': img.configDigest }, head);
      if (reference === img.layerDigest) return sendBlob(res, img.layer, { 'Content-Type': 'application/octet-stream', 'Docker-Content-Digest': img.layerDigest }, head);
    }
    return sendError(res, 404, 'BLOB_UNKNOWN', `blob unknown to registry: ${reference}`, head);
  };

  const server = http.createServer((req, res) => {
    const entry: RegistryRequest = { method: req.method ?? '?', path: req.url ?? '?', status: 0 };
    log.push(entry);
    res.on('finish', () => void (entry.status = res.statusCode));
    res.on('close', () => void (entry.status ||= res.statusCode));
    req.resume();
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'UNKNOWN', String(err), false);
      else res.destroy();
    });
  });
  // dockerd tries https first on an insecure registry: node answers that TLS hello with a plain 400
  // (clientError, not a request, so not counted), and dockerd falls back to http.

  if (typeof listen === 'string') await fs.rm(listen, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (typeof listen === 'string') server.listen(listen, () => resolve());
    else server.listen(listen, '127.0.0.1', () => resolve());
  });

  return {
    images,
    requests: () => log.length,
    log: () => log.map((e) => ({ ...e })),
    async close() {
      closing = true;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      if (typeof listen === 'string') await fs.rm(listen, { force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// crossing into a bed host's network namespace

// Runs inside the host's netns: 127.0.0.1:<ephemeral> -> the registry's unix socket. Prints the port;
// exits when stdin closes (the test process is gone) or on SIGTERM.
const FORWARDER = `
const net = require('node:net');
const sock = process.argv[1];
const srv = net.createServer((c) => {
  const u = net.connect(sock);
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
});
srv.on('error', (e) => { console.error(String(e)); process.exit(1); });
srv.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: srv.address().port }) + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;

function execOk(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 10_000 }, (err, _stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve()));
  });
}

/** The pid of a bed host's dockerd (= its network namespace), from <baseDir>/bed.json or its pidfile. */
export async function dockerdPidOf(bed: Bed, hostName: string): Promise<number> {
  const host = bed.host(hostName);
  let pid: number | null = null;
  try {
    const st = JSON.parse(await fs.readFile(path.join(bed.baseDir, 'bed.json'), 'utf8')) as BedStateFile;
    pid = st.hosts.find((h) => h.name === hostName)?.dockerdPid ?? null;
  } catch {
    /* fall back to the pidfile */
  }
  if (!pid) pid = Number((await fs.readFile(path.join(host.dir, 'docker.pid'), 'utf8').catch(() => '')).trim()) || null;
  if (!pid) throw new Error(`no dockerd pid for ${hostName} (docker: false bed?)`);
  await fs.access(`/proc/${pid}/ns/net`);
  return pid;
}

function startForwarder(netns: string, socketPath: string): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '-e', FORWARDER, socketPath], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`registry forwarder in ${netns} did not start: ${err.trim()}`));
    }, 15_000);
    child.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        resolve({ child, port: (JSON.parse(line) as { port: number }).port });
      }
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`registry forwarder exited (${code ?? sig}): ${err.trim()}`));
    });
  });
}

/**
 * Builds `images` (each: the bed's busybox rootfs + /padding.bin, `config.Cmd` sleep infinity), serves
 * them, and makes them pullable by `hostName`'s dockerd as `127.0.0.1:PORT/NAME:TAG`.
 */
export async function startRegistryFor(bed: Bed, hostName: string, images: RegistryImageSpec[], opts: RegistryOptions = {}): Promise<Registry> {
  const pid = await dockerdPidOf(bed, hostName);
  const netns = `/proc/${pid}/ns/net`;
  await execOk('nsenter', [`--net=${netns}`, '--', 'ip', 'link', 'set', 'lo', 'up']);

  const rootfs = await fs.readFile(opts.rootfsTar ?? path.join(bed.baseDir, 'rootfs.tar'));
  const built = images.map((spec) => buildImage(spec, rootfs, opts.paddingBytes ?? 4 * 1024 * 1024));
  const socketPath = path.join(bed.baseDir, `registry-${hostName}-${randomBytes(3).toString('hex')}.sock`);
  const server = await startRegistryServer(built, socketPath, opts);

  let forwarder: { child: ChildProcess; port: number };
  try {
    forwarder = await startForwarder(netns, socketPath);
  } catch (e) {
    await server.close();
    throw e;
  }
  const { child, port } = forwarder;
  child.stdout!.resume();
  const exited = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
  const address = `127.0.0.1:${port}`;
  let stopped: Promise<void> | undefined;

  return {
    ...server,
    address,
    ref: (name, tag) => `${address}/${name}:${tag}`,
    stop() {
      stopped ??= (async () => {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
        await exited;
        clearTimeout(t);
        child.stdin!.destroy();
        await server.close();
      })();
      return stopped;
    },
  };
}
