import { describe, expect, it } from 'vitest';
import { idleRunStart, type UtilPoint } from '../../src/core/policy/idle.js';

const rule = { threshold: 5, now: 100_000, maxGapMs: 3_000, memoryToleranceMiB: 256 };
const series = (from: number, to: number, f: (t: number) => Partial<UtilPoint> = () => ({})): UtilPoint[] => {
  const out: UtilPoint[] = [];
  for (let t = from; t <= to; t += 1000) out.push({ at: t, utilization: 0, memoryUsedMiB: 1000, ...f(t) });
  return out;
};

describe('idle over a window of samples', () => {
  it('is idle since the first of an unbroken run of low samples', () => {
    expect(idleRunStart(series(40_000, 100_000), rule)).toBe(40_000);
  });

  it('starts the run after the last busy sample', () => {
    expect(
      idleRunStart(
        series(40_000, 100_000, (t) => ({ utilization: t === 70_000 ? 50 : 1 })),
        rule,
      ),
    ).toBe(71_000);
  });

  it('counts a gap as unknown, never idle: the run starts after it', () => {
    const points = [...series(40_000, 60_000), ...series(70_000, 100_000)];
    expect(idleRunStart(points, rule)).toBe(70_000);
  });

  it('is not idle when the latest sample is too old, unknown or busy', () => {
    expect(idleRunStart(series(40_000, 90_000), rule)).toBeNull();
    expect(
      idleRunStart(
        series(40_000, 100_000, (t) => ({ utilization: t === 100_000 ? null : 0 })),
        rule,
      ),
    ).toBeNull();
    expect(
      idleRunStart(
        series(40_000, 100_000, (t) => ({ utilization: t === 100_000 ? 5 : 0 })),
        rule,
      ),
    ).toBeNull();
    expect(idleRunStart([], rule)).toBeNull();
  });

  it('is not idle while memory use grows (a job loading data at 0 % utilization)', () => {
    const growing = series(40_000, 100_000, (t) => ({ memoryUsedMiB: 1000 + (t - 40_000) / 10 }));
    // 100 MiB a second: only the last 2 s are within the tolerance of the latest reading.
    expect(idleRunStart(growing, rule)).toBe(98_000);
    const steady = series(40_000, 100_000, (t) => ({ memoryUsedMiB: 1000 - (t % 3000 === 0 ? 100 : 0) }));
    expect(idleRunStart(steady, rule)).toBe(40_000);
  });
});
