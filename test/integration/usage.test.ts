import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor, chat } from '../support/app.js';

const HOUR = 3_600_000;

describe('usage: GPU-hours per day and mean utilization of the GPUs held', () => {
  let bed: Bed;
  let app: App;

  beforeAll(async () => {
    bed = await startBed({ hosts: 1, docker: false });
    app = await appFor(bed, { admins: ['boss'] });
  });
  afterAll(async () => {
    await app?.close();
    await bed?.teardown();
  });

  it('says how many GPUs were held, how long, at what mean utilization', async () => {
    const r = await chat(app, 'alice', 'reserve 4 --host h1 --hours 12');
    expect(r.reply.tone).toBe('success');
    const allocation = await app.db.allocation.findFirstOrThrow({ where: { kind: 'reservation' } });
    // Held for the last 10 hours, the minute means of its GPUs at 12 % (and another GPU's busy minutes, not counted).
    const now = Date.now();
    const from = Math.floor((now - 10 * HOUR) / 60_000) * 60_000;
    await app.db.allocation.update({ where: { id: allocation.id }, data: { createdAt: new Date(from) } });
    const gpus = allocation.gpuIndexes.split(',').map(Number);
    const rows = [];
    for (let t = from; t < now - 60_000; t += 60_000) {
      for (const g of gpus) rows.push({ hostName: 'h1', gpuIndex: g, at: new Date(t), utilization: 12, utilizationMax: 20, memoryUsedMiB: 1000, samples: 30 });
    }
    await app.db.gpuSample.createMany({ data: rows });
    await app.db.gpuSample.create({ data: { hostName: 'h1', gpuIndex: 7, at: new Date(from + 60_000), utilization: 99, utilizationMax: 99, memoryUsedMiB: 1, samples: 30 } });

    const { reply, text } = await chat(app, 'alice', 'usage');
    expect(reply.title).toBe('You held 4 GPUs for 10 h at 12 % mean utilization (the last 7 days)');
    const table = reply.blocks.find((b) => b.type === 'table') as { rows: string[][] };
    expect(table.rows.reduce((n, row) => n + Number(row[1]), 0)).toBeCloseTo(40, 0);
    expect(table.rows.every((row) => row[2] === '12 %')).toBe(true);
    expect(text).toMatch(/40(\.\d)? GPU-hours in all/);
  });

  it('shows another user’s usage to admins only, and refuses bad input', async () => {
    expect((await chat(app, 'bob', 'usage alice')).reply).toMatchObject({ tone: 'error', title: 'Only admins can see someone else’s usage' });
    expect((await chat(app, 'boss', 'usage alice --days 30')).reply.title).toBe('alice held 4 GPUs for 10 h at 12 % mean utilization (the last 30 days)');
    expect((await chat(app, 'bob', 'usage')).reply.title).toBe('You held no GPUs in the last 7 days');
    expect((await chat(app, 'bob', 'usage --days 0')).reply.tone).toBe('error');
    expect((await chat(app, 'bob', 'usage --days 91')).reply.tone).toBe('error');
    expect((await chat(app, 'boss', 'usage nosuch')).reply.title).toBe('There is no user "nosuch"');
    expect((await chat(app, 'bob', 'usage "$(rm -rf /)"')).reply.tone).toBe('error');
  });
});
