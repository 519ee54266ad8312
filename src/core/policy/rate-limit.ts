/** Per-key token buckets: `burst` requests at once, refilled at `perMinute`. Pure; the clock is passed in. */
export interface BucketLimits {
  perMinute: number;
  burst: number;
}

export type RateDecision = { ok: true } | { ok: false; retryInMs: number };

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly limits: BucketLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key` if there is one; otherwise says when the next one comes. */
  take(key: string): RateDecision {
    const now = this.now();
    const perMs = this.limits.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: this.limits.burst, at: now };
    const tokens = Math.min(this.limits.burst, b.tokens + Math.max(0, now - b.at) * perMs);
    if (tokens >= 1) {
      this.buckets.set(key, { tokens: tokens - 1, at: now });
      this.forgetFull(now);
      return { ok: true };
    }
    this.buckets.set(key, { tokens, at: now });
    return { ok: false, retryInMs: Math.ceil((1 - tokens) / perMs) };
  }

  /** Full buckets carry no information: dropped now and then so the map stays small. */
  private forgetFull(now: number): void {
    if (this.buckets.size < 1000) return;
    const perMs = this.limits.perMinute / 60_000;
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * perMs >= this.limits.burst) this.buckets.delete(k);
  }
}

/** "in 3 s", "in 2 min": when a refused request may be tried again. */
export function retryIn(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return s < 120 ? `in ${s} s` : `in ${Math.ceil(s / 60)} min`;
}

export const slowDown = (ms: number): { title: string; detail: string } => ({
  title: 'Slow down',
  detail: `You are sending commands faster than this bot allows; nothing was done. Try again ${retryIn(ms)}.`,
});
