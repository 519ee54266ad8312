// What a container can reach: only what the database says is the user's (exact ids), only the
// user's own files (own uid), limits on every container, no network path to another user's.
import { stat, writeFile } from 'node:fs/promises';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { App } from '../../src/app.js';
import type { RemoteHost } from '../../src/hosts/remote-host.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';

const BUSYBOX = 'gpubot-test/busybox:latest';

describe('containers are addressed exactly, and kept apart', () => {
  let bed: Bed;
  let app: App;
  const inspect = async (name: string) => {
    const r = await bed.dockerCli('h1', ['inspect', name]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout)[0];
  };

  const exec = (name: string, ...cmd: string[]) => bed.dockerCli('h1', ['exec', name, ...cmd]);
  const uidOf = async (handle: string) => (await app.db.user.findUniqueOrThrow({ where: { handle } })).uid!;

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    app = await appFor(bed, { limits: { ...((bed.config().limits as object | undefined) ?? {}), memoryPerGpu: '1g', cpusPerGpu: 0.5 } });
    for (const [user, name] of [
      ['alice', 'alices'],
      ['bob', 'bobs'],
    ] as const) {
      const r = await chat(app, user, `run --image ${BUSYBOX} --name ${name} -- sh -c 'trap "exit 0" TERM; echo secret of ${user}; httpd -f -p 8080 -h /workspace & wait'`);
      expect(r.reply.tone, r.text).toBe('success');
    }
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it("never asks Docker for a name: a container still starting answers so, even when its name is a prefix of a stranger's id", async () => {
    const bobsId = (await inspect('bobs')).Id as string;
    const mallory = await app.actor('mallory');
    // mallory's launch is under way: its row exists, its container does not yet. Its name is the start of bob's container id.
    const prefix = bobsId.slice(0, 4);
    await app.db.container.create({ data: { name: prefix, userId: mallory.userId, hostName: 'h1', image: BUSYBOX, gpuIndexes: '3', state: 'creating' } });
    for (const cmd of [`logs ${prefix}`, `stop ${prefix}`, `start ${prefix}`, `rm ${prefix}`, `extend ${prefix} --hours 1`, `keep ${prefix}`]) {
      const r = await chat(app, 'mallory', cmd);
      expect(r.reply.title, cmd).toBe(`${prefix} is still starting; try in a moment`);
      expect(r.text, cmd).not.toContain('secret of bob');
    }
    expect((await inspect('bobs')).State.Running).toBe(true);
    const logs = await waitFor(
      async () => {
        const r = await chat(app, 'bob', 'logs bobs');
        return r.text.includes('secret of bob') ? r : null;
      },
      { what: "bob's own logs" },
    );
    expect(logs.reply.tone).toBe('info');
  });

  it("runs as the user's own uid with HOME=/workspace; the user's files are theirs and nobody else's", async () => {
    const alice = await uidOf('alice');
    const bob = await uidOf('bob');
    expect(alice).toBeGreaterThanOrEqual(20000);
    expect(bob).not.toBe(alice);
    expect((await exec('alices', 'id', '-u')).stdout.trim()).toBe(String(alice));
    expect((await exec('alices', 'id', '-g')).stdout.trim()).toBe(String(alice));
    expect((await exec('alices', 'sh', '-c', 'echo $HOME')).stdout.trim()).toBe('/workspace');
    expect((await inspect('alices')).Config.User).toBe(`${alice}:${alice}`);

    const dir = `${bed.baseDir}/users/alice`;
    const d = await stat(dir);
    expect([d.uid, d.gid, d.mode & 0o777]).toEqual([alice, alice, 0o700]);
    expect((await exec('alices', 'sh', '-c', 'echo weights > /workspace/model.txt')).code).toBe(0);
    const f = await stat(`${dir}/model.txt`);
    expect([f.uid, f.gid]).toEqual([alice, alice]);

    // Wherever bob's uid meets alice's directory, it cannot read it; alice's uid can.
    const peek = (uid: number) => bed.dockerCli('h1', ['run', '--rm', '--user', `${uid}:${uid}`, '--network', 'none', '-v', `${dir}:/peek`, BUSYBOX, 'cat', '/peek/model.txt']);
    const asBob = await peek(bob);
    expect(asBob.code).not.toBe(0);
    expect(asBob.stderr + asBob.stdout).toContain('Permission denied');
    expect((await peek(alice)).stdout).toBe('weights\n');
    // And bob's own container does not have alice's directory at all.
    expect((await exec('bobs', 'ls', '/workspace')).stdout).not.toContain('model.txt');
  });

  it('puts limits on every container: pids, memory and CPUs per GPU, ulimits, NET_RAW dropped', async () => {
    const c = await inspect('alices');
    expect(c.HostConfig.PidsLimit).toBe(4096);
    expect(c.HostConfig.Memory).toBe(1024 ** 3);
    expect(c.HostConfig.NanoCpus).toBe(0.5e9);
    const memlock = (bed.config().limits as { memlock?: number } | undefined)?.memlock ?? -1;
    expect(c.HostConfig.Ulimits).toEqual([
      { Name: 'memlock', Soft: memlock, Hard: memlock },
      { Name: 'stack', Soft: 67108864, Hard: 67108864 },
    ]);
    expect(c.HostConfig.CapDrop).toEqual(['NET_RAW']);
    expect(c.HostConfig.SecurityOpt).toEqual(['no-new-privileges']);
    // From inside: the limits hold.
    expect((await exec('alices', 'sh', '-c', 'ulimit -s')).stdout.trim()).toBe('65536');
    expect((await exec('alices', 'cat', '/sys/fs/cgroup/pids.max')).stdout.trim() || (await exec('alices', 'cat', '/sys/fs/cgroup/pids/pids.max')).stdout.trim()).toBe('4096');
    const ping = await exec('alices', 'ping', '-c', '1', '-W', '1', '127.0.0.1');
    expect(ping.code).not.toBe(0);
  });

  it("cannot reach another user's container over the network; the user's own containers reach each other", async () => {
    const ipOf = async (name: string) => Object.values((await inspect(name)).NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0]!.IPAddress;
    await writeFile(`${bed.baseDir}/users/bob/index.html`, 'bob page\n');
    await writeFile(`${bed.baseDir}/users/alice/index.html`, 'alice page\n');
    const bobs = await ipOf('bobs');
    const alices = await ipOf('alices');
    expect((await inspect('alices')).HostConfig.NetworkMode).toBe('gpubot-u-alice');
    expect((await inspect('bobs')).HostConfig.NetworkMode).toBe('gpubot-u-bob');
    const again = await chat(app, 'alice', `run --image ${BUSYBOX} --name alices2`);
    expect(again.reply.tone, again.text).toBe('success');
    // nc, not wget: this busybox's wget crashes when run as a uid with no /etc/passwd entry.
    const get = async (from: string, ip: string) => {
      const r = await exec(from, 'sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ip} 8080`);
      return { ...r, stdout: r.stdout.split('\r\n\r\n')[1] ?? '' };
    };
    // The bob page is served (bob's own container can fetch it), but not to alice.
    const own = await get('bobs', bobs);
    expect(own.stdout, JSON.stringify([own, await exec('bobs', 'ps'), await exec('bobs', 'ls', '-la', '/workspace')])).toBe('bob page\n');
    const fromAlice = await get('alices', bobs);
    expect(fromAlice.code).not.toBe(0);
    expect(fromAlice.stdout).not.toContain('bob page');
    const fromBob = await get('bobs', alices);
    expect(fromBob.code).not.toBe(0);
    expect((await get('alices2', alices)).stdout).toBe('alice page\n');
  });

  it("a user's first runs at the same moment share one network, and a duplicate left by a second process is cleared", async () => {
    for (const [user, name] of [
      ['alice', 'alices'],
      ['alice', 'alices2'],
      ['bob', 'bobs'],
    ]) {
      const rm = await chat(app, user!, `rm ${name}`);
      expect(rm.reply.tone, rm.text).toBe('success');
    }
    // A new user's two launches race to make gpubot-u-carol; Docker would keep both, and a name with two matches breaks every later run.
    const both = await Promise.all(['carol1', 'carol2'].map((name) => chat(app, 'carol', `run --image ${BUSYBOX} --name ${name}`)));
    for (const r of both) expect(r.reply.tone, r.text).toBe('success');
    const named = async (name: string) =>
      (await bed.dockerCli('h1', ['network', 'ls', '--filter', `name=^${name}$`, '--format', '{{.ID}}'])).stdout.trim().split('\n').filter(Boolean);
    expect(await named('gpubot-u-carol')).toHaveLength(1);
    // Another bot process made the same network at the same moment: Docker's own duplicate check is not atomic. Raced
    // through the Engine API until Docker keeps two (it usually does in the first round).
    const docker = new Docker({ socketPath: bed.host('h1').dockerSocket });
    for (let round = 0; round < 20 && (await named('gpubot-u-dave')).length < 2; round++) {
      for (const id of await named('gpubot-u-dave')) await docker.getNetwork(id).remove();
      await Promise.allSettled(Array.from({ length: 8 }, () => docker.createNetwork({ Name: 'gpubot-u-dave', Driver: 'bridge' })));
    }
    expect((await named('gpubot-u-dave')).length).toBeGreaterThan(1);
    const dave = await chat(app, 'dave', `run --image ${BUSYBOX} --name daves`);
    expect(dave.reply.tone, dave.text).toBe('success');
    expect(await named('gpubot-u-dave')).toHaveLength(1);
  });

  it("asks for a user's network once per host, and makes it again when it was removed behind gpubot's back", async () => {
    const named = async (name: string) =>
      (await bed.dockerCli('h1', ['network', 'ls', '--filter', `name=^${name}$`, '--format', '{{.ID}}'])).stdout.trim().split('\n').filter(Boolean);
    const docker = new Docker({ socketPath: bed.host('h1').dockerSocket });
    const lists = vi.spyOn((app.pool.get('h1') as RemoteHost).docker, 'listNetworks');
    const run = async (name: string) => {
      const r = await chat(app, 'erin', `run --image ${BUSYBOX} --name ${name}`);
      expect(r.reply.tone, r.text).toBe('success');
      expect((await inspect(name)).HostConfig.NetworkMode).toBe('gpubot-u-erin');
      expect((await chat(app, 'erin', `rm ${name}`)).reply.tone).toBe('success');
    };
    await run('erin1');
    const first = lists.mock.calls.length;
    expect(first).toBeGreaterThan(0);
    await run('erin2');
    expect(lists.mock.calls.length).toBe(first); // known to this process: not asked again
    // Removed through the host's own Docker API, not through gpubot.
    for (const id of await named('gpubot-u-erin')) await docker.getNetwork(id).remove();
    expect(await named('gpubot-u-erin')).toHaveLength(0);
    await run('erin3');
    expect(await named('gpubot-u-erin')).toHaveLength(1);
    // And once more, the same way: the network made again is remembered and, gone, made again.
    for (const id of await named('gpubot-u-erin')) await docker.getNetwork(id).remove();
    await run('erin4');
    expect(await named('gpubot-u-erin')).toHaveLength(1);
    lists.mockRestore();
  });
});
