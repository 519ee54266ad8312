/** Where N GPUs go: pure, so it can be tested and timed alone. */

export interface CandidateHost {
  name: string;
  /** Up and not drained. */
  usable: boolean;
  /** Why not, when not usable (for the refusal). */
  reason?: string;
  /** Every GPU the host has, and whether it is free (no lease, no unmanaged process). */
  gpus: { index: number; free: boolean }[];
}

export type Placement = { ok: true; host: string; indexes: number[] } | { ok: false; reason: string };

/**
 * Best fit: among hosts that can take the request, the one with the fewest free GPUs, so partly
 * used hosts fill up before an empty one is broken into and whole hosts stay available for big
 * jobs. Ties go to the host listed first. On the host, the lowest free indexes (neighbours share
 * NVLink/PCIe switches more often than not).
 */
export function placeGpus(hosts: CandidateHost[], gpus: number, onlyHost?: string): Placement {
  const pool = onlyHost ? hosts.filter((h) => h.name === onlyHost) : hosts;
  if (onlyHost && pool.length === 0) return { ok: false, reason: `there is no host "${onlyHost}"` };
  let best: { host: CandidateHost; free: number[] } | undefined;
  for (const host of pool) {
    if (!host.usable) continue;
    const free: number[] = [];
    for (const g of host.gpus) if (g.free) free.push(g.index);
    if (free.length < gpus) continue;
    if (!best || free.length < best.free.length) best = { host, free };
  }
  if (best) return { ok: true, host: best.host.name, indexes: best.free.sort((a, b) => a - b).slice(0, gpus) };

  if (onlyHost) {
    const h = pool[0]!;
    if (!h.usable) return { ok: false, reason: `${h.name} is not taking work: ${h.reason ?? 'unavailable'}` };
    const free = h.gpus.filter((g) => g.free).length;
    return { ok: false, reason: `${h.name} has ${free} free GPU${free === 1 ? '' : 's'} of ${h.gpus.length}; you asked for ${gpus}` };
  }
  const usable = pool.filter((h) => h.usable);
  const most = Math.max(0, ...usable.map((h) => h.gpus.filter((g) => g.free).length));
  const total = usable.reduce((n, h) => n + h.gpus.filter((g) => g.free).length, 0);
  if (usable.length === 0) return { ok: false, reason: 'no host is available right now' };
  return { ok: false, reason: `no host has ${gpus} free GPUs (most free on one host: ${most}; free in total: ${total})` };
}
