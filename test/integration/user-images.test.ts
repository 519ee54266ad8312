// "image build" on the real test bed: the context comes from the host's copy of the user's
// directory (tar over SSH), Docker's classic builder builds it, and the image runs, moves to a
// second host (docker save → docker load through the bot), and is kept within the user's budget.
import { writeFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Block, Reply } from '../../src/core/reply.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { DockerIgnore } from '../../src/core/dockerignore.js';
import { buildOnHost } from '../../src/hosts/image-build.js';

const BASE = 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime';

const blockText = (b: Block): string =>
  b.type === 'text' || b.type === 'code'
    ? b.text
    : b.type === 'fields'
      ? b.fields.map((f) => `${f.label}: ${f.value}`).join('\n')
      : b.type === 'table'
        ? b.rows.map((r) => r.join(' | ')).join('\n')
        : b.type === 'section'
          ? `${b.heading}\n${b.blocks.map(blockText).join('\n')}`
          : '';
const textOf = (r: Reply): string => [r.title, ...r.blocks.map(blockText)].join('\n');
const fields = (r: Reply) => Object.fromEntries(r.blocks.flatMap((b) => (b.type === 'fields' ? b.fields.map((f) => [f.label, f.value]) : [])));

const TWO_STAGE = `# a two-stage build over the test base
ARG BASE=${BASE}
FROM \${BASE} AS build
RUN mkdir -p /out && echo compiled > /out/tool \\
 && dd if=/dev/zero of=/out/blob bs=1024 count=2048 2>/dev/null
COPY requirements.txt /src/requirements.txt
RUN cat /src/requirements.txt > /out/deps

FROM \${BASE}
COPY --from=build /out /opt/tool
COPY train.py /app/train.py
CMD ["sleep", "infinity"]
`;

