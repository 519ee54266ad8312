// Graceful shutdown, step one (App.drain): new commands are turned away with a clear answer,
// the ones in flight finish and are answered, and the wait has a limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { reply } from '../../src/core/reply.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';
import { waitFor } from '../support/wait.js';

describe('draining before shutdown', () => {
  let bed: Bed;
  const apps: App[] = [];
  beforeAll(async () => {
    bed = await startBed({ hosts: 1, gpusPerHost: 2 });
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await bed?.teardown();
  });

  /** An app whose `ls` waits for the returned gate: a command that is in flight as long as we like. */
  async function appWithSlowLs(): Promise<{ app: App; open: () => void }> {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const app = await appFor(bed, {}, undefined, {
      handlers: {
        ls: async () => {
          await gate;
          return reply('success', 'here is your list');
        },
      },
    });
    apps.push(app);
    return { app, open };
  }

  it('turns new commands away, lets the one in flight finish and answer, then reports none left', async () => {
    const { app, open } = await appWithSlowLs();
    const inFlight = chat(app, 'alice', 'ls');
    await waitFor(() => app.busy.commands === 1, { what: 'ls in flight' });

    const draining = app.drain(10_000);
    const late = await chat(app, 'bob', 'reserve 1');
    expect(late.reply.title).toBe('gpubot is restarting');
    expect(late.text).toContain('Nothing was done');
    // Turned away means nothing happened.
    expect(await app.db.allocation.count()).toBe(0);

    open();
    expect((await inFlight).reply.title).toBe('here is your list');
    expect(await draining).toBe(0);
  });

  it('gives up after its time limit and says how many were still running', async () => {
    const { app, open } = await appWithSlowLs();
    const stuck = chat(app, 'alice', 'ls');
    await waitFor(() => app.busy.commands === 1, { what: 'ls in flight' });
    const started = Date.now();
    expect(await app.drain(300)).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    open();
    await stuck;
  });
});
