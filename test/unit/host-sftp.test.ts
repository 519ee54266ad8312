import { describe, expect, it } from 'vitest';
import { HostSftpPool, TooManyFileSessions, hostSftpArgv } from '../../src/hosts/host-sftp.js';
import type { SshConnection } from '../../src/hosts/ssh-connection.js';

describe('the jailed SFTP server on a host', () => {
  it('passes the directory, mount path and uid as words of their own, after the fixed script', () => {
    const argv = hostSftpArgv({ hostDir: "/srv/gpubot/users/o'brien $(id)", mountPath: '/workspace', uid: 20001 }, '0123456789abcdef');
    expect(argv.slice(0, 8)).toEqual(['exec', 'unshare', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c']);
    expect(argv.slice(9)).toEqual(['gpubot-sftp', "/srv/gpubot/users/o'brien $(id)", '/workspace', '20001', '0123456789abcdef']);
    expect(argv[7]).not.toContain("o'brien");
    expect(hostSftpArgv({ hostDir: '/srv/u/alice', mountPath: '/workspace' }, '0123456789abcdef').at(-2)).toBe('');
    expect(() => hostSftpArgv({ hostDir: '/srv/u/alice', mountPath: '/workspace' }, '1; rm -rf /')).toThrow();
  });

  it('refuses a path or uid it cannot jail safely', () => {
    for (const jail of [
      { hostDir: 'relative/dir', mountPath: '/workspace' },
      { hostDir: '/srv/users/../etc', mountPath: '/workspace' },
      { hostDir: '/srv/users/alice', mountPath: '/' },
      { hostDir: '/srv/users/alice', mountPath: '/work space' },
      { hostDir: '/srv/users/alice', mountPath: '/a/../etc' },
      { hostDir: '/srv/users/alice', mountPath: '/etc' },
      { hostDir: '/srv/users/alice', mountPath: '/dev/shm' },
      { hostDir: '/srv/users/alice', mountPath: '/lib64' },
      { hostDir: '/srv/users/alice', mountPath: '/workspace', uid: 0 },
      { hostDir: '/srv/users/alice', mountPath: '/workspace', uid: -5 },
      { hostDir: '/srv/users/alice', mountPath: '/workspace', uid: 1.5 },
    ]) {
      expect(() => hostSftpArgv(jail, '0123456789abcdef'), JSON.stringify(jail)).toThrow();
    }
  });

  it("shares one server among a user's sessions, refuses a ninth user's, and ends a server with its last session", () => {
    const opened: string[] = [];
    // A connection whose exec channels never answer: the pool's bookkeeping alone is under test.
    const ssh = {
      name: 'h1',
      openExec: (argv: string[]) => {
        opened.push(argv[10]!);
        return new Promise(() => {});
      },
    } as unknown as SshConnection;
    const pool = new HostSftpPool(ssh);
    const jail = (n: number) => ({ hostDir: `/srv/users/u${n}`, mountPath: '/workspace', uid: 20000 + n });
    const first = pool.take(jail(1), 1000);
    const again = pool.take(jail(1), 1000);
    expect(opened).toEqual(['/srv/users/u1']);
    const others = [2, 3, 4, 5, 6, 7, 8].map((n) => pool.take(jail(n), 1000));
    expect(pool.size).toBe(HostSftpPool.MAX_SERVERS);
    expect(() => pool.take(jail(9), 1000)).toThrow(TooManyFileSessions);
    first.release();
    first.release();
    expect(pool.size).toBe(8);
    again.release();
    expect(pool.size).toBe(7);
    expect(() => pool.take(jail(9), 1000)).not.toThrow();
    for (const o of others) o.release();
    expect(pool.size).toBe(1);
  });
});
