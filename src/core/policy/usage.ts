/** GPU-hour accounting: pure, over allocation intervals. */

const DAY = 86_400_000;
const WEEK = 7 * DAY;

export interface UsageWindow {
  start: Date;
  /** When the window rolls over (calendar), or null for a rolling window. */
  end: Date | null;
  /** Names this window for once-per-window notices. */
  key: string;
}

export function usageWindow(kind: 'rolling' | 'calendar', now: Date): UsageWindow {
  if (kind === 'rolling') {
    // Notices repeat at most once per 7-day period of the epoch.
    return { start: new Date(now.getTime() - WEEK), end: null, key: `r${Math.floor(now.getTime() / WEEK)}` };
  }
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const monday = midnight - ((now.getUTCDay() + 6) % 7) * DAY;
  return { start: new Date(monday), end: new Date(monday + WEEK), key: `c${new Date(monday).toISOString().slice(0, 10)}` };
}

export interface Held {
  gpus: number;
  from: Date;
  /** null while still held. */
  until: Date | null;
}

/** GPU x hours held inside the window, up to now. */
export function gpuHours(held: Held[], window: UsageWindow, now: Date): number {
  let ms = 0;
  for (const h of held) {
    const from = Math.max(h.from.getTime(), window.start.getTime());
    const until = Math.min(h.until?.getTime() ?? now.getTime(), now.getTime());
    if (until > from) ms += (until - from) * h.gpus;
  }
  return ms / 3_600_000;
}
