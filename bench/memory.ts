import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startBed } from '../test/bed/testbed.js';
import { testDatabaseUrl } from '../test/support/database.js';
import { startDiscordStandin } from '../test/support/discord-standin.js';
import { startSlackStandin } from '../test/support/slack-standin.js';
import { waitFor } from '../test/support/wait.js';

const CLI = 'dist/cli/main.js';

/** Resident set size of a process in MB, from /proc (what `ps` and the kernel's OOM killer see). */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  return kb / 1024;
}

/**
 * Idle RSS of the real `gpubot start` (the built dist/, as deployed) with the Slack (Socket Mode) and
 * Discord adapters both on, against the local stand-ins and 2 test-bed hosts: after start, one
 * `status` from each chat, then 30 s idle (the monitors sampling every 2 s); RSS read every second.
 */
export async function benchMemory(report: (line: string) => void): Promise<void> {
  await measureIdleRss(report, 'plain `node dist/cli/main.js start`', []);
  // The cap before: smallest RSS, but the SSH gateway's forwards then ran at ~60% speed (its
  // in-flight channel data, up to a 2 MB window, outgrew the young generation).
  await measureIdleRss(report, 'with `--max-semi-space-size=2`', ['--max-semi-space-size=2']);
  // As the image (NODE_OPTIONS) and `npm start` run it.
  await measureIdleRss(report, 'with `--max-semi-space-size=4` (the image, `npm start`)', ['--max-semi-space-size=4']);
}

async function measureIdleRss(report: (line: string) => void, what: string, nodeArgs: string[]): Promise<Record<string, number>> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const bed = await startBed({ hosts: 2 });
  const slack = await startSlackStandin({ users: { U1: { name: 'alice' } } });
  const discord = await startDiscordStandin({ users: { D1: { username: 'alice' } } });
  const configPath = join(bed.baseDir, 'gpubot.yaml');
  await writeFile(configPath, stringify(bed.config()));
  const env = {
    ...process.env,
    GPUBOT_CONFIG: configPath,
    DATABASE_URL: await testDatabaseUrl(bed.baseDir, 'bench-memory'),
    LOG_LEVEL: 'info',
    SLACK_BOT_TOKEN: slack.botToken,
    SLACK_APP_TOKEN: slack.appToken,
    SLACK_API_URL: slack.apiUrl,
    DISCORD_TOKEN: discord.token,
    DISCORD_APP_ID: discord.appId,
    DISCORD_GUILD_ID: discord.guildId,
    DISCORD_API_URL: discord.apiUrl,
  };
  const child = spawn('node', [...nodeArgs, ...(process.env.GPUBOT_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), CLI, 'start'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += String(d)));
  try {
    await waitFor(() => err.includes('"msg":"gpubot started"'), { what: `the bot to start (stderr: ${err.slice(-500)})`, timeoutMs: 60_000 });
    await slack.waitForSocket();
    // One command through each chat, so what a first command loads is counted.
    const { payload, responseId } = slack.slashCommand({ userId: 'U1', text: 'status' });
    await slack.sendEnvelope('slash_commands', payload);
    await slack.waitForResponse(responseId, (b) => !String(b.text ?? '').startsWith(':hourglass'), 30_000);
    const asked = discord.dispatchInteraction(discord.slashCommand({ userId: 'D1', subcommand: 'status' }));
    await asked.callback;
    await discord.waitForOriginal(asked.token, (m) => Boolean(m?.embeds?.length), 30_000);
    const samples: number[] = [];
    for (let s = 0; s < 30; s++) {
      samples.push(await rssMb(child.pid!));
      await new Promise((r) => setTimeout(r, 1000));
    }
    const last = samples.at(-1)!;
    const max = Math.max(...samples);
    report(
      `| idle RSS, ${what}: Slack Socket Mode + Discord on, 2 hosts, 30 s after one status from each | ${last.toFixed(0)} MB at the end, ${max.toFixed(0)} MB max | ≤ 150 MB |`,
    );
    return { idleRssMb: last, idleRssMaxMb: max };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await discord.close();
    await slack.close();
    await bed.teardown();
  }
}