describe('your own images', () => {
  let bed: Bed;
  let app: App;
  let dir: (user: string) => string;

  const say = async (user: string, text: string) => {
    const lines: string[] = [];
    const reply = await app.engine.handleText(await app.actor(user), text, (l) => void lines.push(l));
    return { reply, text: textOf(reply), lines };
  };
  const put = async (user: string, file: string, content: string) => {
    await mkdir(path.dirname(path.join(dir(user), file)), { recursive: true });
    await writeFile(path.join(dir(user), file), content);
  };
  const tags = async (host: string) =>
    (await bed.dockerCli(host, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout
      .split('\n')
      .filter((t) => t.startsWith('gpubot/'))
      .sort();

  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    dir = (user) => path.join(bed.baseDir, 'users', user);
    app = await appFor(bed, {
      images: {
        default: BASE,
        allowed: ['pytorch/pytorch:*', 'gpubot-test/*'],
        build: { timeoutMinutes: 5, memory: '512m', cpus: 1 },
        perUser: { maxCount: 3, maxGB: 0.01, keep: 1 },
      },
    });
    await put('alice', 'Dockerfile', TWO_STAGE);
    await put('alice', 'requirements.txt', 'numpy==1.26.4\n');
    await put('alice', 'train.py', 'print("v1")\n');
    await put('alice', '.dockerignore', '# not for the image\ndata\n*.ckpt\n');
    await put('alice', 'data/huge.bin', 'x'.repeat(6_000_000));
    await put('alice', 'model.ckpt', 'y'.repeat(3_000_000));
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('builds a two-stage Dockerfile with progress per step, leaving out what .dockerignore names', async () => {
    const { reply, text, lines } = await say('alice', 'image build trainer --host h1');
    expect(reply.tone, `${text}\n${lines.join('\n')}`).toBe('success');
    expect(reply.title).toBe('Built gpubot/alice/trainer:1 on h1');
    expect(lines).toContain('step 1/9 · ARG BASE=pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime');
    expect(lines).toContain('step 7/9 · COPY --from=build /out /opt/tool');
    const f = fields(reply);
    expect(f.Steps).toBe('9, 0 from cache');
    // data/ (6 MB) and *.ckpt (3 MB) stayed on the host.
    expect(Number(/^([\d.]+) MB$/.exec(f.Context!)?.[1])).toBeLessThan(0.1);
    expect(f.Image).toBe('gpubot/alice/trainer:1');
    expect(reply.blocks.some((b) => b.type === 'section' && b.heading === 'Hints')).toBe(false);
    // The three largest layers, with the instruction behind each: the 2 MB copied from the build stage first.
    const table = reply.blocks.find((b) => b.type === 'table') as Extract<Block, { type: 'table' }>;
    expect(table.rows).toHaveLength(3);
    expect(table.rows[0]![1]).toMatch(/^COPY dir:[0-9a-f]+ in \/opt\/tool/);
    expect(table.rows[0]![0]).toMatch(/^2\.\d MB$/);
    expect(table.rows.some((r) => r[1]!.endsWith('(base image)'))).toBe(true);
    expect(await tags('h1')).toEqual(['gpubot/alice/trainer:1']);
    const inImage = await bed.dockerCli('h1', ['run', '--rm', 'gpubot/alice/trainer:1', 'sh', '-c', 'cat /opt/tool/tool /opt/tool/deps /app/train.py; ls /app; ls /opt/tool']);
    expect(inImage.stdout).toBe('compiled\nnumpy==1.26.4\nprint("v1")\ntrain.py\nblob\ndeps\ntool\n');
  });

  it('rebuilds after a source-only change from cache: only the COPY of the source and what follows run', async () => {
    await put('alice', 'train.py', 'print("v2")\n');
    const { reply, text, lines } = await say('alice', 'image build trainer');
    expect(reply.tone, text).toBe('success');
    // No --host: the host that built trainer before (its cache is there).
    expect(reply.title).toBe('Built gpubot/alice/trainer:2 on h1');
    // ARG and FROM have no layer to reuse; steps 3-5 (the build stage) and 7 come from cache.
    expect(fields(reply).Steps).toBe('9, 4 from cache');
    for (const n of [3, 4, 5, 7])
      expect(
        lines.some((l) => l.startsWith(`step ${n}/9 · `) && l.endsWith(' · cached')),
        `step ${n}\n${lines.join('\n')}`,
      ).toBe(true);
    expect(lines).toContain('step 8/9 · COPY train.py /app/train.py');
    expect(lines).not.toContain('step 8/9 · COPY train.py /app/train.py · cached');
    const log = await say('alice', 'image logs trainer');
    expect(log.reply.title).toBe('Build log of gpubot/alice/trainer:2 (ready)');
    expect(log.text.match(/Using cache/g)?.length).toBe(4);
    expect((await bed.dockerCli('h1', ['run', '--rm', 'gpubot/alice/trainer:2', 'cat', '/app/train.py'])).stdout).toBe('print("v2")\n');
  });

  it('refuses a disallowed base before building anything: FROM, a build-arg swapping it, COPY --from, another user’s image', async () => {
    const before = await tags('h1');
    const rows = await app.db.userImage.count();
    await put('alice', 'bad/Dockerfile', 'FROM ubuntu:22.04\nRUN echo hi\n');
    await put('alice', 'bad/copy.Dockerfile', `FROM ${BASE}\nCOPY --from=alpine:3.19 /etc/os-release /x\n`);
    await put('alice', 'bad/theirs.Dockerfile', `FROM gpubot/bob/tools:1\n`);
    const cases: [string, RegExp][] = [
      ['image build bad --file bad/Dockerfile', /FROM ubuntu:22\.04 is not on the allow-list/],
      ['image build bad --build-arg BASE=ubuntu:22.04', /FROM ubuntu:22\.04 is not on the allow-list/],
      ['image build bad --file bad/copy.Dockerfile', /line 2: COPY --from alpine:3\.19 is not on the allow-list/],
      ['image build bad --file bad/theirs.Dockerfile', /FROM gpubot\/bob\/tools:1 is not one of your images/],
      ['image build bad --build-arg NOPE=1', /the Dockerfile declares no ARG NOPE/],
    ];
    for (const [command, why] of cases) {
      const { reply, text, lines } = await say('alice', command);
      expect(reply.tone, command).toBe('error');
      expect(text, command).toMatch(why);
      expect(text).toContain('nothing was built');
      expect(
        lines.some((l) => l.startsWith('building') || l.startsWith('step')),
        command,
      ).toBe(false);
    }
    expect(await tags('h1')).toEqual(before);
    expect(await app.db.userImage.count()).toBe(rows);
    // Nothing through a link: not the Dockerfile, not a directory on its path.
    await symlink('/etc/passwd', path.join(dir('alice'), 'linked.Dockerfile'));
    await symlink('/etc', path.join(dir('alice'), 'etc'));
    expect((await say('alice', 'image build bad --file linked.Dockerfile')).text).toContain('/workspace/linked.Dockerfile is not a plain file');
    expect((await say('alice', 'image build bad --file etc/passwd')).text).toContain('/workspace/etc is a symlink, not a directory');
    expect((await say('alice', 'image build bad --file ../bob/Dockerfile')).text).toContain('is not a path inside your workspace');
    // A user with no workspace on the host yet, and one without a Dockerfile.
    expect((await say('gina', 'image build x --host h1')).text).toContain('Your workspace /workspace is empty on h1: put a Dockerfile in it first.');
    await put('hank', 'notes.txt', 'hi');
    expect((await say('hank', 'image build x --host h1')).reply.title).toBe('There is no /workspace/Dockerfile on h1');
  });

  it('builds the Dockerfile it checked, even when the workspace copy is swapped for a stranger’s base as the build starts', async () => {
    await put('ivan', 'Dockerfile', `FROM ${BASE}\nRUN echo checked > /checked\n`);
    const swap = (line: string) => {
      // Inside the window between the check and the context stream: what an attacker racing the build would do.
      if (line.startsWith('building ')) writeFileSync(path.join(dir('ivan'), 'Dockerfile'), 'FROM gpubot/alice/trainer:2\nRUN echo swapped > /checked\n');
    };
    const reply = await app.engine.handleText(await app.actor('ivan'), 'image build swap --host h1', swap);
    expect(reply.tone, textOf(reply)).toBe('success');
    expect((await bed.dockerCli('h1', ['run', '--rm', 'gpubot/ivan/swap:1', 'cat', '/checked'])).stdout).toBe('checked\n');
    expect((await bed.dockerCli('h1', ['run', '--rm', 'gpubot/ivan/swap:1', 'cat', '/app/train.py'])).code).not.toBe(0);
    expect((await say('ivan', 'image rm swap:1')).reply.tone).toBe('success');
  });

  it('fails a broken RUN with that step’s output in the reply, and keeps the log', async () => {
    await put('alice', 'broken/Dockerfile', `FROM ${BASE}\nRUN echo preparing\nRUN echo about to fail && printf '\\033[31mred\\033[0m\\n' && ls /no/such/dir\nRUN echo never\n`);
    const { reply, text } = await say('alice', 'image build broken --file broken/Dockerfile --host h1');
    expect(reply.tone).toBe('error');
    expect(reply.title).toBe('Build of gpubot/alice/broken:1 failed at step 3/4');
    const code = reply.blocks.find((b) => b.type === 'code')?.text ?? '';
    expect(code).toContain('about to fail');
    expect(code).toMatch(/ls: \/no\/such\/dir: No such file or directory/);
    expect(code).not.toContain('preparing'); // the failing step's output, not the whole log
    expect(code, JSON.stringify(code)).toContain('red'); // stdout and stderr may interleave mid-line
    expect(code).not.toContain('\u001b'); // terminal escapes never reach the chat
    expect(text).toMatch(/returned a non-zero code: 1/);
    expect((await say('alice', 'image logs broken')).text).toMatch(/Build log of gpubot\/alice\/broken:1 \(failed\)[\s\S]*preparing[\s\S]*about to fail/);
    expect(await tags('h1')).not.toContain('gpubot/alice/broken:1');
    // No container left behind by the failed step.
    expect((await bed.dockerCli('h1', ['ps', '-aq'])).stdout.trim()).toBe('');
  });

  it('runs the image with GPUs and the user’s mount, for its owner only', async () => {
    const { reply, text } = await say('alice', 'run --image mine/trainer --gpus 2 --host h1 --name t1');
    expect(reply.tone, text).toBe('success');
    const c = JSON.parse((await bed.dockerCli('h1', ['inspect', 't1'])).stdout)[0];
    expect(c.Config.Image).toBe('gpubot/alice/trainer:2');
    expect(c.HostConfig.DeviceRequests[0].DeviceIDs).toEqual(['0', '1']);
    expect(c.Mounts.map((m: { Source: string; Destination: string }) => [m.Source, m.Destination])).toEqual([[dir('alice'), '/workspace']]);
    expect((await bed.dockerCli('h1', ['exec', 't1', 'sh', '-c', 'cat /opt/tool/tool; ls /workspace/train.py'])).stdout).toBe('compiled\n/workspace/train.py\n');

    for (const ref of ['gpubot/alice/trainer:2', 'docker.io/gpubot/alice/trainer:2']) {
      const theirs = await say('bob', `run --image ${ref} --name bob1`);
      expect(theirs.text).toContain('That image is not yours');
    }
    expect((await say('bob', 'run --image mine/trainer --name bob1')).text).toContain('You have no image trainer');
    await put('bob', 'Dockerfile', 'FROM gpubot/alice/trainer:2\n');
    expect((await say('bob', 'image build mine')).text).toContain('FROM gpubot/alice/trainer:2 is not one of your images');
    expect((await say('bob', 'image rm trainer')).text).toContain('You have no image trainer');
    expect((await say('bob', 'image logs trainer')).text).toContain('You have no image called trainer');
    expect((await bed.dockerCli('h1', ['ps', '-a', '--format', '{{.Names}}'])).stdout.trim()).toBe('t1');
  });

  it('moves the image to a second host when the container goes there, with progress', async () => {
    expect(await tags('h2')).toEqual([]);
    const { reply, text, lines } = await say('alice', 'run --image mine/trainer:2 --host h2 --name t2');
    expect(reply.tone, `${text}\n${lines.join('\n')}`).toBe('success');
    expect(
      lines.some((l) => /^copying gpubot\/alice\/trainer:2 from h1 to h2 \([\d.]+ MB\)$/.test(l)),
      lines.join('\n'),
    ).toBe(true);
    expect(lines.some((l) => l.startsWith('copied gpubot/alice/trainer:2 to h2 in '))).toBe(true);
    expect(await tags('h2')).toEqual(['gpubot/alice/trainer:2']);
    const ids = await Promise.all(['h1', 'h2'].map(async (h) => (await bed.dockerCli(h, ['image', 'inspect', '--format', '{{.Id}}', 'gpubot/alice/trainer:2'])).stdout.trim()));
    expect(ids[0]).toMatch(/^sha256:/);
    expect(ids[1]).toBe(ids[0]);
    expect((await bed.dockerCli('h2', ['exec', 't2', 'cat', '/app/train.py'])).stdout).toBe('print("v2")\n');
    const ls = await say('alice', 'image ls');
    expect(ls.text).toMatch(/gpubot\/alice\/trainer:2 \| [\d.]+ MB \| [\d.]+ MB \| .* UTC \| h1,h2 \| t1, t2/);
    expect(ls.text).toMatch(/gpubot\/alice\/trainer:1 \| .* \| h1 \| -/);
  });

  it('never removes an image a container uses', async () => {
    const { reply, text } = await say('alice', 'image rm trainer:2');
    expect(reply.tone).toBe('error');
    expect(text).toContain('gpubot/alice/trainer:2: used by t1, t2');
    expect(await tags('h1')).toContain('gpubot/alice/trainer:2');
    expect(await tags('h2')).toContain('gpubot/alice/trainer:2');
  });

  it('holds the budget: count before building, size after', async () => {
    await put('alice', 'train.py', 'print("v3")\n');
    expect((await say('alice', 'image build trainer')).reply.title).toBe('Built gpubot/alice/trainer:3 on h1');
    const full = await say('alice', 'image build trainer');
    expect(full.reply.title).toBe('Your image budget is used up');
    expect(full.text).toContain('images.perUser.maxCount: you have 3 image(s); the limit is 3');
    expect(full.lines).toEqual([]);
    // 12 MB on top of the base, against maxGB 0.01 (10 MB): built, then taken away again.
    await put('carol', 'Dockerfile', `FROM ${BASE}\nRUN dd if=/dev/zero of=/fat bs=1M count=12 2>/dev/null\n`);
    const fat = await say('carol', 'image build fat --host h2');
    expect(fat.reply.title).toBe('gpubot/carol/fat:1 was built but is over your budget, so it was removed');
    expect(fat.text).toMatch(/images\.perUser\.maxGB: your images add 0\.0 MB and this one 12\.\d MB on top of their bases; the limit is 0\.01 GB/);
    expect(await tags('h2')).not.toContain('gpubot/carol/fat:1');
    expect((await say('carol', 'image ls')).reply.title).toBe('You have no images of your own');
  });

  it('builds one image at a time per user, within the memory limit', async () => {
    await put('dave', 'Dockerfile', `FROM ${BASE}\nRUN sleep 3 && echo "limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"\n`);
    const first = say('dave', 'image build slow --host h2');
    await new Promise((r) => setTimeout(r, 1500));
    const second = await say('dave', 'image build other --host h1');
    expect(second.reply.title).toBe('You have a build running');
    expect(second.text).toContain('slow:1 on h2');
    expect((await first).reply.tone).toBe('success');
    expect((await say('dave', 'image logs slow')).text).toContain(`limit ${512 * 1024 ** 2}`);
    // The lock went with the build.
    expect(await app.db.imageBuildLock.count()).toBe(0);
  });

  it('gives hints: pip without --no-cache-dir, a single stage carrying a build toolchain', async () => {
    // Stand-ins for apt-get and pip (the busybox base has neither).
    await put('erin', 'bin/apt-get', '#!/bin/sh\nmkdir -p /var/lib/apt/lists && echo "$@" > /var/lib/apt/lists/installed\n');
    await put('erin', 'bin/pip', '#!/bin/sh\nmkdir -p /root/.cache/pip && echo "$@" > /root/.cache/pip/wheels\n');
    await put(
      'erin',
      'Dockerfile',
      `FROM ${BASE}\nCOPY bin/ /usr/local/bin/\nRUN chmod +x /usr/local/bin/* && apt-get install -y build-essential cmake && rm -rf /var/lib/apt/lists/*\nRUN pip install torchvision\n`,
    );
    const { reply, text } = await say('erin', 'image build tools --host h2');
    expect(reply.tone, text).toBe('success');
    const hints = reply.blocks.find((b) => b.type === 'section' && b.heading === 'Hints');
    expect(hints && blockText(hints)).toMatch(/pip install runs without --no-cache-dir[\s\S]*A single stage carries a build toolchain/);
  });

  it('the cleanup job keeps the newest images.perUser.keep of each name, and any in use', async () => {
    const job = await say('admin', 'admin run-job cleanup');
    expect(job.text).toContain('1 old user image(s) removed');
    expect(await tags('h1')).toEqual(['gpubot/alice/trainer:2', 'gpubot/alice/trainer:3']);
    const ls = await say('alice', 'image ls');
    expect(ls.text).not.toContain('trainer:1');
    expect(ls.reply.title).toMatch(/^Your images: 2 of 3, adding [\d.]+ MB of 0\.01 GB$/);
  });

  it('removes a version no container uses, from every host', async () => {
    const { reply } = await say('alice', 'image rm trainer:3');
    expect(reply.title).toBe('Removed gpubot/alice/trainer:3');
    expect(await tags('h1')).toEqual(['gpubot/alice/trainer:2']);
    expect((await say('alice', 'image rm trainer:3')).text).toContain('You have no image trainer:3');
  });

  it('stops a build at its time limit and one whose context is too large, leaving no container', async () => {
    const h1 = app.pool.get('h1')!;
    await put('frank', 'Dockerfile', `FROM ${BASE}\nRUN echo started && sleep 60\n`);
    await put('frank', 'big.bin', 'z'.repeat(300_000));
    const common = {
      dir: dir('frank'),
      dockerfile: 'Dockerfile',
      dockerfileContent: Buffer.from(`FROM ${BASE}\nRUN echo started && sleep 60\n`),
      ignore: new DockerIgnore(''),
      buildArgs: {},
      memoryBytes: 512 * 1024 ** 2,
      cpus: 1,
      onStep: () => {},
    };
    const started = Date.now();
    const slow = await buildOnHost(h1, { ...common, tag: 'gpubot/frank/slow:1', timeoutMs: 6_000, maxContextBytes: 10 ** 9 });
    expect(slow.ok).toBe(false);
    expect(!slow.ok && slow.error).toBe('the build took longer than 6 s and was stopped');
    expect(Date.now() - started).toBeLessThan(30_000);
    // The daemon cancels the build when the request goes away: the step's container is killed and removed.
    await waitFor(async () => !(await bed.dockerCli('h1', ['ps', '-a', '--no-trunc', '--format', '{{.Command}}'])).stdout.includes('sleep 60') || null, {
      timeoutMs: 20_000,
      what: 'the build container to go',
    });
    const big = await buildOnHost(h1, { ...common, tag: 'gpubot/frank/big:1', timeoutMs: 60_000, maxContextBytes: 100_000 });
    expect(!big.ok && big.error).toMatch(/^the build context is larger than/);
    expect((await tags('h1')).filter((t) => t.startsWith('gpubot/frank/'))).toEqual([]);
  });
});
