import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { SFTPWrapper } from 'ssh2';
import { HostUnavailable } from './errors.js';
import type { SshConnection } from './ssh-connection.js';

/** One user's directory on a host, and where it appears inside their container. */
export interface HostSftpJail {
  hostDir: string;
  mountPath: string;
  /** The uid (and gid) the container runs as; undefined: root. */
  uid?: number;
}

// A mount path as the jail makes it: absolute, plain names, no "." or "..", and not where the jail
// keeps its own files (the user would then write the jail's passwd or libraries).
const MOUNT_PATH = /^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/;
const JAIL_OWN = /^\/(etc|dev|lib[^/]*)(\/|$)/;

/**
 * Runs OpenSSH's own sftp-server on the host, confined by the kernel: in a mount namespace of its
 * own, chrooted into an empty read-only tmpfs holding only the user's directory (at the mount path,
 * as in their container), /dev/null, a one-line passwd, and, out of sight, sftp-server with its
 * loader and libraries; as the container's uid when it has one. So whatever the user plants in
 * their directory from inside the container (a symlink to another user's directory, a directory
 * swapped for a link between a check and an open), nothing on the host outside it can be named.
 * The directory is opened once (fd 3) and bound from that fd, so its own path is not raced either.
 * Arguments: DIR MOUNT_PATH UID ('' for root) TAG. The libraries' directory is named after TAG, so
 * the server's command line starts with it and `pkill -f` finds this server and no other process.
 * Needs root on the host (a mount namespace).
 */
const JAIL_SCRIPT = `set -eu
dir=$1 mnt=$2 id=$3 tag=$4
server=
for s in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server; do
  if [ -x "$s" ]; then server=$s; break; fi
done
if [ -z "$server" ]; then echo "this host has no OpenSSH sftp-server" >&2; exit 127; fi
if [ -L "$dir" ] || [ ! -d "$dir" ]; then echo "no directory $dir on this host" >&2; exit 1; fi
loader=$(ldd "$server" | sed -n 's/^[[:space:]]*\\(\\/[^ ]*\\) (0x.*/\\1/p' | head -n 1)
if [ -z "$loader" ]; then echo "cannot find the loader of $server" >&2; exit 1; fi
exec 3<"$dir"
j=/tmp
mount -t tmpfs -o mode=0755,size=1m gpubot-sftp "$j"
lib=/.gpubot-$tag
mkdir -m 0711 "$j$lib" "$j/dev" "$j/etc"
bins=$server
# As root (runAs: root), setpriv comes too: it drops root's other capabilities before sftp-server.
if [ -z "$id" ]; then
  setpriv=$(command -v setpriv || true)
  if [ -z "$setpriv" ]; then echo "this host has no setpriv (util-linux)" >&2; exit 127; fi
  bins="$bins $setpriv"
fi
libs=
for b in $bins; do libs="$libs $(ldd "$b" | sed -n 's/.*=> \\(\\/[^ ]*\\) (0x.*/\\1/p')"; done
# glibc before 2.34 loads its passwd lookup as a module: bring it when it is there.
for l in $libs; do case "$l" in */libc.so.*) [ -e "\${l%/*}/libnss_files.so.2" ] && libs="$libs \${l%/*}/libnss_files.so.2" ;; esac; done
for f in $bins $libs "$loader"; do
  b="$j$lib/\${f##*/}"
  if [ -e "$b" ]; then continue; fi
  : > "$b"
  mount --bind "$f" "$b"
  mount -o remount,bind,ro "$b"
done
: > "$j/dev/null"
mount --bind /dev/null "$j/dev/null"
mount -o remount,bind,ro "$j/dev/null"
printf 'passwd: files\\ngroup: files\\n' > "$j/etc/nsswitch.conf"
if [ -n "$id" ]; then
  echo "user:x:$id:$id::$mnt:/bin/false" > "$j/etc/passwd"; echo "user:x:$id:" > "$j/etc/group"
else
  echo "root:x:0:0::$mnt:/bin/false" > "$j/etc/passwd"; echo "root:x:0:" > "$j/etc/group"
fi
mkdir -p "$j$mnt"
mount --bind /proc/self/fd/3 "$j$mnt"
exec 3<&-
mount -o remount,bind,nosuid,nodev "$j$mnt"
mount -o remount,ro "$j"
cd /
set -- "$lib/\${loader##*/}" --library-path "$lib" "$lib/\${server##*/}" -d "$mnt" -u 022 -P symlink,hardlink
if [ -n "$id" ]; then exec chroot --userspec="$id:$id" --groups="$id" "$j" "$@"; fi
exec chroot "$j" "$lib/\${loader##*/}" --library-path "$lib" "$lib/setpriv" --no-new-privs --inh-caps=-all \\
  --bounding-set=-all,+chown,+dac_override,+dac_read_search,+fowner,+fsetid -- "$@"
`;

