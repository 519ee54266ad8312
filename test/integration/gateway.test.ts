import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, realpath, writeFile, mkdir, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { clientOptions, jailedSftpServers, makeKey, runTool, spawnTool } from '../support/openssh.js';
import { waitFor } from '../support/wait.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('the SSH gateway, with the real OpenSSH client', () => {
  let bed: Bed;
  let app: App;
  let port: number;
  let keys: string;
  let alice: { path: string; publicLine: string };
  let bob: { path: string; publicLine: string };
  let stranger: { path: string; publicLine: string };
  let hostKeyPath: string;

  const ssh = (key: string, user: string, command: string[] = [], input?: string, extra: string[] = []) =>
    runTool('ssh', [...clientOptions(key, port), ...extra, `${user}@127.0.0.1`, ...command], input);
  const inContainer = async (name: string, cmd: string[]) => {
    const r = await bed.dockerCli('h1', ['exec', name, ...cmd]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    keys = await mkdtemp(join(tmpdir(), 'gpb-keys-'));
    hostKeyPath = join(bed.baseDir, 'gateway', 'host_key');
    app = await appFor(bed, {
      gateway: { port: 0, listen: '127.0.0.1', hostKeyPath, publicHost: '127.0.0.1' },
      images: { default: 'gpubot-test/busybox:latest', allowed: ['pytorch/pytorch:*', 'gpubot-test/*'], jupyter: ['gpubot-test/jupyter:*'] },
    });
    port = (await app.startGateway())!.port;
    [alice, bob, stranger] = await Promise.all([makeKey(keys, 'alice'), makeKey(keys, 'bob'), makeKey(keys, 'stranger')]);
    for (const [user, key] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      const r = await chat(app, user, `key add ${key.publicLine}`);
      expect(r.reply.tone, r.text).toBe('success');
    }
    for (const [user, name] of [
      ['alice', 'exp1'],
      ['bob', 'bobs'],
    ]) {
      const r = await chat(app, user!, `run --gpus 1 --host h1 --name ${name}`);
      expect(r.reply.tone, r.text).toBe('success');
    }
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('keeps its host key: generated at first start, shown in admin hosts', async () => {
    expect((await stat(hostKeyPath)).mode & 0o777).toBe(0o600);
    const fp = (await runTool('ssh-keygen', ['-l', '-f', hostKeyPath])).stdout.split(' ')[1];
    expect(fp).toMatch(/^SHA256:/);
    expect((await chat(app, 'admin', 'admin hosts')).text).toContain(`host key ${fp}`);
  });

  it('checks keys in chat: ed25519 and rsa 3072 in, rsa 2048, junk and private keys out; ls and rm', async () => {
    const rsa = await makeKey(keys, 'rsa3072', 'rsa', 3072);
    const weak = await makeKey(keys, 'rsa2048', 'rsa', 2048);
    const ecdsa = await makeKey(keys, 'ecdsa', 'ecdsa', 256);
    expect((await chat(app, 'carol', `key add ${rsa.publicLine}`)).reply.tone).toBe('success');
    expect((await chat(app, 'carol', `key add ${ecdsa.publicLine}`)).reply.tone).toBe('success');
    expect((await chat(app, 'carol', `key add ${weak.publicLine}`)).text).toContain('This RSA key has 2048 bits; at least 3072 are needed');
    expect((await chat(app, 'carol', 'key add ssh-ed25519 AAAAnotakey')).text).toContain('Not a valid ssh-ed25519 public key');
    expect((await chat(app, 'carol', 'key add ssh-dss AAAAB3NzaC1kc3MAAACBA')).text).toContain('"ssh-dss" keys are not accepted');
    const priv = (await readFile(rsa.path, 'utf8')).split('\n').slice(0, 2).join(' ');
    expect((await chat(app, 'carol', `key add ${priv}`)).text).toContain('That is a private key');
    expect((await chat(app, 'dave', `key add ${alice.publicLine}`)).text).toContain('is registered already');
    const fp = (await runTool('ssh-keygen', ['-l', '-f', `${rsa.path}.pub`])).stdout.split(' ')[1]!;
    const ls = await chat(app, 'carol', 'key ls');
    expect(ls.text).toContain(fp);
    expect(ls.text).toContain('rsa3072@laptop');
    expect((await chat(app, 'dave', `key rm ${fp}`)).text).toContain(`You have no key ${fp}`);
    expect((await chat(app, 'carol', `key rm ${fp}`)).reply.title).toBe(`Key removed: ${fp}`);
    expect((await chat(app, 'carol', 'key rm all')).reply.title).toBe('Key removed: ' + (await runTool('ssh-keygen', ['-l', '-f', `${ecdsa.path}.pub`])).stdout.split(' ')[1]);
    expect((await chat(app, 'carol', 'key ls')).reply.title).toBe('You have no SSH keys');
    const events = await app.db.auditEvent.findMany({ where: { actor: 'carol', action: { in: ['key-add', 'key-rm'] } } });
    expect(events.map((e) => e.action).sort()).toEqual(['key-add', 'key-add', 'key-rm', 'key-rm']);
  });

  it('runs a command in the container and returns its exit status', async () => {
    const r = await ssh(alice.path, 'exp1', ['echo in-$(hostname) $(pwd); cat /proc/1/cmdline | tr "\\0" " "; exit 7']);
    expect(r.code, r.stderr).toBe(7);
    expect(r.stdout).toContain('/workspace');
    expect(r.stdout).toContain('sleep infinity');
    const piped = await ssh(alice.path, 'exp1', ['wc -c'], 'x'.repeat(100_000));
    expect(piped.stdout.trim()).toBe('100000');
  });

  it('opens a login shell with a PTY', async () => {
    const r = await ssh(alice.path, 'exp1', [], 'tty; echo answer-$((6*7)); exit 3\n', ['-tt']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.stdout).toContain('answer-42');
  });

  it("refuses a key nobody added, someone else's container, an unknown one and a stopped one, saying why", async () => {
    const wrong = await ssh(stranger.path, 'exp1', ['true']);
    expect(wrong.code).toBe(255);
    expect(wrong.stderr).toContain('Permission denied (publickey)');
    const others = await ssh(bob.path, 'exp1', ['echo should-not-run']);
    expect(others.code).toBe(1);
    expect(others.stderr).toContain('"exp1" belongs to alice; only they or an admin can enter it');
    expect(others.stdout).not.toContain('should-not-run');
    const unknown = await ssh(alice.path, 'nope', ['true']);
    expect(unknown.stderr).toContain('there is no container named "nope"');
    // The gateway never opens anything on a host itself: a host's name is no container.
    expect((await ssh(alice.path, 'h1', ['true'])).stderr).toContain('there is no container named "h1"');
    expect((await chat(app, 'bob', 'stop bobs')).reply.tone).toBe('success');
    const stopped = await ssh(bob.path, 'bobs', ['true']);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr).toContain('bobs is stopped; say "start bobs" in chat to run it again');
    const sftp = await runTool('sftp', [...clientOptions(bob.path, port), '-b', '-', 'exp1@127.0.0.1'], 'ls\n');
    expect(sftp.code).not.toBe(0);
    expect(sftp.stderr).toContain('"exp1" belongs to alice');
  });

  it("copies files both ways with scp and sftp, into the owner's directory on the host", async () => {
    const local = join(keys, 'blob.bin');
    const data = randomBytes(3 * 1024 * 1024);
    await writeFile(local, data);
    const up = await runTool('scp', [...clientOptions(alice.path, port), local, 'exp1@127.0.0.1:/workspace/blob.bin']);
    expect(up.code, up.stderr).toBe(0);
    expect(
      createHash('sha256')
        .update(await readFile(join(bed.baseDir, 'users', 'alice', 'blob.bin')))
        .digest('hex'),
    ).toBe(createHash('sha256').update(data).digest('hex'));
    expect(await inContainer('exp1', ['wc', '-c', '/workspace/blob.bin'])).toContain(String(data.length));
    const back = join(keys, 'back.bin');
    const down = await runTool('scp', [...clientOptions(alice.path, port), 'exp1@127.0.0.1:blob.bin', back]);
    expect(down.code, down.stderr).toBe(0);
    expect((await readFile(back)).equals(data)).toBe(true);
    const sftp = await runTool(
      'sftp',
      [...clientOptions(alice.path, port), '-b', '-', 'exp1@127.0.0.1'],
      'mkdir sub\nput ' + local + ' sub/copy.bin\nrename sub/copy.bin sub/moved.bin\nls -l sub\npwd\nrm sub/moved.bin\nrmdir sub\n',
    );
    expect(sftp.code, sftp.stderr).toBe(0);
    expect(sftp.stdout).toContain('moved.bin');
    expect(sftp.stdout).toContain('Remote working directory: /workspace');
  });

  it("makes what scp and sftp write the container user's (their uid, not the host's SSH user): editable inside, unreadable to others", async () => {
    const uidOf = async (handle: string) => (await app.db.user.findUniqueOrThrow({ where: { handle } })).uid!;
    const [aliceUid, bobUid] = [await uidOf('alice'), await uidOf('bob')];
    expect(aliceUid).toBeGreaterThanOrEqual(20000);
    expect((await inContainer('exp1', ['id', '-u'])).trim()).toBe(String(aliceUid));
    const local = join(keys, 'notes.txt');
    await writeFile(local, 'line one\n', { mode: 0o644 });
    const up = await runTool('scp', [...clientOptions(alice.path, port), local, 'exp1@127.0.0.1:/workspace/notes.txt']);
    expect(up.code, up.stderr).toBe(0);
    const sftp = await runTool('sftp', [...clientOptions(alice.path, port), '-b', '-', 'exp1@127.0.0.1'], `mkdir made\nput ${local} made/inner.txt\n`);
    expect(sftp.code, sftp.stderr).toBe(0);
    const home = join(bed.baseDir, 'users', 'alice');
    const dirStat = await stat(home);
    expect([dirStat.uid, dirStat.mode & 0o777]).toEqual([aliceUid, 0o700]);
    for (const path of ['notes.txt', 'made', 'made/inner.txt']) {
      const st = await stat(join(home, path));
      expect([path, st.uid, st.gid], path).toEqual([path, aliceUid, aliceUid]);
      expect(st.mode & 0o022, path).toBe(0);
    }
    // The container's user edits them and writes next to them.
    await inContainer('exp1', ['sh', '-c', 'echo line two >> /workspace/notes.txt && echo inside > /workspace/made/from-inside.txt && rm /workspace/made/inner.txt']);
    expect(await readFile(join(home, 'notes.txt'), 'utf8')).toBe('line one\nline two\n');
    expect((await stat(join(home, 'made', 'from-inside.txt'))).uid).toBe(aliceUid);
    // Another gpubot user's uid on that host gets nowhere near them.
    const asBob = await runTool('setpriv', [`--reuid=${bobUid}`, `--regid=${bobUid}`, '--clear-groups', 'cat', join(home, 'notes.txt')]);
    expect(asBob.code).not.toBe(0);
    expect(asBob.stderr).toContain('Permission denied');
    // A directory that exists already is refused (OpenSSH's sftp prints only "Failure"), and keeps what it held.
    const again = await runTool('sftp', [...clientOptions(alice.path, port), '-b', '-', 'exp1@127.0.0.1'], 'mkdir made\n');
    expect(again.code).not.toBe(0);
    expect(await readFile(join(home, 'made', 'from-inside.txt'), 'utf8')).toBe('inside\n');
  });

  it("never lets SFTP out of the user's directory: .., absolute paths, symlinks planted in the container", async () => {
    const bobDir = join(bed.baseDir, 'users', 'bob');
    await mkdir(bobDir, { recursive: true });
    await writeFile(join(bobDir, 'secret.txt'), 'bob-secret');
    await inContainer('exp1', ['ln', '-sfn', bobDir, '/workspace/to-bob']);
    await inContainer('exp1', ['ln', '-sfn', '../bob', '/workspace/rel-bob']);
    await inContainer('exp1', ['ln', '-sfn', `${bobDir}/new.txt`, '/workspace/dangling']);
    const local = join(keys, 'small.txt');
    await writeFile(local, 'alice-was-here');
    const attempts = [
      'get ../bob/secret.txt',
      'get /workspace/../bob/secret.txt',
      `get ${bobDir}/secret.txt`,
      'get /etc/passwd',
      'get to-bob/secret.txt',
      'get rel-bob/secret.txt',
      'ls to-bob',
      'cd /',
      `put ${local} ../bob/evil.txt`,
      `put ${local} to-bob/evil.txt`,
      `put ${local} dangling`,
      'rename blob.bin ../bob/stolen.bin',
      'symlink / root-link',
      'chmod 4755 blob.bin',
    ];
    for (const attempt of attempts) {
      const out = join(keys, `out-${randomBytes(4).toString('hex')}`);
      const r = await runTool(
        'sftp',
        [...clientOptions(alice.path, port), '-b', '-', 'exp1@127.0.0.1'],
        `lcd ${keys}\n${attempt.startsWith('get') ? `${attempt} ${out}` : attempt}\n`,
      );
      if (attempt.startsWith('chmod')) {
        // Allowed, but without the setuid bit.
        expect((await stat(join(bed.baseDir, 'users', 'alice', 'blob.bin'))).mode & 0o7777).toBe(0o755);
        continue;
      }
      if (attempt.startsWith('ls')) {
        // The link itself is alice's and may be listed; what it points at may not.
        expect(r.stdout + r.stderr, attempt).not.toContain('secret.txt');
        continue;
      }
      expect(r.code, `${attempt}: ${r.stdout} ${r.stderr}`).not.toBe(0);
      await expect(stat(out), attempt).rejects.toThrow();
    }
    expect((await readdir(bobDir)).sort()).toEqual(['secret.txt']);
    expect(await readdir(join(bed.baseDir, 'users', 'alice'))).not.toContain('root-link');
  });

  it("keeps SFTP in the user's directory while a directory in the path is swapped for a symlink (a race from inside the container)", async () => {
    // The attack a path check on the host cannot stop: the user, inside their container, swaps
    // real/ for a link to bob's directory over and over, while their SFTP client reads and writes
    // through real/. A check that resolves real/ as a directory and then an open that finds the
    // link would read bob's secret or write into his directory as the host's SSH user (root).
    const bobDir = join(bed.baseDir, 'users', 'bob');
    await mkdir(bobDir, { recursive: true });
    await writeFile(join(bobDir, 'secret.txt'), 'bob-secret');
    const before = (await readdir(bobDir)).sort();
    await inContainer('exp1', ['sh', '-c', 'mkdir -p /workspace/real && echo decoy > /workspace/real/secret.txt']);
    const loop = `echo $$ > /tmp/swapper.pid; cd /workspace; ln -sfn ${bobDir} link; while true; do mv real real.d; mv link real; mv real link; mv real.d real; done`;
    expect((await bed.dockerCli('h1', ['exec', '-d', 'exp1', 'sh', '-c', loop])).code).toBe(0);
    const out = await mkdtemp(join(keys, 'race-'));
    const local = join(keys, 'mallory.txt');
    await writeFile(local, 'alice-was-here');
    try {
      const lines: string[] = [`lcd ${out}`];
      for (let i = 0; i < 600; i++) lines.push(`-get real/secret.txt got-${i}`, `-put ${local} real/put-${i}.txt`);
      const r = await runTool('sftp', [...clientOptions(alice.path, port), '-b', '-', 'exp1@127.0.0.1'], lines.join('\n') + '\n', 120_000);
      expect(r.stdout + r.stderr).not.toContain('bob-secret');
    } finally {
      await inContainer('exp1', ['sh', '-c', 'kill "$(cat /tmp/swapper.pid)"; sleep 0.2; cd /workspace; if [ -d real.d ]; then rm -f real; mv real.d real; fi; rm -f link; true']);
    }
    const got = await readdir(out);
    // The race was really run: some reads found real/ a directory and got the decoy.
    expect(got.length).toBeGreaterThan(0);
    for (const f of got) expect(await readFile(join(out, f), 'utf8'), f).toBe('decoy\n');
    expect((await readdir(bobDir)).sort()).toEqual(before);
    // Each SFTP session's server on the host ends with it.
    await waitFor(async () => (await jailedSftpServers(bed.baseDir)).length === 0, { what: 'the jailed sftp-server to end', timeoutMs: 10_000 });
  });

  it('ends the host side of a file session that hangs in a fifo the user made, with the session', async () => {
    // sftp-server blocks in open() on a fifo with no reader; closing its channel alone would leave
    // it (and the SSH session it holds on the host) behind for good.
    await inContainer('exp1', ['mkfifo', '/workspace/trap']);
    const local = join(keys, 'into-fifo.txt');
    await writeFile(local, 'stuck');
    const client = spawnTool('sftp', [...clientOptions(alice.path, port), '-b', '-', 'exp1@127.0.0.1']);
    client.stdin!.end(`put ${local} trap\n`);
    await waitFor(async () => (await jailedSftpServers(bed.baseDir)).length > 0, { what: 'the jailed sftp-server', timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 500));
    client.kill();
    await waitFor(async () => (await jailedSftpServers(bed.baseDir)).length === 0, { what: 'the jailed sftp-server to end', timeoutMs: 10_000 });
    await inContainer('exp1', ['rm', '/workspace/trap']);
  });

  it('forwards -L to a port inside the container, and refuses other targets and -R', async () => {
    await bed.dockerCli('h1', ['exec', 'exp1', 'sh', '-c', 'mkdir -p /tmp/www && echo hello-from-exp1 > /tmp/www/index.html && httpd -p 127.0.0.1:8080 -h /tmp/www']);
    const local = await freePort();
    const fwd = spawnTool('ssh', [...clientOptions(alice.path, port), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:localhost:8080`, 'exp1@127.0.0.1']);
    try {
      const body = await waitFor(
        async () =>
          fetch(`http://127.0.0.1:${local}/`)
            .then((r) => r.text())
            .catch(() => null),
        { what: 'the forwarded page' },
      );
      expect(body).toContain('hello-from-exp1');
      // Many requests over the same forward, each a new channel.
      for (let i = 0; i < 5; i++) expect(await (await fetch(`http://127.0.0.1:${local}/`)).text()).toContain('hello-from-exp1');
    } finally {
      fwd.kill();
    }
    const other = await freePort();
    const bad = spawnTool('ssh', [...clientOptions(alice.path, port), '-N', '-L', `${other}:10.0.0.1:80`, 'exp1@127.0.0.1']);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await expect(fetch(`http://127.0.0.1:${other}/`).then((r) => r.text())).rejects.toThrow();
    } finally {
      bad.kill();
    }
    const remote = await runTool('ssh', [...clientOptions(alice.path, port), '-N', '-o', 'ExitOnForwardFailure=yes', '-R', '0:localhost:22', 'exp1@127.0.0.1']);
    expect(remote.code).toBe(255);
    expect(remote.stderr).toMatch(/remote port forwarding failed/i);
  });

  it("forwards to a service on the container's own address through the host's sshd, byte for byte, with no Docker exec in the path", async () => {
    await inContainer('exp1', ['sh', '-c', 'mkdir -p /tmp/big && head -c 5000000 /dev/urandom > /tmp/big/blob.bin && httpd -p 8090 -h /tmp/big']);
    const expected = createHash('sha256')
      .update(Buffer.from(await inContainer('exp1', ['base64', '/tmp/big/blob.bin']), 'base64'))
      .digest('hex');
    const since = (Date.now() / 1000).toFixed(3);
    const local = await freePort();
    const fwd = spawnTool('ssh', [...clientOptions(alice.path, port), '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:localhost:8090`, 'exp1@127.0.0.1']);
    try {
      const body = await waitFor(
        async () =>
          fetch(`http://127.0.0.1:${local}/blob.bin`)
            .then(async (r) => (r.ok ? Buffer.from(await r.arrayBuffer()) : null))
            .catch(() => null),
        { what: 'the forwarded download' },
      );
      expect(body.length).toBe(5_000_000);
      expect(createHash('sha256').update(body).digest('hex')).toBe(expected);
    } finally {
      fwd.kill();
    }
    // Docker's own record: the relay would have made an exec in exp1 for each connection.
    const until = (Date.now() / 1000 + 1).toFixed(3);
    const events = await bed.dockerCli('h1', [
      'events',
      '--since',
      since,
      '--until',
      until,
      '--filter',
      'container=exp1',
      '--filter',
      'event=exec_create',
      '--format',
      '{{.Action}}',
    ]);
    expect(events.code, events.stderr).toBe(0);
    expect(events.stdout.trim()).toBe('');
  });

  it('run --jupyter: refuses images without JupyterLab naming those with it; replies the ssh -L line and URL, which answer through the gateway', async () => {
    const plain = await chat(app, 'alice', 'run --gpus 1 --host h1 --jupyter');
    expect(plain.reply.tone).toBe('error');
    expect(plain.text).toContain('gpubot-test/busybox:latest has no JupyterLab');
    expect(plain.text).toContain('images.jupyter: gpubot-test/jupyter:*');
    // A stand-in for JupyterLab (the bed's images are busybox): `jupyter lab ...` serves /lab on the
    // given port, and only with the given token.
    const maker = 'make-jupyter-image';
    const jupyter = [
      '#!/bin/sh',
      'for a; do case "$a" in --port=*) PORT=${a#*=};; --ServerApp.token=*) TOKEN=${a#*=};; --ServerApp.root_dir=*) ROOT=${a#*=};; esac; done',
      'export TOKEN ROOT',
      'exec nc -ll -p "$PORT" -e /usr/local/bin/lab-handler',
    ].join('\n');
    const handler = [
      '#!/bin/sh',
      'read -r method target version',
      'while IFS= read -r line && [ ${#line} -gt 1 ]; do :; done',
      'if [ "$target" = "/lab?token=$TOKEN" ]; then printf "HTTP/1.0 200 OK\\r\\n\\r\\nJupyterLab in %s\\n" "$ROOT"',
      'else printf "HTTP/1.0 403 Forbidden\\r\\n\\r\\nbad token\\n"; fi',
    ].join('\n');
    const install = 'cd /usr/local/bin && printf "%s\\n" "$1" > jupyter && printf "%s\\n" "$2" > lab-handler && chmod 755 jupyter lab-handler';
    const made = await bed.dockerCli('h1', ['run', '--name', maker, 'gpubot-test/busybox:latest', 'sh', '-c', install, 'sh', jupyter, handler]);
    expect(made.code, made.stderr).toBe(0);
    expect((await bed.dockerCli('h1', ['commit', maker, 'gpubot-test/jupyter:latest'])).code).toBe(0);
    await bed.dockerCli('h1', ['rm', maker]);

    const r = await chat(app, 'alice', 'run --gpus 1 --host h1 --name nb --jupyter --image gpubot-test/jupyter:latest');
    expect(r.reply.tone, r.text).toBe('success');
    const codes = r.reply.blocks.flatMap((b) => (b.type === 'code' ? [b.text] : []));
    expect(codes).toContain(`ssh -N -L 8888:localhost:8888 -p ${port} nb@127.0.0.1`);
    const url = codes.find((c) => c.startsWith('http://localhost:8888/lab?token='))!;
    expect(url).toMatch(/^http:\/\/localhost:8888\/lab\?token=[0-9a-f]{48}$/);
    // The reply's line as the user runs it, on a free local port instead of 8888 (shared machine).
    const local = await freePort();
    const line = `ssh -N -L 8888:localhost:8888 -p ${port} nb@127.0.0.1`.split(' ');
    const fwd = spawnTool('ssh', [...clientOptions(alice.path, 0), ...line.slice(1).map((w) => w.replace(/^8888:/, `${local}:`))]);
    try {
      const at = url.replace('localhost:8888', `127.0.0.1:${local}`);
      const page = await waitFor(
        async () =>
          fetch(at)
            .then(async (x) => (x.ok ? x.text() : null))
            .catch(() => null),
        { what: 'JupyterLab through the forward' },
      );
      expect(page).toContain('JupyterLab in /workspace');
      const wrong = await fetch(at.replace(/token=.*/, 'token=guess'));
      expect(wrong.status).toBe(403);
    } finally {
      fwd.kill();
    }
    expect((await chat(app, 'alice', 'rm nb')).reply.tone).toBe('success');
  });

  it("syncs with rsync -e 'ssh -p PORT' where the image has rsync, both ways, as the container's user", async () => {
    // An image with rsync: this machine's rsync and the libraries ldd names, added to the bed's busybox image.
    const stage = await mkdtemp(join(tmpdir(), 'gpb-rsync-image-'));
    const libs = (await runTool('ldd', ['/usr/bin/rsync'])).stdout.match(/\/\S+/g) ?? [];
    for (const file of ['/usr/bin/rsync', ...libs]) {
      await mkdir(join(stage, dirname(file)), { recursive: true });
      await copyFile(await realpath(file), join(stage, file));
    }
    await runTool('chmod', ['755', join(stage, 'usr/bin/rsync')]);
    const maker = 'make-rsync-image';
    expect((await bed.dockerCli('h1', ['create', '--name', maker, 'gpubot-test/busybox:latest', 'true'])).code).toBe(0);
    expect((await bed.dockerCli('h1', ['cp', `${stage}/.`, `${maker}:/`])).code).toBe(0);
    expect((await bed.dockerCli('h1', ['commit', maker, 'gpubot-test/rsync:latest'])).code).toBe(0);
    await bed.dockerCli('h1', ['rm', maker]);
    const r = await chat(app, 'alice', 'run --gpus 1 --host h1 --name rs --image gpubot-test/rsync:latest');
    expect(r.reply.tone, r.text).toBe('success');

    const src = await mkdtemp(join(tmpdir(), 'gpb-rsync-src-'));
    await mkdir(join(src, 'data'));
    await writeFile(join(src, 'train.py'), 'print("hi")\n');
    await writeFile(join(src, 'data', 'big.bin'), randomBytes(512 * 1024));
    const e = ['-e', `ssh ${clientOptions(alice.path, port).join(' ')}`];
    const up = await runTool('rsync', ['-a', '--stats', ...e, `${src}/`, 'rs@127.0.0.1:/workspace/proj/']);
    expect(up.code, up.stderr).toBe(0);
    const proj = join(bed.baseDir, 'users', 'alice', 'proj');
    expect(await readFile(join(proj, 'train.py'), 'utf8')).toBe('print("hi")\n');
    expect((await readFile(join(proj, 'data', 'big.bin'))).equals(await readFile(join(src, 'data', 'big.bin')))).toBe(true);
    const aliceUid = (await app.db.user.findUniqueOrThrow({ where: { handle: 'alice' } })).uid!;
    expect((await stat(join(proj, 'data', 'big.bin'))).uid).toBe(aliceUid);
    // A change inside the container comes back; only what changed is sent again.
    await inContainer('rs', ['sh', '-c', 'echo "print(2)" > /workspace/proj/train.py']);
    const down = await runTool('rsync', ['-a', ...e, 'rs@127.0.0.1:/workspace/proj/', `${src}/`]);
    expect(down.code, down.stderr).toBe(0);
    expect(await readFile(join(src, 'train.py'), 'utf8')).toBe('print(2)\n');
    const again = await runTool('rsync', ['-a', '--stats', ...e, `${src}/`, 'rs@127.0.0.1:/workspace/proj/']);
    expect(again.stdout).toMatch(/Number of regular files transferred: 0/);
    // Where the image has no rsync, the user is told so by rsync itself (nothing is left half done).
    const none = await runTool('rsync', ['-a', ...e, `${src}/`, 'exp1@127.0.0.1:/workspace/proj2/']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/rsync: not found|command not found/);
    expect((await chat(app, 'alice', 'rm rs')).reply.tone).toBe('success');
  });

  it('gives a ssh-config block that works, as VS Code Remote-SSH uses it: a script opens a port, then -L to it', async () => {
    const r = await chat(app, 'alice', 'ssh-config');
    const block = r.reply.blocks.find((b) => b.type === 'code')!;
    expect(block.type === 'code' && block.text).toContain('Host gpubot-exp1');
    expect(r.text).not.toContain('gpubot-bobs');
    expect(r.text).toContain('vscode://vscode-remote/ssh-remote+gpubot-exp1/workspace');
    const cfg = join(keys, 'ssh_config');
    await writeFile(
      cfg,
      (block as { text: string }).text.replace(/IdentityFile .*/, `IdentityFile ${alice.path}`) +
        '\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n',
    );
    const script = await runTool(
      'ssh',
      ['-F', cfg, 'gpubot-exp1', 'sh -s'],
      'mkdir -p /tmp/vsc && echo vscode-server-up > /tmp/vsc/index.html && httpd -p 127.0.0.1:9123 -h /tmp/vsc && echo listening on 9123\n',
    );
    expect(script.code, script.stderr).toBe(0);
    expect(script.stdout).toContain('listening on 9123');
    const local = await freePort();
    const fwd = spawnTool('ssh', ['-F', cfg, '-N', '-L', `${local}:127.0.0.1:9123`, 'gpubot-exp1']);
    try {
      expect(
        await waitFor(
          async () =>
            fetch(`http://127.0.0.1:${local}/`)
              .then((x) => x.text())
              .catch(() => null),
          { what: 'the forwarded server' },
        ),
      ).toContain('vscode-server-up');
    } finally {
      fwd.kill();
    }
  });

  it('audits each session with who, where from, start, end and bytes; an open session is activity for idle', async () => {
    // The earlier tests' sessions (a killed `ssh -L`) may still be closing: counting one of them as
    // this session, the idle round would run once it closed and before this one opened.
    await waitFor(() => !app.ops.gateway!.activeContainers().has('exp1'), { what: 'earlier sessions to end' });
    const before = (await app.db.auditEvent.aggregate({ _max: { id: true } }))._max.id ?? 0;
    const open = spawnTool('ssh', [...clientOptions(alice.path, port), 'exp1@127.0.0.1', 'read word; echo started-$word; sleep 30']);
    open.stdin!.write('now\n');
    try {
      await waitFor(() => open.output().includes('started-now'), { what: 'the session' });
      expect(app.ops.gateway!.activeContainers().has('exp1')).toBe(true);
      const idle = await chat(app, 'admin', 'admin run-job idle');
      expect(idle.reply.tone, idle.text).toBe('success');
      expect((await app.db.container.findUnique({ where: { name: 'exp1' } }))!.idleSince).toBeNull();
    } finally {
      open.kill();
    }
    await waitFor(() => !app.ops.gateway!.activeContainers().has('exp1'), { what: 'the session to end' });
    await chat(app, 'admin', 'admin run-job idle');
    expect((await app.db.container.findUnique({ where: { name: 'exp1' } }))!.idleSince).not.toBeNull();
    // The end is written after the connection closed: waited for, not assumed.
    const events = await waitFor(
      async () => {
        const found = await app.db.auditEvent.findMany({
          where: { id: { gt: before }, actor: 'alice', action: { in: ['ssh-session', 'ssh-session-end'] } },
          orderBy: { id: 'asc' },
        });
        return found.some((e) => e.action === 'ssh-session-end') ? found : null;
      },
      { what: "the session's audit events" },
    );
    expect(events.map((e) => [e.action, e.target])).toEqual([
      ['ssh-session', 'exp1'],
      ['ssh-session-end', 'exp1'],
    ]);
    expect(events[0]!.detail).toMatch(/^opened from 127\.0\.0\.1 with key SHA256:/);
    expect(events[1]!.detail).toMatch(/^from 127\.0\.0\.1, started .*Z, \d+ s, 4 bytes in, [1-9]\d* bytes out, used exec$/);
  });

  it('ends the sessions of a removed key: at once when removed in chat, within the sweep otherwise', async () => {
    const second = await makeKey(keys, 'alice2');
    expect((await chat(app, 'alice', `key add ${second.publicLine}`)).reply.tone).toBe('success');
    const fp = (await runTool('ssh-keygen', ['-l', '-f', `${second.path}.pub`])).stdout.split(' ')[1]!;
    const session = spawnTool('ssh', [...clientOptions(second.path, port), 'exp1@127.0.0.1', 'echo started; sleep 120']);
    await waitFor(() => session.output().includes('started'), { what: 'the session' });
    const exited = new Promise<number | null>((r) => session.on('exit', r));
    const removedAt = Date.now();
    expect((await chat(app, 'alice', `key rm ${fp}`)).reply.tone).toBe('success');
    expect(await exited).toBe(255);
    expect(Date.now() - removedAt).toBeLessThan(10_000);
    expect(session.output()).toContain('your key was removed');
    expect((await ssh(second.path, 'exp1', ['true'])).stderr).toContain('Permission denied');

    // Removed behind this process's back (another gpubot process, an admin in the database).
    const third = await makeKey(keys, 'alice3');
    expect((await chat(app, 'alice', `key add ${third.publicLine}`)).reply.tone).toBe('success');
    const fp3 = (await runTool('ssh-keygen', ['-l', '-f', `${third.path}.pub`])).stdout.split(' ')[1]!;
    const s3 = spawnTool('ssh', [...clientOptions(third.path, port), 'exp1@127.0.0.1', 'echo started; sleep 120']);
    await waitFor(() => s3.output().includes('started'), { what: 'the session' });
    const exited3 = new Promise<number | null>((r) => s3.on('exit', r));
    await app.db.sshKey.delete({ where: { fingerprint: fp3 } });
    expect(await exited3).toBe(255);
    expect(s3.output()).toContain('your key was removed');
  }, 60_000);

  it('rate limits failed logins per source address and per key', async () => {
    const gw = app.ops.gateway as import('../../src/gateway/service.js').GatewayService;
    const { utils } = (await import('ssh2')).default;
    const aliceKey = utils.parseKey(await readFile(alice.path, 'utf8')) as import('ssh2').ParsedKey;
    const blob = aliceKey.getPublicSSH();
    // A forged signature for a registered key, from addresses that change: the key is blocked.
    for (let i = 0; i < 10; i++)
      expect((await gw.authenticate({ username: 'exp1', remote: `10.9.0.${i}`, key: blob, signed: { blob: randomBytes(32), signature: randomBytes(64) } })).verdict).toBe('reject');
    expect((await gw.authenticate({ username: 'exp1', remote: '10.9.1.1', key: blob, signed: { blob: randomBytes(32), signature: randomBytes(64) } })).verdict).toBe('blocked');
    expect(await app.db.auditEvent.count({ where: { action: 'ssh-login', result: 'refused' } })).toBe(10);
    // Unknown keys from one address: after 20, even a good key from there is turned away.
    for (let i = 0; i < 20; i++) await ssh(stranger.path, 'exp1', ['true']);
    const blocked = await ssh(bob.path, 'bobs', ['true']);
    expect(blocked.code).toBe(255);
    expect(blocked.stderr).toMatch(/Permission denied|Connection closed|disconnect/i);
  }, 120_000);
});
