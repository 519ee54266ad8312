// The words of an exit notice: what the owner reads when a container ends.
import { describe, expect, it } from 'vitest';
import { endedTitle } from '../../src/operations/exits.js';

const at = (iso: string) => new Date(iso);

describe('exit notice title', () => {
  it('says how long a clean run took', () => {
    expect(endedTitle('exp1', { exitCode: 0, oom: false, startedAt: at('2026-12-02T08:00:00Z'), finishedAt: at('2026-12-02T11:12:00Z') })).toBe(
      'exp1 finished (exit 0) after 3 h 12 min',
    );
  });

  it('says "after 1 s" for a run that ended within its first second, even when the end is stamped in whole seconds before the start', () => {
    expect(endedTitle('done1', { exitCode: 0, oom: false, startedAt: at('2026-12-02T08:00:00.700Z'), finishedAt: at('2026-12-02T08:00:00Z') })).toBe(
      'done1 finished (exit 0) after 1 s',
    );
  });

  it('names a crash by its exit code and cause', () => {
    expect(endedTitle('exp1', { exitCode: 137, oom: true, startedAt: null, finishedAt: null })).toBe('exp1 crashed (exit 137, out of memory)');
    expect(endedTitle('exp1', { exitCode: 139, oom: false, startedAt: null, finishedAt: null })).toBe('exp1 crashed (exit 139, segmentation fault)');
  });
});
