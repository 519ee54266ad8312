import { Writable } from 'node:stream';
import { App, type AppOptions } from '../../src/app.js';
import { runOnce } from '../../src/adapters/console/console-adapter.js';
import { parseConfig } from '../../src/config/load.js';
import type { Reply } from '../../src/core/reply.js';
import { silentLogger } from '../../src/log.js';
import type { Bed } from '../bed/testbed.js';
import { testDatabaseUrl } from './database.js';
import { waitFor } from './wait.js';

let databases = 0;

/** An App wired to the bed's hosts and a fresh database (test/support/database.ts), connected. */
export async function appFor(bed: Bed, extra: Record<string, unknown> = {}, raw?: Record<string, unknown>, options: Partial<AppOptions> = {}): Promise<App> {
  const config = parseConfig(raw ?? bed.config(extra));
  const app = await App.create({ config, log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, `gpubot-${++databases}`), ...options });
  await waitFor(() => app.pool.all().every((h) => h.connection().state !== 'connecting'), { what: 'SSH connections' });
  return app;
}

/** What a console user sees for one command, and the Reply behind it. */
export async function chat(app: App, user: string, message: string): Promise<{ text: string; reply: Reply }> {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  const reply = await runOnce(app, user, message, out);
  return { text, reply };
}
