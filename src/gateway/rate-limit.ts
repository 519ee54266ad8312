/**
 * A sliding-window counter per key: at most `limit` events in `windowMs`. In memory: a restart
 * forgets, which for failed logins and key changes only gives an attacker one more window.
 */
export class RateLimiter {
  private readonly events = new Map<string, number[]>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    const kept = (this.events.get(key) ?? []).filter((t) => t > since);
    if (kept.length) this.events.set(key, kept);
    else this.events.delete(key);
    return kept;
  }

  /** True while key is under its limit (nothing is counted). */
  allowed(key: string): boolean {
    return this.recent(key).length < this.limit;
  }

  /** Counts one event for key. */
  hit(key: string): void {
    this.events.set(key, [...this.recent(key), this.now()]);
  }

  /** Counts one event and says whether it was within the limit. */
  take(key: string): boolean {
    if (!this.allowed(key)) return false;
    this.hit(key);
    return true;
  }

  /** Milliseconds until key may act again (0 if it may now). */
  retryAfterMs(key: string): number {
    const r = this.recent(key);
    return r.length < this.limit ? 0 : Math.max(0, r[0]! + this.windowMs - this.now());
  }

  clear(key: string): void {
    this.events.delete(key);
  }
}
