/** Idle detection over a window of samples: pure. */

export interface UtilPoint {
  /** When the sample was taken (a minute mean: the minute's start), ms. */
  at: number;
  /** The highest utilization the point stands for (a minute's peak, or the sample itself); null: unknown. */
  utilization: number | null;
  memoryUsedMiB: number | null;
  /** How long the point stands for (a minute mean: 60 s): the gap after it may be that much longer. */
  spanMs?: number;
}

export interface IdleRule {
  threshold: number;
  now: number;
  /** A longer gap between two points (or between the last one and now) is unknown, never idle. */
  maxGapMs: number;
  /** Memory this much above an earlier point counts as growing. */
  memoryToleranceMiB: number;
}

/**
 * When the idle run that lasts until now began: every point since below the threshold, memory not
 * growing, no gap. Null when the latest point is not idle, unknown or too old.
 */
export function idleRunStart(points: UtilPoint[], rule: IdleRule): number | null {
  const sorted = [...points].sort((a, b) => a.at - b.at);
  const last = sorted.at(-1);
  if (!last || rule.now - last.at > rule.maxGapMs) return null;
  let start: number | null = null;
  let newer = rule.now;
  let highestLaterMemory = -Infinity;
  for (let i = sorted.length - 1; i >= 0; i--) {
    const p = sorted[i]!;
    if (newer - p.at > rule.maxGapMs + (p.spanMs ?? 0)) break;
    if (p.utilization === null || p.utilization >= rule.threshold) break;
    // Memory grew after this point: the run began after it.
    if (p.memoryUsedMiB !== null && highestLaterMemory > p.memoryUsedMiB + rule.memoryToleranceMiB) break;
    if (p.memoryUsedMiB !== null) highestLaterMemory = Math.max(highestLaterMemory, p.memoryUsedMiB);
    start = p.at;
    newer = p.at;
  }
  return start;
}
