// A build context for the image tests: a copy of the checkout (tracked files and untracked ones
// git does not ignore) plus files that must never reach the image, each holding a canary string.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOk } from './docker-env.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface BuildContext {
  dir: string;
  /** Random; present in every planted file and nowhere else. */
  canary: string;
  /** Paths (relative to dir) of the planted files. */
  planted: string[];
}

export async function makeBuildContext(): Promise<BuildContext> {
  const dir = await fs.mkdtemp('/tmp/gpubot-ctx-');
  const { stdout } = await runOk('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT });
  for (const rel of new Set(stdout.split('\0').filter(Boolean))) {
    const src = path.join(REPO_ROOT, rel);
    const st = await fs.lstat(src).catch(() => null);
    if (!st || !(st.isFile() || st.isSymbolicLink())) continue; // deleted in the work tree
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.cp(src, path.join(dir, rel), { verbatimSymlinks: true, preserveTimestamps: true });
  }
  const canary = `gpubot-canary-${randomBytes(12).toString('hex')}`;
  const files: Record<string, string> = {
    '.env': `SLACK_BOT_TOKEN=xoxb-${canary}\nPOSTGRES_PASSWORD=${canary}\n`,
    'gpubot.yaml': `# ${canary}\nhosts: []\n`,
    'secrets/gpubot_ssh_key': `-----BEGIN OPENSSH PRIVATE KEY-----\n${canary}\n-----END OPENSSH PRIVATE KEY-----\n`,
    id_ed25519: `${canary}\n`,
    'data/gpubot.db': `${canary}\n`,
    'prisma/dev.db': `${canary}\n`,
    'src/db/generated/stale.ts': `export const stale = '${canary}';\n`,
    'node_modules/canary/index.js': `module.exports = '${canary}';\n`,
    'dist/canary.js': `export default '${canary}';\n`,
    'test/canary.test.ts': `// ${canary}\n`,
    '.git/canary': `${canary}\n`,
    'coverage/canary.json': `"${canary}"\n`,
  };
  for (const [rel, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await fs.writeFile(path.join(dir, rel), text, { mode: 0o600 });
  }
  return { dir, canary, planted: Object.keys(files) };
}

export interface BuildStep {
  n: number;
  instruction: string;
  cached: boolean;
  /** The image id the step ended with. */
  id: string | null;
}

/** The steps of a classic-builder `docker build` output ("Step 3/20 : RUN ...", " ---> Using cache"). */
export function parseBuildSteps(output: string): BuildStep[] {
  const steps: BuildStep[] = [];
  const parts = output.split(/^Step (\d+)\/\d+ : /m);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const body = parts[i + 1]!;
    const nl = body.indexOf('\n');
    const instruction = (nl < 0 ? body : body.slice(0, nl)).trim();
    const ids = [...body.matchAll(/^ ---> ([0-9a-f]{12})\s*$/gm)].map((m) => m[1]!);
    steps.push({ n: Number(parts[i]), instruction, cached: /^ ---> Using cache$/m.test(body), id: ids.at(-1) ?? null });
  }
  return steps;
}
