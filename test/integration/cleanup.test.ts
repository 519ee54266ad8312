import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Reply } from '../../src/core/reply.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { testDatabaseUrl } from '../support/database.js';

const HOUR = 3_600_000;
const IMAGE = 'gpubot-test/busybox:latest';

/** Runs `work` over `items`, `n` at a time. */
async function inBatches<T>(items: T[], n: number, work: (item: T) => Promise<void>) {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(work));
}

describe('cleanup of stopped containers over a generated mix of 58', () => {
  let bed: Bed;
  let app: App;
  const now = new Date('2026-11-23T12:00:00Z').getTime();
  const inbox: { to: string; reply: Reply }[] = [];
  const expectRemoved: string[] = [];
  const expectKept: string[] = [];
  const expectWarned: string[] = [];

  beforeAll(async () => {
    bed = await startBed({ hosts: 2 });
    app = await App.create({
      config: parseConfig(bed.config({ admins: ['boss'] })),
      log: silentLogger(),
      databaseUrl: await testDatabaseUrl(bed.baseDir, 'cleanup'),
      now: () => new Date(now),
      reconcileOnStart: false,
    });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    app.registerNotifier('console', async (to, reply) => void inbox.push({ to, reply }));
    const alice = await app.actor('alice');
    await mkdir(`${bed.baseDir}/users/alice`, { recursive: true });
    await writeFile(`${bed.baseDir}/users/alice/results.csv`, 'epoch,loss\n1,0.5\n');

    type Kind = 'running' | 'old' | 'recent' | 'nearly' | 'unmanaged' | 'downhost' | 'kept' | 'restarted';
    const mix: [Kind, number][] = [
      ['running', 15],
      ['old', 15],
      ['recent', 10],
      ['nearly', 5],
      ['unmanaged', 5],
      ['downhost', 5],
      ['kept', 2],
      ['restarted', 1],
    ];
    const specs = mix.flatMap(([kind, count]) => Array.from({ length: count }, (_, i) => ({ kind, name: `${kind}-${i}`, host: kind === 'downhost' ? 'h2' : 'h1' })));
    await inBatches(specs, 8, async ({ kind, name, host }) => {
      const labels = kind === 'unmanaged' ? [] : ['--label', 'gpubot.managed=true', '--label', 'gpubot.owner=alice', '--label', `gpubot.name=${name}`, '--label', 'gpubot.gpus=0'];
      const running = kind === 'running' || kind === 'restarted';
      const made = await bed.dockerCli(host, [running ? 'run' : 'create', ...(running ? ['-d'] : []), '--name', name, ...labels, IMAGE, 'sleep', '3600']);
      expect(made.code, made.stderr).toBe(0);
      if (kind === 'unmanaged') return;
      const stoppedAgo = { running: null, old: 30 * HOUR, recent: 1 * HOUR, nearly: 23 * HOUR, downhost: 30 * HOUR, kept: 30 * HOUR, restarted: 30 * HOUR, unmanaged: null }[kind];
      await app.db.container.create({
        data: {
          name,
          userId: alice.userId,
          hostName: host,
          dockerId: made.stdout.trim(),
          image: IMAGE,
          gpuIndexes: '0',
          state: kind === 'running' ? 'running' : 'stopped',
          stoppedAt: stoppedAgo === null ? null : new Date(now - stoppedAgo),
          keepUntil: kind === 'kept' ? new Date(now + 5 * HOUR) : null,
        },
      });
      if (kind === 'old') expectRemoved.push(name);
      else if (kind === 'nearly') expectWarned.push(name);
      else expectKept.push(name);
    });
    expect(specs.length).toBeGreaterThanOrEqual(50);
    await bed.stopSshd('h2');
    await waitFor(() => app.pool.get('h2')!.connection().state !== 'up', { what: 'h2 down' });
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('removes exactly the managed containers stopped too long, warns the nearly-due ones, keeps the rest and the files', async () => {
    const { reply } = await chat(app, 'boss', 'admin run-job cleanup');
    expect(reply.blocks[0]).toEqual({ type: 'text', text: `${expectRemoved.length} stopped container(s) removed, ${expectWarned.length} warning(s) sent` });

    const onH1 = (await bed.dockerCli('h1', ['ps', '-a', '--format', '{{.Names}}'])).stdout.trim().split('\n').sort();
    for (const name of expectRemoved) expect(onH1).not.toContain(name);
    const expectedOnH1 = [...expectKept.filter((n) => !n.startsWith('downhost')), ...expectWarned, ...Array.from({ length: 5 }, (_, i) => `unmanaged-${i}`)].sort();
    expect(onH1).toEqual(expectedOnH1);
    // The down host was not touched.
    expect(await app.db.container.count({ where: { hostName: 'h2', state: 'stopped' } })).toBe(5);

    expect((await app.db.container.findMany({ where: { state: 'removed' } })).map((c) => c.name.replace(/^#\d+:/, '')).sort()).toEqual([...expectRemoved].sort());
    expect(await readFile(`${bed.baseDir}/users/alice/results.csv`, 'utf8')).toBe('epoch,loss\n1,0.5\n');

    await waitFor(() => inbox.filter((m) => m.reply.title.includes('was removed after')).length === expectRemoved.length, { what: 'removal notices' });
    const warnings = inbox.filter((m) => m.reply.title.includes('will be removed in'));
    expect(warnings.map((w) => w.reply.title).sort()).toEqual(expectWarned.map((n) => `${n} will be removed in 1 h`).sort());
    expect(warnings[0]!.reply.blocks.find((b) => b.type === 'actions')).toMatchObject({
      actions: [{ label: 'Keep 24 h more', command: expect.stringMatching(/^keep nearly-\d$/) }],
    });
  });

  it('a second run changes nothing and repeats no warning; "keep" holds off a removal', async () => {
    const before = inbox.length;
    const { reply } = await chat(app, 'boss', 'admin run-job cleanup');
    expect(reply.blocks[0]).toEqual({ type: 'text', text: '0 stopped container(s) removed, 0 warning(s) sent' });
    expect(inbox.length).toBe(before);
    const kept = await chat(app, 'alice', 'keep nearly-0');
    expect(kept.reply.title).toMatch(/^nearly-0 is kept until at least /);
    // On a running container, keep means keep-alive against idle reclaim instead.
    expect((await chat(app, 'alice', 'keep running-0')).reply.title).toMatch(/^running-0 stays up even if idle until /);
  });

  it('prunes dangling images when the config says so, and nothing else', async () => {
    await bed.dockerCli('h1', ['create', '--name', 'imgsrc', IMAGE, 'true']);
    await bed.dockerCli('h1', ['commit', 'imgsrc', 'dangly:1']);
    await bed.dockerCli('h1', ['commit', '-c', 'ENV A=1', 'imgsrc', 'dangly:1']); // the first commit is now untagged
    await bed.dockerCli('h1', ['rm', 'imgsrc']);
    const dangling = async () => (await bed.dockerCli('h1', ['images', '-q', '--filter', 'dangling=true'])).stdout.trim();
    expect(await dangling()).not.toBe('');
    const pruning = await App.create({
      config: parseConfig(bed.config({ cleanup: { pruneImages: true } })),
      log: silentLogger(),
      databaseUrl: await testDatabaseUrl(bed.baseDir, 'cleanup'),
      now: () => new Date(now),
      reconcileOnStart: false,
    });
    try {
      await waitFor(() => pruning.pool.get('h1')!.connection().state === 'up', { what: 'h1' });
      const { cleanupJob } = await import('../../src/jobs/cleanup.js');
      expect(await cleanupJob.run(pruning.ops)).toMatch(/dangling image layer\(s\) pruned$/);
      expect(await dangling()).toBe('');
      expect((await bed.dockerCli('h1', ['image', 'inspect', 'dangly:1', IMAGE])).code).toBe(0);
    } finally {
      await pruning.close();
    }
  });
});
