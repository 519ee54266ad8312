import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a real OpenSSH tool (ssh, scp, sftp, ssh-keygen) and collects its output. */
export function runTool(tool: string, args: string[], input?: string, timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A tool that exits before reading its input (a refused login) must not fail the run with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

/** A fresh key pair; returns the private key path and the public key line. */
export async function makeKey(dir: string, name: string, type = 'ed25519', bits?: number): Promise<{ path: string; publicLine: string }> {
  const path = join(dir, name);
  const r = await runTool('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@laptop`, '-f', path]);
  if (r.code !== 0) throw new Error(r.stderr);
  return { path, publicLine: (await readFile(`${path}.pub`, 'utf8')).trim() };
}

/** Options every client call uses: no known_hosts, no prompts, only the given key. */
export const clientOptions = (key: string, port: number): string[] => [
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'BatchMode=yes',
  '-o',
  'IdentitiesOnly=yes',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'ConnectTimeout=20',
  '-i',
  key,
  ...(port ? ['-o', `Port=${port}`] : []),
];

export function spawnTool(tool: string, args: string[]): ChildProcess & { output: () => string } {
  const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  child.stderr!.on('data', (d) => (out += String(d)));
  return Object.assign(child, { output: () => out });
}

/**
 * PIDs of gpubot's jailed sftp-servers serving a directory under `baseDir` (one bed's), read from
 * each server's mount table: test files running side by side each see only their own.
 */
export async function jailedSftpServers(baseDir: string): Promise<number[]> {
  const pids = (await runTool('pgrep', ['-f', '^/\\.gpubot-[0-9a-f]+/'])).stdout.split('\n').filter(Boolean).map(Number);
  const mine: number[] = [];
  for (const pid of pids) {
    const mounts = await readFile(`/proc/${pid}/mountinfo`, 'utf8').catch(() => '');
    if (mounts.includes(baseDir.split('/').pop()!)) mine.push(pid);
  }
  return mine;
}
