import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile, chown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostSftpArgv } from '../../src/hosts/host-sftp.js';
import { runTool } from '../support/openssh.js';
import { waitFor } from '../support/wait.js';

// The jail script itself, run here as on a host (root, OpenSSH's sftp-server), driven by the real
// sftp client: what a user's SFTP requests can reach once the proxy's path checks are raced past.
describe('the jailed sftp-server on a host', () => {
  let work: string;
  let script: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'gpb-jail-'));
    script = join(work, 'jail.sh');
    // argv[8] is the script; the words after it are passed the same way below.
    await writeFile(script, hostSftpArgv({ hostDir: '/x', mountPath: '/workspace' }, '0123456789abcdef')[8]!);
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  /** sftp -D through the jail: DIR served at /workspace, as UID ('' for root). */
  const sftpJailed = (dir: string, uid: string, tag: string, batch: string) =>
    runTool('sftp', ['-b', '-', '-D', `unshare --mount --propagation private -- /bin/sh ${script} ${dir} /workspace '${uid}' ${tag}`], batch);

  it('as root (runAs: root): links to host paths lead nowhere, the host root and /dev/null cannot be written, and root keeps only file capabilities', async () => {
    const dir = join(work, 'root-user');
    await mkdir(dir);
    await writeFile(join(dir, 'mine.txt'), 'mine');
    await symlink('/etc', join(dir, 'to-etc'));
    await symlink(work, join(dir, 'to-work'));
    const hostPasswd = await readFile('/etc/passwd', 'utf8');
    const nullMode = (await stat('/dev/null')).mode;
    const out = join(work, 'got-passwd');
    const r = await sftpJailed(
      dir,
      '',
      'aaaaaaaaaaaaaaaa',
      [
        `-get to-etc/passwd ${out}`,
        '-chmod 000 /dev/null',
        `-put ${script} /evil.sh`,
        `-put ${script} to-work/evil.sh`,
        '-symlink / root-link',
        'get mine.txt ' + join(work, 'mine.back'),
      ].join('\n') + '\n',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(work, 'mine.back'), 'utf8')).toBe('mine');
    // to-etc resolves inside the jail, where /etc holds a one-line passwd of gpubot's making.
    const got = await readFile(out, 'utf8').catch(() => '');
    expect(got).not.toBe(hostPasswd);
    expect(got.split('\n').filter(Boolean)).toHaveLength(got ? 1 : 0);
    expect((await stat('/dev/null')).mode).toBe(nullMode);
    await expect(stat(join(work, 'evil.sh'))).rejects.toThrow();
    await expect(stat(join(dir, 'root-link'))).rejects.toThrow();

    // While it runs: its capabilities and no_new_privs, read from the host.
    const held = spawn('sftp', ['-b', '-', '-D', `unshare --mount --propagation private -- /bin/sh ${script} ${dir} /workspace '' bbbbbbbbbbbbbbbb`], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    try {
      const pid = await waitFor(async () => (await runTool('pgrep', ['-f', '^/\\.gpubot-bbbbbbbbbbbbbbbb/'])).stdout.trim().split('\n')[0], { what: 'the jailed server' });
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      // chown, dac_override, dac_read_search, fowner, fsetid: nothing to mount, chroot or trace with.
      expect(status).toMatch(/^CapBnd:\s+000000000000001f$/m);
      expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    } finally {
      held.stdin!.end();
      held.kill();
    }
  });

  it("as the container's uid: files are theirs, and the jail's own files cannot be listed", async () => {
    const dir = join(work, 'uid-user');
    await mkdir(dir, { mode: 0o700 });
    await chown(dir, 20123, 20123);
    const r = await sftpJailed(dir, '20123', 'cccccccccccccccc', `put ${script} sent.sh\nmkdir made\n-ls /.gpubot-cccccccccccccccc\n-ls /dev\npwd\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Remote working directory: /workspace');
    expect(r.stdout).not.toContain('sftp-server');
    for (const name of ['sent.sh', 'made']) {
      const st = await stat(join(dir, name));
      expect([name, st.uid, st.gid, st.mode & 0o022]).toEqual([name, 20123, 20123, 0]);
    }
  });
});
