// gpubot as the chat front end of a real local Slurm cluster (test/bed/slurm.ts: munged,
// slurmctld, two slurmd nodes with 2 fake gres GPUs each, a login node's sshd) beside one direct
// SSH host. Needs slurm-wlm and munge (.ci/run installs them): without them this FAILS, it does
// not skip, so CI cannot pass while not testing Slurm.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { slurmMissing, startSlurmBed, type SlurmBed } from '../bed/slurm.js';
import { appFor, chat } from '../support/app.js';
import { testDatabaseUrl } from '../support/database.js';
import { waitFor } from '../support/wait.js';

interface Row {
  id: string;
  name: string;
  user: string;
  state: string;
  reason: string;
  gres: string;
  limit: string;
  comment: string;
}

describe('Slurm: run, queue, logs, extend, stop and refusals against a real cluster', () => {
  let bed: Bed;
  let slurm: SlurmBed;
  let app: App;
  let databaseUrl: string;
  let slurmConfig: Record<string, unknown>;
  const inbox: { to: string; title: string }[] = [];
  const events = async () => expect((await chat(app, 'boss', 'admin run-job slurm')).reply.tone).toBe('success');

  /** squeue as an admin on the cluster sees it, not through gpubot. */
  const squeue = async (): Promise<Row[]> => {
    const r = await slurm.cmd(['squeue', '-h', '-a', '--states=all', '-o', '%i|%j|%u|%T|%r|%b|%l|%k']);
    expect(r.code).toBe(0);
    return r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [id, name, user, state, reason, gres, limit, ...comment] = l.split('|');
        return { id: id!, name: name!, user: user!, state: state!, reason: reason!, gres: gres!, limit: limit!, comment: comment.join('|') };
      });
  };
  const job = async (name: string) => (await squeue()).filter((j) => j.name === name).at(-1);

  beforeAll(async () => {
    // Fails here (does not skip) when Slurm is not installed.
    expect(slurmMissing()).toBeUndefined();
    [bed, slurm] = await Promise.all([startBed({ hosts: 1, docker: false }), startSlurmBed({ nodes: 2, gpusPerNode: 2, users: ['gpbalice', 'gpbbob'] })]);
    databaseUrl = await testDatabaseUrl(bed.baseDir, 'slurm');
    slurmConfig = {
      admins: ['boss'],
      slurm: slurm.config({ maxHours: 8, users: { alice: { unixUser: 'gpbalice' }, bob: { unixUser: 'gpbbob' }, boss: { unixUser: 'gpbbob' } } }),
    };
    app = await appFor(bed, slurmConfig, undefined, { databaseUrl });
    await waitFor(() => app.ops.slurm!.connection().state === 'up', { what: 'the login node' });
    app.registerNotifier('console', async (to, reply) => void inbox.push({ to, title: reply.title }));
    // The first round only records what runs already.
    await events();
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await Promise.all([bed?.teardown(), slurm?.teardown()]);
  });

  it('status shows the direct host and the cluster side by side', async () => {
    const { text } = await chat(app, 'alice', 'status');
    expect(text).toContain('h1');
    expect(text).toContain('cluster (Slurm): 0/4 GPUs in use on 2 nodes, 0 job(s) pending');
    expect(text).toMatch(/node1\s.*idle\s.*0\/2/);
  });

  it('admin hosts lists the cluster beside the hosts, to admins only', async () => {
    const { text } = await chat(app, 'boss', 'admin hosts');
    expect(text).toContain('h1');
    expect(text).toContain('cluster (Slurm): 0/4 GPUs in use on 2 nodes');
    expect(text).toMatch(/node2\s.*idle/);
    const refused = await chat(app, 'alice', 'admin hosts');
    expect(refused.reply.code).toBe('not-admin');
    expect(refused.text).not.toContain('node1');
  });

  it('run submits a job with the right gres, time and ownership comment, as the mapped Unix user', async () => {
    const { reply, text } = await chat(app, 'alice', `run --host cluster --gpus 2 --hours 3 --name exp1 -- sh -c "echo gpus=$CUDA_VISIBLE_DEVICES; sleep 600"`);
    expect(reply.tone, text).toBe('success');
    const j = (await job('exp1'))!;
    expect(j).toMatchObject({ user: 'gpbalice', gres: 'gres:gpu:2', limit: '3:00:00', comment: `gpubot:${app.instanceId}:alice` });
    expect(text).toContain(`exp1 is job ${j.id} on cluster`);
    await waitFor(async () => (await job('exp1'))?.state === 'RUNNING', { what: 'exp1 running' });
    await events();
    expect(inbox).toContainEqual({ to: 'alice', title: expect.stringMatching(/^exp1 started on node\d after .+ in the queue$/) });
    await waitFor(async () => (await chat(app, 'alice', 'logs exp1')).text.includes('gpus=0,1'), { what: 'the job output in logs', intervalMs: 1000 });
  });

  it('a full cluster queues: the third run waits with Slurm’s reason, GPUs never double-booked', async () => {
    expect((await chat(app, 'bob', 'run --host cluster --gpus 2 --name b1 -- sleep 600')).reply.tone).toBe('success');
    await waitFor(async () => (await job('b1'))?.state === 'RUNNING', { what: 'b1 running' });
    const third = await chat(app, 'alice', 'run --host cluster --gpus 2 --name exp3 -- sleep 600');
    expect(third.reply.tone).toBe('success');
    expect(third.reply.title).toMatch(/exp3 is job \d+ on cluster, waiting: (Resources|Priority|None)/);
    await waitFor(async () => (await job('exp3'))?.reason === 'Resources', { what: 'exp3 pending for Resources' });
    const queue = await chat(app, 'alice', 'queue');
    expect(queue.text).toMatch(/exp3.*1 of 1.*Resources/);
    const ls = await chat(app, 'alice', 'ls');
    expect(ls.text).toMatch(/exp1.*running on node\d/);
    expect(ls.text).toMatch(/exp3.*pending \(Resources\)/);
    expect(ls.text).not.toContain('b1');
    // Per node, never more GPUs in use than it has; the cluster full.
    const nodes = await slurm.cmd(['scontrol', 'show', 'node', '-o', '-d']);
    for (const line of nodes.stdout.trim().split('\n')) expect(line).toMatch(/GresUsed=gpu:2\b/);
    const nodeOf = async (name: string) => (await slurm.cmd(['squeue', '-h', '-n', name, '-t', 'RUNNING', '-o', '%N'])).stdout.trim();
    const [n1, n2] = [await nodeOf('exp1'), await nodeOf('b1')];
    expect([n1, n2].sort()).toEqual(['node1', 'node2']);
    expect((await chat(app, 'alice', 'status')).text).toContain('cluster (Slurm): 4/4 GPUs in use on 2 nodes, 1 job(s) pending');
  });

  it('another user is refused: no stop, logs or extend of alice’s job', async () => {
    for (const cmd of ['stop exp1', 'rm exp1', 'logs exp1', 'extend exp1 --hours 1']) {
      const { reply } = await chat(app, 'bob', cmd);
      expect(reply.code, cmd).toBe('not-owner');
    }
    expect((await job('exp1'))!).toMatchObject({ state: 'RUNNING', limit: '3:00:00' });
    // Slurm's own refusal comes back in its words, as a refusal.
    const tooBig = await chat(app, 'boss', 'run --host cluster --gpus 3 --name big -- true');
    expect(tooBig.reply.code).toBe('not-allowed');
    expect(tooBig.text).toContain('Slurm refused to take big');
    expect(tooBig.text).toContain('Requested node configuration is not available');
    // A user with no Unix user on the cluster cannot submit.
    const before = (await squeue()).length;
    const carol = await chat(app, 'carol', 'run --host cluster -- sleep 1');
    expect(carol.reply.code).toBe('not-allowed');
    expect((await squeue()).length).toBe(before);
  });

  it('extend raises the Slurm time limit within the limits', async () => {
    const ok = await chat(app, 'alice', 'extend exp1 --hours 2');
    expect(ok.reply.tone, ok.text).toBe('success');
    expect((await job('exp1'))!.limit).toBe('5:00:00');
    const tooLong = await chat(app, 'alice', 'extend exp1 --hours 4');
    expect(tooLong.reply.code).toBe('over-quota');
    expect((await job('exp1'))!.limit).toBe('5:00:00');
  });

  it('jobs gpubot did not start are never touched, even the user’s own or ones claiming gpubot’s comment', async () => {
    const home = path.join(slurm.homeRoot, 'gpbbob');
    const own = await slurm.cmd(['runuser', '-u', 'gpbbob', '--', 'sbatch', '--parsable', '--job-name=handmade', '--gres=gpu:1', `--chdir=${home}`, '--wrap', 'sleep 600']);
    expect(own.code, own.stderr).toBe(0);
    // Submitted as bob but claiming to be alice's: alice may not touch it, bob sees no job of his.
    const forged = await slurm.cmd([
      'runuser',
      '-u',
      'gpbbob',
      '--',
      'sbatch',
      '--parsable',
      '--job-name=forged',
      '--gres=gpu:1',
      `--comment=gpubot:${app.instanceId}:alice`,
      `--chdir=${home}`,
      '--wrap',
      'sleep 600',
    ]);
    expect(forged.code, forged.stderr).toBe(0);
    expect((await chat(app, 'bob', 'stop handmade')).reply.code).toBe('not-found');
    expect((await chat(app, 'alice', 'stop handmade')).reply.code).toBe('not-found');
    expect((await chat(app, 'alice', 'stop forged')).reply.code).toBe('not-owner');
    expect((await chat(app, 'alice', 'logs forged')).reply.code).toBe('not-owner');
    expect(await job('handmade')).toMatchObject({ state: 'PENDING' });
    expect(await job('forged')).toMatchObject({ state: 'PENDING' });
    await slurm.cmd(['scancel', own.stdout.trim(), forged.stdout.trim()]);
  });

  it('hostile input reaches no shell and submits nothing', async () => {
    const marker = path.join(slurm.dir, 'pwned');
    const before = (await squeue()).length;
    for (const cmd of [
      `run --host cluster --name x;touch${marker} -- true`,
      'run --host "cluster;id" -- true',
      'run --host cluster --gpus 1;id -- true',
      'run --host cluster --hours 1$(id) -- true',
      'stop exp1;scancel',
      'logs ../../etc/shadow',
      'status cluster;id',
    ]) {
      const { reply } = await chat(app, 'alice', cmd);
      expect(reply.tone, cmd).toBe('error');
    }
    expect((await squeue()).length).toBe(before);
    // Shell text in the command's words stays words: the job echoes it, nothing runs it.
    const words = await chat(app, 'bob', `run --host cluster --gpus 1 --hours 1 --name quoted -- echo "'; touch ${marker}; echo '" '$(touch ${marker})' \`touch ${marker}\``);
    expect(words.reply.tone, words.text).toBe('success');
    // The cluster is full: bob's job waits. Cancel exp3 and alice's exp1 so it runs.
    expect((await chat(app, 'alice', 'stop exp3')).reply.tone).toBe('success');
    expect((await chat(app, 'alice', 'stop exp1')).reply.tone).toBe('success');
    await waitFor(async () => ['COMPLETED', 'FAILED'].includes((await job('quoted'))?.state ?? ''), { what: 'the quoted job to end', timeoutMs: 60_000 });
    await events();
    expect(inbox).toContainEqual({ to: 'bob', title: 'quoted finished (exit 0)' });
    expect(inbox).toContainEqual({ to: 'alice', title: 'exp3 was cancelled' });
    const logs = await chat(app, 'bob', 'logs quoted');
    expect(logs.text).toContain(`'; touch ${marker}; echo ' $(touch ${marker}) \`touch ${marker}\``);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('stop is scancel; stopping again says it already ended', async () => {
    await waitFor(async () => (await job('exp1'))?.state === 'CANCELLED', { what: 'exp1 cancelled' });
    expect((await chat(app, 'alice', 'stop exp1')).reply.code).toBe('conflict');
    // An admin may cancel anyone's gpubot job.
    expect((await chat(app, 'boss', 'stop b1')).reply.tone).toBe('success');
    await waitFor(async () => (await job('b1'))?.state === 'CANCELLED', { what: 'b1 cancelled' });
  });

  it('reserve is a Slurm allocation (salloc --no-shell): only its owner releases it', async () => {
    const { reply, text } = await chat(app, 'alice', 'reserve 2 --host cluster --hours 1');
    expect(reply.tone, text).toBe('success');
    const id = /job (\d+)$/.exec(reply.title)![1]!;
    expect(text).toContain(`srun --jobid=${id} --pty bash`);
    const alloc = (await squeue()).find((j) => j.id === id)!;
    expect(alloc).toMatchObject({ name: 'gpubot-reserve', user: 'gpbalice', state: 'RUNNING', gres: 'gres:gpu:2', limit: '1:00:00', comment: `gpubot:${app.instanceId}:alice` });
    expect((await chat(app, 'bob', `release ${id}`)).reply.code).toBe('not-owner');
    expect((await chat(app, 'bob', 'release all')).reply.title).toBe('You have no reservations');
    expect((await squeue()).find((j) => j.id === id)!.state).toBe('RUNNING');
    // More than the cluster can give now: refused at once, not queued.
    const busy = await chat(app, 'boss', 'reserve 3 --host cluster --hours 1');
    expect(busy.reply.code).toBe('not-allowed');
    expect((await chat(app, 'alice', `release ${id}`)).reply.tone).toBe('success');
    await waitFor(async () => (await squeue()).find((j) => j.id === id)?.state === 'CANCELLED', { what: 'the allocation cancelled' });
  });

  it('the weekly GPU-hours count cluster jobs: once used up, run is refused and nothing reaches sbatch', async () => {
    // boss (gpbbob) has held no GPUs yet: 0.01 GPU-hours is 36 GPU-seconds, and q1 holds 2 GPUs for 20 s.
    expect((await chat(app, 'boss', 'admin quota boss --gpu-hours 0.01')).reply.tone).toBe('success');
    const first = await chat(app, 'boss', 'run --host cluster --gpus 2 --hours 1 --name q1 -- sleep 20');
    expect(first.reply.tone, first.text).toBe('success');
    await waitFor(async () => (await job('q1'))?.state === 'COMPLETED', { what: 'q1 to finish', timeoutMs: 60_000 });
    const before = await squeue();
    const again = await chat(app, 'boss', 'run --host cluster --gpus 1 --hours 1 --name q2 -- true');
    expect(again.reply.code, again.text).toBe('over-gpu-hours');
    expect(again.reply.title).toBe('Over your quota');
    expect(again.text).toMatch(/quota gpuHoursPerWeek: you have used 0\.0 of your 0\.01 GPU-hours this week/);
    expect(await squeue()).toEqual(before);
    expect(await job('q2')).toBeUndefined();
    // The polling round keeps the record; quota and usage show the job's GPU time.
    await events();
    expect((await chat(app, 'boss', 'quota')).text).toMatch(/GPU-hours this week:\s*0\.0 \/ 0\.01 \(1[0-9]{2} %\)/);
    expect((await chat(app, 'boss', 'usage')).reply.title).toMatch(/^You held 2 GPUs for 0 h /);
    // Room again: the same run goes through.
    expect((await chat(app, 'boss', 'admin quota boss --gpu-hours 10')).reply.tone).toBe('success');
    const ok = await chat(app, 'boss', 'run --host cluster --gpus 1 --hours 1 --name q2 -- true');
    expect(ok.reply.tone, ok.text).toBe('success');
    expect(await job('q2')).toMatchObject({ user: 'gpbbob', gres: 'gres:gpu:1' });
  }, 90_000);

  it('GPUs held on the cluster count towards maxGpus on the hosts too', async () => {
    await chat(app, 'bob', 'quota'); // bob is known to gpubot before an admin sets his limit
    expect((await chat(app, 'boss', 'admin quota bob --max-gpus 2')).reply.tone).toBe('success');
    const onCluster = await chat(app, 'bob', 'run --host cluster --gpus 2 --hours 1 --name held2 -- sleep 120');
    expect(onCluster.reply.tone, onCluster.text).toBe('success');
    expect((await chat(app, 'bob', 'quota')).text).toMatch(/GPUs held now:\s*2 of at most 2/);
    const onHost = await chat(app, 'bob', 'run --gpus 1 --host h1 --name over1');
    expect(onHost.reply.code, onHost.text).toBe('over-quota');
    expect(onHost.text).toMatch(/you hold 2 GPUs and asked for 1 more; your limit is 2/);
    expect(await app.db.container.findFirst({ where: { name: 'over1' } })).toBeNull();
    expect((await chat(app, 'bob', 'stop held2')).reply.tone).toBe('success');
    await waitFor(async () => ['CANCELLED', 'COMPLETED', undefined].includes((await job('held2'))?.state), { what: 'held2 cancelled' });
    await events();
    expect((await chat(app, 'bob', 'quota')).text).toMatch(/GPUs held now:\s*0 of at most 2/);
    expect((await chat(app, 'boss', 'admin quota bob --max-gpus 8')).reply.tone).toBe('success');
  });

  it('a job that ends while no gpubot is running is told once, by the next process; never twice', async () => {
    const r = await chat(app, 'alice', 'run --host cluster --gpus 1 --hours 1 --name away1 -- true');
    expect(r.reply.tone, r.text).toBe('success');
    await waitFor(async () => (await job('away1'))?.state === 'COMPLETED', { what: 'away1 to finish', timeoutMs: 60_000 });
    // A new process on the same database (gpubot restarted): its first round tells alice.
    const later = await appFor(bed, slurmConfig, undefined, { databaseUrl, reconcileOnStart: false });
    const laterInbox: { to: string; title: string }[] = [];
    later.registerNotifier('console', async (to, reply) => void laterInbox.push({ to, title: reply.title }));
    try {
      await waitFor(() => later.ops.slurm!.connection().state === 'up', { what: 'the login node' });
      expect((await chat(later, 'boss', 'admin run-job slurm')).reply.tone).toBe('success');
      expect(laterInbox.filter((m) => m.title.startsWith('away1 '))).toEqual([{ to: 'alice', title: 'away1 finished (exit 0)' }]);
      // Once: neither this process again nor the first one tells it a second time.
      expect((await chat(later, 'boss', 'admin run-job slurm')).reply.tone).toBe('success');
      await events();
      expect(laterInbox.filter((m) => m.title.startsWith('away1 '))).toHaveLength(1);
      expect(inbox.filter((m) => m.title.startsWith('away1 '))).toEqual([]);
    } finally {
      await later.close();
    }
  });

  it('a node drained in Slurm shows as drained in status', async () => {
    expect((await slurm.cmd(['scontrol', 'update', 'NodeName=node1', 'State=DRAIN', 'Reason=fan broken'])).code).toBe(0);
    const { text, reply } = await chat(app, 'alice', 'status cluster');
    expect(reply.tone).toBe('info');
    expect(text).toContain('1 drained or down');
    expect(text).toMatch(/node1\s.*drained.*fan broken/);
    expect(text).not.toMatch(/node2\s.*drained/);
  });
});

