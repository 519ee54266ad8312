// What a container can reach: only what the database says is the user's (exact ids), only the
// user's own files (own uid), limits on every container, no network path to another user's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
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


  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    app = await appFor(bed, { limits: { ...((bed.config().limits as object | undefined) ?? {}), memoryPerGpu: '1g', cpusPerGpu: 0.5 } });
    for (const [user, name] of [['alice', 'alices'], ['bob', 'bobs']] as const) {
      const r = await chat(app, user, `run --image ${BUSYBOX} --name ${name} -- sh -c 'trap "exit 0" TERM; echo secret of ${user}; httpd -f -p 8080 -h /workspace & wait'`);
      expect(r.reply.tone, r.text).toBe('success');
    }
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('never asks Docker for a name: a container still starting answers so, even when its name is a prefix of a stranger\'s id', async () => {
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
    const logs = await waitFor(async () => {
      const r = await chat(app, 'bob', 'logs bobs');
      return r.text.includes('secret of bob') ? r : null;
    }, { what: "bob's own logs" });
    expect(logs.reply.tone).toBe('info');
  });
});
