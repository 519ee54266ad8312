import { posix } from 'node:path';
import type { Attributes, SFTPWrapper, Stats } from 'ssh2';
import ssh2 from 'ssh2';

// ssh2 is CommonJS: its named exports exist only on the default export under Node's ESM loader.
const { utils } = ssh2;

const { STATUS_CODE } = utils.sftp;

export interface SftpJail {
  /** The host's SFTP channel (every path it sees was checked here first); requests wait for it. */
  host: Promise<SFTPWrapper>;
  /** The user's directory on the host, as configured (`<userRoot>/<handle>`). */
  hostDir: string;
  /** Where that directory appears to the client (the container's mount path, /workspace). */
  mountPath: string;
  onBytes?: (direction: 'in' | 'out', n: number) => void;
}

class Refused extends Error {
  readonly code = STATUS_CODE.PERMISSION_DENIED;
}

/** A callback call as a promise; fn may itself be async (a path check first), its failure rejects too. */
const call = <T>(fn: (cb: (err: Error | null | undefined, value: T) => void) => void | Promise<void>): Promise<T> =>
  new Promise((resolve, reject) => {
    const started = fn((err, value) => (err ? reject(err) : resolve(value)));
    if (started) started.catch(reject);
  });

/** Plain permission bits only: no setuid/setgid/sticky, and never an owner change. */
function safeAttrs(attrs: Attributes | undefined): Attributes {
  const out: Attributes = {} as Attributes;
  if (!attrs) return out;
  if (typeof attrs.mode === 'number') out.mode = attrs.mode & 0o777;
  if (typeof attrs.size === 'number') out.size = attrs.size;
  if (typeof attrs.atime === 'number' && typeof attrs.mtime === 'number') {
    out.atime = attrs.atime;
    out.mtime = attrs.mtime;
  }
  return out;
}

const toAttrs = (s: Stats): Attributes => ({ mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: s.atime, mtime: s.mtime });

/**
 * Closes a server-side SFTP channel as sshd does when sftp-server exits: with an exit status first,
 * since scp counts a channel closed without one as a failed transfer. ssh2's SFTP object has no
 * exit() of its own, so this reaches its channel internals (ssh2 1.x).
 */
function endWithStatus(sftp: SFTPWrapper, code: number): void {
  const channel = sftp as unknown as { _protocol?: { exitStatus?: (id: number, code: number) => void }; outgoing?: { id: number; state: string } };
  if (channel.outgoing?.state === 'open') channel._protocol?.exitStatus?.(channel.outgoing.id, code);
  sftp.end();
}

/**
 * Serves one client's SFTP session onto their directory on the container's host, through an SFTP
 * server there that is jailed to that directory (host-sftp.ts): this check is the first wall, the
 * jail the one that holds when it is raced. Clients see that directory as `mountPath` and nothing else: every path
 * is normalized (so `..` cannot climb out), mapped under the host directory, and then resolved on
 * the host (symlinks included) and checked to stay inside it before anything is done with it.
 * Symlinks cannot be created; owners and special mode bits cannot be set.
 */