describe('Slurm with containers: docker: the job runs the image on the node’s Docker with the allocation’s GPUs', () => {
  let bed: Bed;
  let slurm: SlurmBed;
  let app: App;

  beforeAll(async () => {
    expect(slurmMissing()).toBeUndefined();
    [bed, slurm] = await Promise.all([startBed({ hosts: 2, gpusPerHost: 4 }), startSlurmBed({ nodes: 2, gpusPerNode: 2, users: ['gpbalice'] })]);
    // Every node of this cluster is this machine, so each node gets a dockerd of its own: node1 is h1's, node2 is h2's,
    // reached as /…/docker-{node}.sock. The mapped user may use them (as the docker group would allow on a real node): test bed only.
    const nodeDir = path.join(bed.baseDir, 'node-docker');
    fs.mkdirSync(nodeDir, { recursive: true });
    for (const [node, host] of [
      ['node1', 'h1'],
      ['node2', 'h2'],
    ]) {
      const sock = bed.host(host!).dockerSocket;
      for (let d = path.dirname(sock); d !== '/' && d !== path.dirname(bed.baseDir); d = path.dirname(d)) fs.chmodSync(d, fs.statSync(d).mode | 0o005);
      fs.chmodSync(sock, 0o666);
      fs.symlinkSync(sock, path.join(nodeDir, `docker-${node}.sock`));
    }
    fs.chmodSync(nodeDir, 0o755);
    app = await appFor(bed, {
      slurm: slurm.config({ containers: 'docker', dockerSocket: path.join(nodeDir, 'docker-{node}.sock'), users: { alice: { unixUser: 'gpbalice' } } }),
    });
    await waitFor(() => app.ops.slurm!.connection().state === 'up', { what: 'the login node' });
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await Promise.all([bed?.teardown(), slurm?.teardown()]);
  });

  it('run starts the container on the allocated node’s Docker with the GPUs Slurm allocated; stop (scancel) ends the container too', async () => {
    const refused = await chat(app, 'alice', 'run --host cluster --image evil/miner:latest -- true');
    expect(refused.reply.code).toBe('not-allowed');
    const uid = String(fs.statSync(path.join(slurm.homeRoot, 'gpbalice')).uid);
    // Two jobs of 2 GPUs on nodes of 2 GPUs each: one per node, each container on that node's own dockerd.
    const placed: Record<string, string> = {};
    for (const name of ['c1', 'c2']) {
      const { reply, text } = await chat(
        app,
        'alice',
        `run --host cluster --gpus 2 --image gpubot-test/busybox:latest --name ${name} -- sh -c "echo nvd=$NVIDIA_VISIBLE_DEVICES uid=$(id -u); sleep 600"`,
      );
      expect(reply.tone, text).toBe('success');
      const container = `gpubot-slurm-${/is job (\d+)/.exec(reply.title)![1]!}`;
      await waitFor(
        async () => {
          for (const h of ['h1', 'h2']) if ((await bed.dockerCli(h, ['ps', '--format', '{{.Names}}'])).stdout.includes(container)) return (placed[name] = h);
          return null;
        },
        { what: `${name}’s container`, timeoutMs: 30_000 },
      );
      await waitFor(async () => (await chat(app, 'alice', `logs ${name}`)).text.includes(`nvd=0,1 uid=${uid}`), { what: 'the GPUs and uid in the output', intervalMs: 1000 });
      const inspect = await bed.dockerCli(placed[name]!, ['inspect', '--format', '{{json .HostConfig.DeviceRequests}} {{.Config.User}}', container]);
      expect(inspect.stdout).toContain('"DeviceIDs":["0","1"]');
    }
    expect(new Set(Object.values(placed))).toEqual(new Set(['h1', 'h2']));
    for (const name of ['c1', 'c2']) expect((await chat(app, 'alice', `stop ${name}`)).reply.tone).toBe('success');
    for (const h of ['h1', 'h2'])
      await waitFor(async () => !(await bed.dockerCli(h, ['ps', '-a', '--format', '{{.Names}}'])).stdout.includes('gpubot-slurm-'), {
        what: `the containers gone on ${h}`,
        timeoutMs: 40_000,
      });
  });
});
