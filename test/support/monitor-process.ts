import { readdir, readFile } from 'node:fs/promises';

/**
 * PIDs of processes on one bed host (by default the live monitor's sampling loops): found by their argv
 * (a marker like "gpubot-monitor") and by the host's own directory in their environment (sshd's SetEnv PATH),
 * so another bed's loops are never touched.
 */
export async function monitorLoopPids(hostDir: string, marker = 'gpubot-monitor'): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes(marker)) continue;
      const environ = await readFile(`/proc/${entry}/environ`, 'utf8');
      if (environ.split('\0').some((v) => v.startsWith('PATH=') && v.includes(`${hostDir}/bin`))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