export function serveSftp(client: SFTPWrapper, jail: SftpJail): void {
  const { mountPath } = jail;
  // Set before any handler's work runs (handle() waits for it).
  let host = undefined as unknown as SFTPWrapper;
  let hostSet = false;
  const hostReady = jail.host.then((h) => {
    host = h;
    hostSet = true;
  });
  const mount = mountPath.replace(/\/+$/, '') || '/';
  const dir = jail.hostDir.replace(/\/+$/, '');
  let realDir: Promise<string> | undefined;
  const root = () => (realDir ??= call<string>((cb) => host.realpath(dir, cb)));
  const handles = new Map<number, { remote: Buffer; dir: boolean }>();
  let nextHandle = 1;

  /** The host path for a client path, lexically: refuses anything outside the mount. */
  const mapped = (path: string): string => {
    const abs = posix.normalize(posix.isAbsolute(path) ? path : posix.join(mount, path || '.'));
    const clean = abs.length > 1 ? abs.replace(/\/+$/, '') : abs;
    if (clean === mount) return dir;
    if (clean.startsWith(`${mount}/`)) return dir + clean.slice(mount.length);
    throw new Refused(`${path}: only ${mount} is reachable here`);
  };
  const inside = async (real: string, path: string): Promise<string> => {
    const r = await root();
    if (real === r || real.startsWith(`${r}/`)) return real;
    throw new Refused(`${path}: leads outside ${mount}`);
  };
  /** For operations that follow symlinks: the fully resolved host path, which must stay inside. */
  const resolved = async (path: string): Promise<string> => inside(await call<string>((cb) => host.realpath(mapped(path), cb)), path);
  /** For operations on the entry itself (lstat, remove, rename...): its resolved parent, plus its name. */
  const entry = async (path: string): Promise<string> => {
    const p = mapped(path);
    if (p === dir) return inside(await call<string>((cb) => host.realpath(p, cb)), path);
    const parent = await inside(await call<string>((cb) => host.realpath(posix.dirname(p), cb)), path);
    return `${parent}/${posix.basename(p)}`;
  };
  const virtual = async (real: string): Promise<string> => {
    const r = await root();
    if (real === r) return mount;
    if (real.startsWith(`${r}/`)) return mount + real.slice(r.length);
    throw new Refused('outside the mount');
  };
  const localHandle = (remote: Buffer, isDir: boolean): Buffer => {
    const id = nextHandle++;
    handles.set(id, { remote, dir: isDir });
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    return b;
  };
  const remoteHandle = (h: Buffer, isDir?: boolean): Buffer => {
    const found = h.length === 4 ? handles.get(h.readUInt32BE(0)) : undefined;
    if (!found || (isDir !== undefined && found.dir !== isDir)) throw Object.assign(new Error('invalid handle'), { code: STATUS_CODE.FAILURE });
    return found.remote;
  };
  const fail = (reqId: number, err: unknown): void => {
    const e = err as { code?: unknown; message?: string };
    const code = typeof e.code === 'number' ? e.code : e.code === 'ENOENT' ? STATUS_CODE.NO_SUCH_FILE : STATUS_CODE.FAILURE;
    client.status(reqId, code, e.message);
  };
  // The client's EOF ends its session, but ssh2 leaves closing the channel to us: without it the
  // client's ssh waits forever. Replies still in flight are sent first.
  let inFlight = 0;
  let clientDone = false;
  const closeIfDone = () => {
    if (clientDone && inFlight === 0) endWithStatus(client, 0);
  };
  client.on('end', () => {
    clientDone = true;
    closeIfDone();
  });
  const handle = (reqId: number, work: () => Promise<void>): void => {
    inFlight++;
    hostReady
      .then(work)
      .catch((err) => {
        try {
          fail(reqId, err);
        } catch {
          // the channel is gone; nobody to tell
        }
      })
      .finally(() => {
        inFlight--;
        closeIfDone();
      });
  };
  const ok = (reqId: number) => () => client.status(reqId, STATUS_CODE.OK);

  client.on('REALPATH', (reqId, path) =>
    handle(reqId, async () => {
      const real = await resolved(path);
      const v = await virtual(real);
      client.name(reqId, [{ filename: v, longname: v, attrs: {} as Attributes }]);
    }),
  );
  client.on('STAT', (reqId, path) => handle(reqId, async () => client.attrs(reqId, toAttrs(await call<Stats>(async (cb) => host.stat(await resolved(path), cb))))));
  client.on('LSTAT', (reqId, path) => handle(reqId, async () => client.attrs(reqId, toAttrs(await call<Stats>(async (cb) => host.lstat(await entry(path), cb))))));
  client.on('OPEN', (reqId, path, flags, attrs) =>
    handle(reqId, async () => {
      const real = await resolved(path);
      // What it creates is the container user's already: the jailed server runs as that uid.
      const remote = await call<Buffer>((cb) => host.open(real, flags, safeAttrs(attrs), cb));
      client.handle(reqId, localHandle(remote, false));
    }),
  );
  client.on('READ', (reqId, h, offset, len) =>
    handle(reqId, async () => {
      const remote = remoteHandle(h, false);
      const buf = Buffer.alloc(Math.min(len, 256 * 1024));
      const n = await new Promise<number>((resolve, reject) => host.read(remote, buf, 0, buf.length, offset, (err, bytes) => (err ? reject(err) : resolve(bytes))));
      if (n === 0) return client.status(reqId, STATUS_CODE.EOF);
      jail.onBytes?.('out', n);
      client.data(reqId, buf.subarray(0, n));
    }),
  );
  client.on('WRITE', (reqId, h, offset, data) =>
    handle(reqId, async () => {
      const remote = remoteHandle(h, false);
      await call<void>((cb) => host.write(remote, data, 0, data.length, offset, (err) => cb(err, undefined)));
      jail.onBytes?.('in', data.length);
      client.status(reqId, STATUS_CODE.OK);
    }),
  );
  client.on('FSTAT', (reqId, h) => handle(reqId, async () => client.attrs(reqId, toAttrs(await call<Stats>((cb) => host.fstat(remoteHandle(h), cb))))));
  client.on('FSETSTAT', (reqId, h, attrs) =>
    handle(reqId, async () => call<void>((cb) => host.fsetstat(remoteHandle(h), safeAttrs(attrs), (err) => cb(err, undefined))).then(ok(reqId))),
  );
  client.on('SETSTAT', (reqId, path, attrs) =>
    handle(reqId, async () => call<void>(async (cb) => host.setstat(await resolved(path), safeAttrs(attrs), (err) => cb(err, undefined))).then(ok(reqId))),
  );
  client.on('CLOSE', (reqId, h) =>
    handle(reqId, async () => {
      const remote = remoteHandle(h);
      handles.delete(h.readUInt32BE(0));
      await call<void>((cb) => host.close(remote, (err) => cb(err, undefined)));
      client.status(reqId, STATUS_CODE.OK);
    }),
  );
  client.on('OPENDIR', (reqId, path) =>
    handle(reqId, async () => {
      const remote = await call<Buffer>(async (cb) => host.opendir(await resolved(path), cb));
      client.handle(reqId, localHandle(remote, true));
    }),
  );
  client.on('READDIR', (reqId, h) =>
    handle(reqId, async () => {
      const list = await call<{ filename: string; longname: string; attrs: Attributes }[] | false>((cb) => host.readdir(remoteHandle(h, true), cb as never));
      if (!list || list.length === 0) return client.status(reqId, STATUS_CODE.EOF);
      client.name(reqId, list);
    }),
  );
  client.on('REMOVE', (reqId, path) => handle(reqId, async () => call<void>(async (cb) => host.unlink(await entry(path), (err) => cb(err, undefined))).then(ok(reqId))));
  client.on('RMDIR', (reqId, path) => handle(reqId, async () => call<void>(async (cb) => host.rmdir(await entry(path), (err) => cb(err, undefined))).then(ok(reqId))));
  client.on('MKDIR', (reqId, path, attrs) =>
    handle(reqId, async () => {
      const at = await entry(path);
      await call<void>((cb) => host.mkdir(at, safeAttrs(attrs), (err) => cb(err, undefined)));
      client.status(reqId, STATUS_CODE.OK);
    }),
  );
  client.on('RENAME', (reqId, from, to) =>
    handle(reqId, async () => {
      const [a, b] = await Promise.all([entry(from), entry(to)]);
      await call<void>((cb) => host.rename(a, b, (err) => cb(err, undefined)));
      client.status(reqId, STATUS_CODE.OK);
    }),
  );
  client.on('READLINK', (reqId, path) =>
    handle(reqId, async () => {
      const target = await call<string>(async (cb) => host.readlink(await entry(path), cb));
      client.name(reqId, [{ filename: target, longname: target, attrs: {} as Attributes }]);
    }),
  );
  // A link made here could point anywhere on the host: refused (make links inside the container).
  client.on('SYMLINK', (reqId) => client.status(reqId, STATUS_CODE.PERMISSION_DENIED, 'symlinks cannot be created over the gateway'));
  client.on('EXTENDED', (reqId) => client.status(reqId, STATUS_CODE.OP_UNSUPPORTED));
  client.on('close', () => {
    for (const { remote } of handles.values()) if (hostSet) host.close(remote, () => {});
    handles.clear();
  });
}
