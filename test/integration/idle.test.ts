import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Reply } from '../../src/core/reply.js';
import { silentLogger } from '../../src/log.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';
import { testDatabaseUrl } from '../support/database.js';

const MIN = 60_000;
const IDLE = `-- sh -c "trap 'exit 0' TERM; sleep 9999 & wait"`;

describe('idle GPU reclaim that asks first (time injected)', () => {
  let bed: Bed;
  let app: App;
  let clock = new Date('2026-11-23T08:00:00Z').getTime();
  const inbox: { to: string; reply: Reply }[] = [];
  const runJob = async () => (await chat(app, 'boss', 'admin run-job idle')).reply.blocks[0];
  const running = async (name: string) => (await bed.dockerCli('h1', ['inspect', '-f', '{{.State.Running}}', name])).stdout.trim();

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    const config = parseConfig(bed.config({ admins: ['boss'], idle: { threshold: 5, warnAfter: '2h', stopAfter: '3h', keepFor: '4h' } }));
    app = await App.create({ config, log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'idle'), now: () => new Date(clock), reconcileOnStart: false });
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    app.registerNotifier('console', async (to, reply) => void inbox.push({ to, reply }));
    for (const [user, name] of [['alice', 'busy1'], ['bob', 'idle1'], ['carol', 'kept1'], ['dave', 'blind1']] as const) {
      const r = await chat(app, user, `run --name ${name} --hours 12 ${IDLE}`);
      expect(r.reply.title).toMatch(new RegExp(`^${name} is running on h1`));
    }
    // GPU 0 works hard; 1 and 2 sit idle; GPU 3's driver cannot say.
    await bed.updateGpuState('h1', (s) => {
      s.gpus[0]!.utilization = 90;
      s.gpus[1]!.utilization = 0;
      s.gpus[2]!.utilization = 2;
      s.gpus[3]!.utilization = '[N/A]';
    });
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('asks the owners of idle containers once, with Keep and Stop now; never a busy or unmeasured one', async () => {
    expect(await runJob()).toEqual({ type: 'text', text: '0 owner(s) asked, 0 idle container(s) stopped' });
    clock += 125 * MIN;
    expect(await runJob()).toEqual({ type: 'text', text: '2 owner(s) asked, 0 idle container(s) stopped' });
    expect(await runJob()).toEqual({ type: 'text', text: '0 owner(s) asked, 0 idle container(s) stopped' });
    expect(inbox.map((m) => `${m.to}: ${m.reply.title}`).sort()).toEqual(['bob: h1:1 (idle1) idle for 2 h 5 min', 'carol: h1:2 (kept1) idle for 2 h 5 min']);
    const actions = inbox[0]!.reply.blocks.find((b) => b.type === 'actions');
    expect(actions).toMatchObject({ actions: [{ label: 'Keep 4 h', command: expect.stringMatching(/^keep /) }, { label: 'Stop now', command: expect.stringMatching(/^stop /) }] });
  });

  it('stops an unanswered one at stopAfter (never removes it); a Keep answer prevents it', async () => {
    expect((await chat(app, 'carol', 'keep kept1')).reply.title).toMatch(/^kept1 stays up even if idle until /);
    clock += 60 * MIN;
    expect(await runJob()).toEqual({ type: 'text', text: '0 owner(s) asked, 1 idle container(s) stopped' });
    expect(await running('idle1')).toBe('false');
    expect(await app.db.container.findUnique({ where: { name: 'idle1' } })).toMatchObject({ state: 'stopped' });
    await waitFor(() => inbox.some((m) => m.reply.title.startsWith('idle1 was stopped: its GPUs were idle for 3 h 5 min')), { what: 'stop notice' });
    expect(await running('kept1')).toBe('true');
    expect(await running('busy1')).toBe('true');
    expect(await running('blind1')).toBe('true');
  });

  it('counts a failed nvidia-smi as unknown: the idle clock restarts, nothing is stopped', async () => {
    await bed.updateGpuState('h1', (s) => (s.fail = 'driver'));
    await runJob();
    await bed.updateGpuState('h1', (s) => (s.fail = null));
    clock += 5 * 60 * MIN; // kept1's keep has run out, but its idle clock restarted at the failure
    expect(await runJob()).toEqual({ type: 'text', text: '0 owner(s) asked, 0 idle container(s) stopped' });
    expect(await running('kept1')).toBe('true');
    expect(inbox.filter((m) => m.to === 'dave')).toEqual([]);
  });
});
