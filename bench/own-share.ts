/**
 * gpubot's own share of a `run`: its time end to end minus Docker's create..start inside it (seen on
 * the Docker client's requests), so the container start's large run-to-run spread drops out.
 * Works against any checkout, for side-by-side figures: `ROOT=/path/to/checkout npx tsx bench/own-share.ts`
 * (default: this one). Prints medians over 10 runs after 2 warm-ups.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

interface Modem {
  dial(o: { path: string; method: string }, cb: (e: unknown, d: unknown) => void): void;
}
interface BenchApp {
  pool: { get(name: string): { connection(): { state: string }; docker: { modem: Modem } } | undefined };
  actor(handle: string): Promise<unknown>;
  engine: { handleText(actor: unknown, text: string): Promise<{ tone: string; title: string }> };
  close(): Promise<void>;
}

const root = process.env['ROOT'] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const from = async <T>(file: string): Promise<T> => (await import(path.join(root, file))) as T;
const { App } = await from<{ App: { create(o: object): Promise<BenchApp> } }>('src/app.js');
const { parseConfig } = await from<{ parseConfig(raw: unknown): object }>('src/config/load.js');
const { silentLogger } = await from<{ silentLogger(): object }>('src/log.js');
const { testDatabaseUrl } = await from<{ testDatabaseUrl(dir: string, name: string): Promise<string> }>('test/support/database.js');
const { startBed } = await from<{ startBed(o: object): Promise<{ baseDir: string; config(extra: object): object; teardown(): Promise<void> }> }>('test/bed/testbed.js');
const { waitFor } = await from<{ waitFor(f: () => boolean, o: object): Promise<unknown> }>('test/support/wait.js');

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const bed = await startBed({ hosts: 1, gpusPerHost: 8 });
const app = await App.create({
  config: parseConfig(bed.config({ quotas: { default: { maxGpus: 8 } } })),
  log: silentLogger(),
  databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench'),
  reconcileOnStart: false,
});
try {
  await waitFor(() => app.pool.get('h1')!.connection().state === 'up', { what: 'h1' });
  const modem = app.pool.get('h1')!.docker.modem;
  const dial = modem.dial.bind(modem);
  let t0 = 0;
  let createAt = 0;
  let startedAt = 0;
  let before: string[] = [];
  modem.dial = (o, cb) => {
    const at = performance.now() - t0;
    if (o.method === 'POST' && o.path.startsWith('/containers/create')) createAt = at;
    else if (!createAt) before.push(`${o.method} ${o.path.split('?')[0]!}`);
    dial(o, (e, d) => {
      if (o.method === 'POST' && o.path.split('?')[0]!.endsWith('/start')) startedAt = performance.now() - t0;
      cb(e, d);
    });
  };
  const actor = await app.actor('bench');
  const totals: number[] = [];
  const own: number[] = [];
  const beforeCreate: number[] = [];
  for (let i = 0; i < 12; i++) {
    [createAt, startedAt, before] = [0, 0, []];
    t0 = performance.now();
    const r = await app.engine.handleText(actor, `run --gpus 1 --name g${i}`);
    const total = performance.now() - t0;
    if (r.tone !== 'success') throw new Error(r.title);
    if (i >= 2) {
      totals.push(total);
      own.push(total - (startedAt - createAt));
      beforeCreate.push(createAt);
    }
    await app.engine.handleText(actor, `rm g${i}`);
  }
  process.stdout.write(
    `${root}: run ${median(totals).toFixed(0)} ms; gpubot's own share ${median(own).toFixed(1)} ms, of it before create ${median(beforeCreate).toFixed(1)} ms; Docker calls before create: ${before.join(', ') || 'none'}\n`,
  );
} finally {
  await app.close();
  await bed.teardown();
}
