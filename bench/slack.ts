import { App } from '../src/app.js';
import { SlackAdapter } from '../src/adapters/slack/slack-adapter.js';
import { parseConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { startBed } from '../test/bed/testbed.js';
import { startSlackStandin } from '../test/support/slack-standin.js';
import { waitFor } from '../test/support/wait.js';
import { median, ms, percentile } from './stats.js';

/** Ack latency of /gpu slash commands over Socket Mode, 20 at a time, real Bolt against a local Slack. */
export async function benchSlack(report: (line: string) => void): Promise<Record<string, number>> {
  const bed = await startBed({ hosts: 3 });
  const slack = await startSlackStandin({ users: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`U${i}`, { name: `user${i}` }])) });
  const app = await App.create({ config: parseConfig(bed.config()), log: silentLogger(), databaseUrl: await testDatabaseUrl(bed.baseDir, 'bench'), reconcileOnStart: false });
  const adapter = new SlackAdapter({ botToken: slack.botToken, appToken: slack.appToken, port: 0, apiUrl: slack.apiUrl, retries: 0 }, silentLogger());
  try {
    await waitFor(() => app.pool.all().every((h) => h.connection().state === 'up'), { what: 'hosts' });
    await adapter.start(app);
    await slack.waitForSocket();
    const acks: number[] = [];
    const texts = ['status', 'ls', 'help', 'images', 'status h1'];
    for (let round = 0; round < 10; round++) {
      const sent = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const { payload, responseId } = slack.slashCommand({ userId: `U${i}`, text: texts[(round + i) % texts.length]! });
          return slack.sendEnvelope('slash_commands', payload).then((r) => ({ ...r, responseId }));
        }),
      );
      acks.push(...sent.map((r) => r.ackMs));
      // Let the answers finish before the next burst.
      await Promise.all(sent.map((r) => slack.waitForResponse(r.responseId, undefined, 30_000)));
    }
    report(
      `Slack Socket Mode: 200 slash commands in bursts of 20: ack ${ms(median(acks))} median, ${ms(percentile(acks, 99))} p99, ${ms(Math.max(...acks))} max (target p99 < 200 ms); late acks (> 3 s): ${slack.lateAcks()}`,
    );
    return { slackAckP50: median(acks), slackAckP99: percentile(acks, 99) };
  } finally {
    await adapter.stop();
    await app.close();
    await slack.close();
    await bed.teardown();
  }
}
