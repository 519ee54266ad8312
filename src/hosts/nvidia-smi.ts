/** nvidia-smi queries as fixed argv, and strict parsing of their CSV output. */

// Free-text fields go last so a comma inside a name cannot shift the numbers.
export const GPU_QUERY = ['nvidia-smi', '--query-gpu=index,uuid,memory.used,memory.total,utilization.gpu,temperature.gpu,name', '--format=csv,noheader,nounits'];
export const APPS_QUERY = ['nvidia-smi', '--query-compute-apps=gpu_uuid,pid,used_memory,process_name', '--format=csv,noheader,nounits'];

const MARK = '::gpubot-exit ';

/**
 * Both queries in one SSH session (a constant script, nothing interpolated): one exec per host
 * instead of two, each query's exit code kept.
 */
export const GPU_AND_APPS_QUERY = ['sh', '-c', `${GPU_QUERY.join(' ')}; echo "${MARK}$?"; ${APPS_QUERY.join(' ')}; echo "${MARK}$?"`];

/** Splits the combined output back into the two queries' outputs. */
export function splitCombined(out: CommandOutput): [CommandOutput, CommandOutput] {
  const parts: CommandOutput[] = [];
  let lines: string[] = [];
  for (const line of out.stdout.split('\n')) {
    if (line.startsWith(MARK)) {
      parts.push({ code: Number(line.slice(MARK.length)), stdout: lines.join('\n'), stderr: out.stderr });
      lines = [];
    } else lines.push(line);
  }
  const missing: CommandOutput = { code: out.code === 0 ? -1 : out.code, stdout: lines.join('\n'), stderr: out.stderr || 'nvidia-smi gave no answer' };
  return [parts[0] ?? missing, parts[1] ?? missing];
}

export interface SmiGpu {
  index: number;
  uuid: string;
  model: string;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
  utilization: number | null;
  temperature: number | null;
}

export interface SmiProcess {
  gpuUuid: string;
  pid: number;
  usedMemoryMiB: number | null;
  name: string;
}

export type SmiResult<T> = { ok: true; value: T } | { ok: false; error: string };

export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A failed or missing nvidia-smi means "unknown", never "0 % used". */
function failure(out: CommandOutput): string | null {
  if (out.code === 127 || (out.code !== 0 && /command not found|nvidia-smi: not found|No such file/i.test(out.stderr))) return 'nvidia-smi is not installed on this host';
  if (out.code !== 0) {
    const first = `${out.stdout}\n${out.stderr}`
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0);
    return `nvidia-smi failed (exit ${out.code ?? 'signal'})${first ? `: ${first.slice(0, 200)}` : ''}`;
  }
  return null;
}

const NOT_AVAILABLE = /^\[?(N\/A|Not Supported|Unknown Error|GPU is lost|Insufficient Permissions)\]?$/i;

/** A number, or null for the "[N/A]" family; anything else is malformed. */
function metric(raw: string, field: string): number | null {
  if (NOT_AVAILABLE.test(raw)) return null;
  if (!/^\d+(?:\.\d+)?$/.test(raw)) throw new Error(`bad ${field} "${raw.slice(0, 40)}"`);
  return Number(raw);
}

function rows(stdout: string, minFields: number): string[][] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((line) => {
      const parts = line.split(', ');
      if (parts.length < minFields) throw new Error(`unexpected line "${line.slice(0, 80)}"`);
      // The last field is free text and may itself contain ", ".
      return [...parts.slice(0, minFields - 1), parts.slice(minFields - 1).join(', ')];
    });
}

export function parseGpus(out: CommandOutput): SmiResult<SmiGpu[]> {
  const failed = failure(out);
  if (failed) return { ok: false, error: failed };
  try {
    const gpus = rows(out.stdout, 7).map(([index, uuid, used, total, util, temp, name]) => {
      const i = metric(index!, 'index');
      if (i === null || !Number.isInteger(i)) throw new Error(`bad index "${index}"`);
      if (!/^GPU-[0-9a-fA-F-]+$/.test(uuid!) && !/^MIG-/.test(uuid!)) throw new Error(`bad uuid "${uuid!.slice(0, 60)}"`);
      const utilization = metric(util!, 'utilization');
      if (utilization !== null && utilization > 100) throw new Error(`bad utilization "${util}"`);
      return {
        index: i,
        uuid: uuid!,
        model: name!,
        memoryUsedMiB: metric(used!, 'memory.used'),
        memoryTotalMiB: metric(total!, 'memory.total'),
        utilization,
        temperature: metric(temp!, 'temperature'),
      };
    });
    const indexes = new Set(gpus.map((g) => g.index));
    if (indexes.size !== gpus.length) throw new Error('duplicate GPU index');
    return { ok: true, value: gpus.sort((a, b) => a.index - b.index) };
  } catch (err) {
    return { ok: false, error: `nvidia-smi output could not be read: ${(err as Error).message}` };
  }
}

export function parseProcesses(out: CommandOutput): SmiResult<SmiProcess[]> {
  const failed = failure(out);
  if (failed) return { ok: false, error: failed };
  // Some drivers print this instead of nothing.
  if (/^No running (compute )?processes found/im.test(out.stdout)) return { ok: true, value: [] };
  try {
    return {
      ok: true,
      value: rows(out.stdout, 4).map(([uuid, pid, mem, name]) => {
        if (!/^\d{1,10}$/.test(pid!)) throw new Error(`bad pid "${pid!.slice(0, 20)}"`);
        return { gpuUuid: uuid!, pid: Number(pid), usedMemoryMiB: metric(mem!, 'used_memory'), name: name! };
      }),
    };
  } catch (err) {
    return { ok: false, error: `nvidia-smi process list could not be read: ${(err as Error).message}` };
  }
}

/** Container id from a /proc/<pid>/cgroup file (cgroup v1 and v2, cgroupfs and systemd drivers). */
export function containerIdFromCgroup(text: string): string | null {
  for (const line of text.split('\n')) {
    const m = /(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:\/|$)/.exec(line.split(':').slice(2).join(':'));
    if (m) return m[1]!;
  }
  return null;
}