/** The fixed argv that starts the jailed sftp-server; every value is checked first. */
export function hostSftpArgv(jail: HostSftpJail, tag: string): string[] {
  if (!/^[0-9a-f]{16}$/.test(tag)) throw new Error('bad jail tag');
  if (!jail.hostDir.startsWith('/') || jail.hostDir.split('/').some((part) => part === '..' || part === '.')) throw new Error(`not a plain absolute directory: ${jail.hostDir}`);
  if (!MOUNT_PATH.test(jail.mountPath) || JAIL_OWN.test(jail.mountPath)) throw new Error(`mount path ${jail.mountPath} cannot be served over SFTP`);
  if (jail.uid !== undefined && !(Number.isInteger(jail.uid) && jail.uid > 0 && jail.uid < 2 ** 31)) throw new Error(`bad uid ${jail.uid}`);
  // exec all the way down: sshd's session process is sftp-server itself, so a signal reaches it.
  return [
    'exec',
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-c',
    JAIL_SCRIPT,
    'gpubot-sftp',
    jail.hostDir,
    jail.mountPath,
    jail.uid === undefined ? '' : String(jail.uid),
    tag,
  ];
}

// ssh2's SFTP client: its public Client.sftp() reaches only the host's "sftp" subsystem, which runs
// as the SSH user (root) with the whole host in view. The same client class is driven here over
// the exec channel of the jailed server; it uses its channel only to send data and to close.
const require = createRequire(import.meta.url);
type SftpClient = SFTPWrapper & { push(data: Buffer | null): void; _init(): void };
const { SFTP } = require('ssh2/lib/protocol/SFTP.js') as { SFTP: new (client: unknown, chanInfo: unknown, cfg: object) => SftpClient };

/** An SFTP client onto the user's directory only, through the host's kept SSH connection. Ends when closed. */
export async function openHostSftp(ssh: SshConnection, jail: HostSftpJail, timeoutMs: number, live = new Set<string>()): Promise<SFTPWrapper> {
  const tag = randomBytes(8).toString('hex');
  // Listed until it is known gone, so a shutdown can still kill it (HostSftpPool.endAll).
  live.add(tag);
  let channel: Awaited<ReturnType<SshConnection['openExec']>>;
  try {
    channel = await ssh.openExec(hostSftpArgv(jail, tag), timeoutMs);
  } catch (err) {
    live.delete(tag);
    throw err;
  }
  let stderr = '';
  channel.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString('utf8');
  });
  const side = () => ({ id: 0, window: Infinity, packetSize: 32768, state: 'open' });
  const transport = {
    // "OpenSSH": ssh2 then reads and writes in OpenSSH's larger packets.
    _remoteIdentRaw: 'SSH-2.0-OpenSSH_gpubot-jail',
    channelData: (_id: number, data: Buffer) => channel.write(data),
    channelClose: () => stop(),
  };
  // Killed, not just closed: a server blocked in an open() (a fifo the user made) would outlive
  // its channel and keep the session sshd counts against MaxSessions. sshd will not pass a signal
  // to a root login's session, so a command of its own does it, naming this server by its tag.
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    channel.close();
    // Off the list only when pkill ran (0: killed, 1: already gone); a failed attempt leaves it
    // for HostSftpPool.endAll.
    void ssh.exec(['pkill', '-KILL', '-f', `^/\\.gpubot-${tag}/`], timeoutMs).then(
      (r) => {
        if (r.code === 0 || r.code === 1) live.delete(tag);
      },
      () => {},
    );
  };
  const sftp = new SFTP({ _protocol: transport }, { type: 'sftp', incoming: side(), outgoing: side() }, {});
  channel.on('data', (d: Buffer) => sftp.push(d));
  // An exit status means the server has exited; a channel closed without one (the connection
  // dropped) may leave it running, so it stays listed.
  channel.on('exit', () => {
    if (!stopping) live.delete(tag);
  });
  channel.on('close', () => {
    sftp.push(null);
    sftp.emit('close');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('no answer'), timeoutMs);
    function fail(why: string): void {
      clearTimeout(timer);
      stop();
      reject(new HostUnavailable(ssh.name, `cannot serve SFTP: ${stderr.trim().split('\n').pop() || why}`));
    }
    sftp.once('ready', () => {
      clearTimeout(timer);
      resolve(sftp);
    });
    channel.once('close', () => fail('the sftp-server ended'));
    sftp._init();
  });
}

