import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Block } from '../../src/core/reply.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';

const fields = (blocks: Block[]) => Object.fromEntries(blocks.flatMap((b) => (b.type === 'fields' ? b.fields.map((f) => [f.label, f.value]) : [])));

async function inspect(bed: Bed, host: string, name: string) {
  const r = await bed.dockerCli(host, ['inspect', name]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout)[0];
}

const pid1Env = async (pid: number) => (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0');

describe('run, and what a container gets', () => {
  let bed: Bed;
  let app: App;

  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    const raw = bed.config({ admins: ['root-admin'] }) as { hosts: { gpuMode: string }[] };
    raw.hosts[1]!.gpuMode = 'nvidia-runtime';
    app = await appFor(bed, {}, raw);
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('starts a container with exactly the chosen GPUs, the user dir, labels and enough shm (device-requests)', async () => {
    const { reply, text } = await chat(app, 'alice', 'run --gpus 2 --host h1 --name exp1 --hours 8');
    expect(reply.tone, text).toBe('success');
    expect(reply.title).toBe('exp1 is running on h1 with GPUs 0,1');
    const f = fields(reply.blocks);
    expect(f).toMatchObject({ Container: 'exp1', Host: 'h1', GPUs: '0,1', State: 'running', Image: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime' });
    expect(f.Mounts).toBe(`${bed.baseDir}/users/alice -> /workspace`);
    expect(text).toContain('ssh h1 docker exec -it exp1 bash');

    const c = await inspect(bed, 'h1', 'exp1');
    expect(c.State.Running).toBe(true);
    expect(c.HostConfig.DeviceRequests).toEqual([{ Driver: 'nvidia', Count: 0, DeviceIDs: ['0', '1'], Capabilities: [['gpu']], Options: null }]);
    expect(c.HostConfig.Privileged).toBe(false);
    expect(c.HostConfig.NetworkMode).not.toBe('host');
    expect(c.HostConfig.PidMode).toBe('');
    expect(c.HostConfig.CapAdd ?? []).toEqual([]);
    expect(c.HostConfig.Devices ?? []).toEqual([]);
    expect(c.HostConfig.ShmSize).toBe(8 * 1024 ** 3);
    expect(c.Mounts.map((m: { Source: string; Destination: string; RW: boolean }) => [m.Source, m.Destination, m.RW])).toEqual([
      [`${bed.baseDir}/users/alice`, '/workspace', true],
    ]);
    expect(c.Config.Labels).toMatchObject({ 'gpubot.managed': 'true', 'gpubot.owner': 'alice', 'gpubot.gpus': '0,1', 'gpubot.name': 'exp1' });
    expect(Number(c.Config.Labels['gpubot.allocation'])).toBeGreaterThan(0);
    expect(await pid1Env(c.State.Pid)).toContain('NVIDIA_VISIBLE_DEVICES=0,1');
  });

  it('does the same on an nvidia-runtime host', async () => {
    const { reply, text } = await chat(app, 'bob', 'run --gpus 1 --host h2 --name bobs -- sleep 3600');
    expect(reply.tone, text).toBe('success');
    const c = await inspect(bed, 'h2', 'bobs');
    expect(c.HostConfig.Runtime).toBe('nvidia');
    expect(c.HostConfig.DeviceRequests ?? []).toEqual([]);
    expect(c.Config.Cmd).toEqual(['sleep', '3600']);
    expect(await pid1Env(c.State.Pid)).toContain('NVIDIA_VISIBLE_DEVICES=0');
  });

  it('shows holders in status and the container in ls', async () => {
    const status = await chat(app, 'carol', 'status');
    expect(status.text).toContain('alice (exp1)');
    expect(status.text).toContain('bob (bobs)');
    const ls = await chat(app, 'alice', 'ls');
    expect(ls.text).toMatch(/exp1\s+h1\s+0,1\s+running/);
    expect(ls.text).not.toContain('bobs');
    const all = await chat(app, 'alice', 'ls --all');
    expect(all.text).toMatch(/bobs\s+bob\s+h2\s+0/);
  });

  it('refuses an image off the allow-list, a taken name, and too many GPUs, changing nothing', async () => {
    const before = (await bed.dockerCli('h1', ['ps', '-aq'])).stdout;
    expect((await chat(app, 'alice', 'run --image ubuntu:22.04')).text).toContain('ubuntu:22.04 is not on the allow-list');
    expect((await chat(app, 'bob', 'run --name exp1')).text).toContain('The name "exp1" is taken');
    expect((await chat(app, 'alice', 'run --gpus 3')).text).toContain('quota maxGpus: you hold 2 GPUs and asked for 3 more; your limit is 4 at a time');
    expect((await chat(app, 'alice', 'run --hours 100')).text).toContain('quota maxHours: you asked for 100 h; your limit is 72 h');
    expect((await chat(app, 'carol', 'run --gpus 4 --host h1')).text).toContain('h1 has 2 free GPUs of 4; you asked for 4');
    expect((await bed.dockerCli('h1', ['ps', '-aq'])).stdout).toBe(before);
  });

  it('reserves GPUs without a container and releases them', async () => {
    const r = await chat(app, 'dave', 'reserve 2 --host h1 --hours 2');
    expect(r.reply.tone, r.text).toBe('success');
    expect(r.reply.title).toMatch(/^Reserved GPUs 2,3 on h1 until /);
    expect(r.text).toContain('CUDA_VISIBLE_DEVICES=2,3');
    expect((await chat(app, 'carol', 'status h1')).text).toContain('dave (reserved)');
    expect((await chat(app, 'carol', 'run --host h1')).text).toContain('h1 has 0 free GPUs of 4');
    const id = fields(r.reply.blocks).Reservation;
    expect((await chat(app, 'carol', `release ${id}`)).text).toContain(`Reservation ${id} belongs to dave`);
    expect((await chat(app, 'dave', 'release all')).reply.title).toBe('Released 1 reservation');
    expect((await chat(app, 'carol', 'status h1')).text).not.toContain('dave');
  });

  it('keeps user data across rm: the next container sees it', async () => {
    const host = app.pool.get('h1')!;
    const exec = async (name: string, cmd: string[]) => (await host.runtime.exec(name, cmd)).stdout;
    await exec('exp1', ['sh', '-c', 'echo checkpoint-42 > /workspace/model.txt']);
    expect((await chat(app, 'alice', 'rm exp1')).reply.title).toBe('exp1 is removed');
    expect((await bed.dockerCli('h1', ['ps', '-a', '--format', '{{.Names}}'])).stdout).not.toContain('exp1');
    expect(await readFile(`${bed.baseDir}/users/alice/model.txt`, 'utf8')).toBe('checkpoint-42\n');
    const again = await chat(app, 'alice', 'run --host h1 --name exp1');
    expect(again.reply.tone, again.text).toBe('success');
    expect(await exec('exp1', ['cat', '/workspace/model.txt'])).toContain('checkpoint-42');
  });

  it('makes the user directory again if it vanished since', async () => {
    const { rm } = await import('node:fs/promises');
    await rm(`${bed.baseDir}/users/alice`, { recursive: true });
    // alice ran on h1 before, so this process skips the mkdir and Docker finds the dir missing.
    const r = await chat(app, 'alice', 'run --host h1 --name again');
    expect(r.reply.tone, r.text).toBe('success');
    expect((await inspect(bed, 'h1', 'again')).State.Running).toBe(true);
    const { stat } = await import('node:fs/promises');
    expect((await stat(`${bed.baseDir}/users/alice`)).isDirectory()).toBe(true);
    await chat(app, 'alice', 'rm again');
  });

  it('prepares the container while a slow chat shows the first progress line; the answer comes after the line', async () => {
    const shown: { line: string; at: number }[] = [];
    const slowChat = async (line: string) => {
      await new Promise((r) => setTimeout(r, 3000));
      shown.push({ line, at: Date.now() });
    };
    const reply = await app.engine.handleText(await app.actor('frank'), 'run --host h1 --name slowchat', slowChat);
    const answeredAt = Date.now();
    expect(reply.tone, reply.title).toBe('success');
    expect(shown).toHaveLength(1);
    expect(shown[0]!.line).toMatch(/^GPUs \d+ on h1 are yours; preparing the container$/);
    expect(shown[0]!.at).toBeLessThanOrEqual(answeredAt);
    // Docker made the container before the chat call came back, not after.
    const created = new Date((await inspect(bed, 'h1', 'slowchat')).Created).getTime();
    expect(created).toBeLessThan(shown[0]!.at);
    await chat(app, 'frank', 'rm slowchat');
  });

  it('logs, extend, stop frees the GPUs, start takes the same ones again', async () => {
    const run = await chat(app, 'erin', `run --host h2 --name talker -- sh -c 'trap "exit 0" TERM; echo hello from erin; sleep 3600 & wait'`);
    expect(run.reply.tone, run.text).toBe('success');
    const gpus = fields(run.reply.blocks).GPUs;
    // The container writes its line a moment after it starts (later on a loaded machine): ask again, as a user would.
    const logs = await waitFor(
      async () => {
        const r = await chat(app, 'erin', 'logs talker --tail 5');
        return r.text.includes('hello from erin') ? r : null;
      },
      { what: 'the line in logs' },
    );
    expect(logs.text).toContain('Last 5 lines of talker');
    const ext = await chat(app, 'erin', 'extend talker --hours 4');
    expect(ext.reply.title).toMatch(/^talker now ends /);
    expect((await chat(app, 'erin', 'extend talker --hours 70')).text).toContain('quota maxHours');

    const stop = await chat(app, 'erin', 'stop talker');
    expect(stop.reply.title).toBe(`talker is stopped; GPUs ${gpus} on h2 are free again`);
    expect((await inspect(bed, 'h2', 'talker')).State.Running).toBe(false);
    expect((await chat(app, 'carol', 'status h2')).text).not.toContain('erin');

    const start = await chat(app, 'erin', 'start talker');
    expect(start.reply.title).toBe(`talker is running again on h2 with GPUs ${gpus}`);
    expect((await inspect(bed, 'h2', 'talker')).State.Running).toBe(true);
  });

  it('start says who holds the GPUs when they were taken meanwhile', async () => {
    await chat(app, 'erin', 'stop talker');
    const gpu = (await inspect(bed, 'h2', 'talker')).Config.Labels['gpubot.gpus'];
    // Fill h2 so the stopped container's GPU goes to someone else.
    const grab = await chat(app, 'frank', 'reserve 3 --host h2');
    expect(grab.reply.tone, grab.text).toBe('success');
    const start = await chat(app, 'erin', 'start talker');
    expect(start.reply.tone).toBe('error');
    expect(start.text).toContain(`GPU ${gpu} is held by frank (reservation) on h2`);
    expect(start.text).toContain('"rm talker" and "run" again');
    await chat(app, 'frank', 'release all');
  });

  it('applies the ownership matrix: owner and admin may, others may not, and a refusal changes nothing', async () => {
    const mk = await chat(app, 'gina', 'run --host h2 --name ginas');
    expect(mk.reply.tone, mk.text).toBe('success');
    const res = await chat(app, 'gina', 'reserve 1');
    const resId = fields(res.reply.blocks).Reservation;
    const state = async () => (await bed.dockerCli('h2', ['inspect', '-f', '{{.State.Status}}', 'ginas'])).stdout.trim();

    for (const cmd of ['stop ginas', 'start ginas', 'rm ginas', 'logs ginas', 'extend ginas --hours 1', `release ${resId}`]) {
      const r = await chat(app, 'mallory', cmd);
      expect(r.reply.tone, cmd).toBe('error');
      expect(r.text, cmd).toMatch(/belongs to gina/);
    }
    expect(await state()).toBe('running');
    expect((await chat(app, 'gina', 'ls')).text).toContain(resId);

    // The owner may.
    expect((await chat(app, 'gina', 'logs ginas')).reply.tone).toBe('info');
    expect((await chat(app, 'gina', 'extend ginas --hours 1')).reply.tone).toBe('success');
    expect((await chat(app, 'gina', 'stop ginas')).reply.tone).toBe('success');
    expect((await chat(app, 'gina', 'start ginas')).reply.tone).toBe('success');
    // An admin may act on anyone's.
    expect((await chat(app, 'root-admin', 'logs ginas')).reply.tone).toBe('info');
    expect((await chat(app, 'root-admin', 'extend ginas --hours 1')).reply.tone).toBe('success');
    expect((await chat(app, 'root-admin', 'stop ginas')).reply.tone).toBe('success');
    expect((await chat(app, 'root-admin', 'start ginas')).reply.tone).toBe('success');
    expect((await chat(app, 'root-admin', `release ${resId}`)).reply.tone).toBe('success');
    expect((await chat(app, 'root-admin', 'rm ginas')).reply.tone).toBe('success');
    expect((await bed.dockerCli('h2', ['ps', '-a', '--format', '{{.Names}}'])).stdout).not.toContain('ginas');
    // And every step is in the audit log, refusals included.
    const audit = await app.db.auditEvent.findMany({ where: { target: 'ginas' }, orderBy: { id: 'asc' } });
    expect(audit.filter((a) => a.actor === 'mallory').map((a) => [a.action, a.result])).toEqual(['stop', 'start', 'rm', 'logs', 'extend'].map((action) => [action, 'refused']));
    expect(audit.filter((a) => a.actor === 'root-admin').map((a) => a.action)).toEqual(['extend', 'stop', 'start', 'rm']);
    expect(await app.db.auditEvent.findFirst({ where: { actor: 'mallory', action: 'release' } })).toMatchObject({
      result: 'refused',
      detail: expect.stringContaining('belongs to gina'),
    });
  });
});