/** More users' file sessions on one host at once than its file connection takes. */
export class TooManyFileSessions extends Error {
  override name = 'TooManyFileSessions';
}

/**
 * The jailed servers open on one connection, one per user directory however many of that user's
 * file sessions are open (SFTP multiplexes them). Each holds one session of the connection, and
 * sshd allows 10 per connection by default (MaxSessions): at most MAX_SERVERS at once.
 */
export class HostSftpPool {
  static readonly MAX_SERVERS = 8;
  private readonly open = new Map<string, { sftp: Promise<SFTPWrapper>; users: number }>();
  /** Tags of the servers that may still run on the host. */
  private readonly live = new Set<string>();

  constructor(private readonly ssh: SshConnection) {}

  /** Jailed servers open now. */
  get size(): number {
    return this.open.size;
  }

  /** Whether a server of this pool may still run on the host. */
  get running(): boolean {
    return this.live.size > 0;
  }

  /**
   * Kills every server that may still run, for a shutdown: one blocked on a fifo would otherwise
   * outlive gpubot on the host. Tags are hex, so the pattern is theirs alone.
   */
  async endAll(timeoutMs: number): Promise<void> {
    if (this.live.size === 0) return;
    const tags = [...this.live];
    const r = await this.ssh.exec(['pkill', '-KILL', '-f', `^/\\.gpubot-(${tags.join('|')})/`], timeoutMs).catch(() => null);
    if (r && (r.code === 0 || r.code === 1)) for (const t of tags) this.live.delete(t);
  }

  /** A server for this jail, and the function that gives it back. */
  take(jail: HostSftpJail, timeoutMs: number): { sftp: Promise<SFTPWrapper>; release: () => void } {
    const key = [jail.hostDir, jail.mountPath, jail.uid ?? ''].join('\0');
    let entry = this.open.get(key);
    if (!entry) {
      if (this.open.size >= HostSftpPool.MAX_SERVERS) throw new TooManyFileSessions(`${this.ssh.name} has ${this.open.size} users' file transfers open; try again when one ends`);
      const made = { sftp: openHostSftp(this.ssh, jail, timeoutMs, this.live), users: 0 };
      entry = made;
      this.open.set(key, made);
      const forget = () => {
        if (this.open.get(key) === made) this.open.delete(key);
      };
      made.sftp.then((s) => s.once('close', forget), forget);
    }
    entry.users++;
    const held = entry;
    let released = false;
    return {
      sftp: held.sftp,
      release: () => {
        if (released) return;
        released = true;
        if (--held.users > 0) return;
        if (this.open.get(key) === held) this.open.delete(key);
        held.sftp.then(
          (s) => s.end(),
          () => {},
        );
      },
    };
  }
}
