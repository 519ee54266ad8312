import { describe, expect, it } from 'vitest';
import { placeGpus, type CandidateHost } from '../../src/core/policy/allocation.js';
import { imageAllowed } from '../../src/core/policy/images.js';
import { checkRequest, defaultHours, limitsFor } from '../../src/core/policy/quota.js';

const host = (name: string, free: boolean[], usable = true): CandidateHost => ({
  name,
  usable,
  reason: usable ? undefined : 'down',
  gpus: free.map((f, index) => ({ index, free: f })),
});

describe('placeGpus', () => {
  it('fills a partly used host before breaking into an empty one', () => {
    const hosts = [host('empty', [true, true, true, true]), host('half', [false, true, false, true])];
    expect(placeGpus(hosts, 2)).toEqual({ ok: true, host: 'half', indexes: [1, 3] });
  });

  it('keeps whole hosts for big jobs: picks the tightest fit', () => {
    const hosts = [host('a', [true, true, true, true]), host('b', [false, true, true, true]), host('c', [false, false, true, true])];
    expect(placeGpus(hosts, 1)).toMatchObject({ host: 'c', indexes: [2] });
    expect(placeGpus(hosts, 3)).toMatchObject({ host: 'b', indexes: [1, 2, 3] });
    expect(placeGpus(hosts, 4)).toMatchObject({ host: 'a', indexes: [0, 1, 2, 3] });
  });

  it('honours --host and says why it cannot', () => {
    const hosts = [host('a', [true, true]), host('b', [false, true])];
    expect(placeGpus(hosts, 1, 'a')).toEqual({ ok: true, host: 'a', indexes: [0] });
    expect(placeGpus(hosts, 2, 'b')).toEqual({ ok: false, reason: 'b has 1 free GPU of 2; you asked for 2' });
    expect(placeGpus(hosts, 1, 'zz')).toEqual({ ok: false, reason: 'there is no host "zz"' });
  });

  it('skips down or drained hosts', () => {
    const hosts = [host('down', [true, true], false), host('up', [true, false])];
    expect(placeGpus(hosts, 1)).toMatchObject({ host: 'up' });
    expect(placeGpus(hosts, 2)).toEqual({ ok: false, reason: 'no host has 2 free GPUs (most free on one host: 1; free in total: 1)' });
    expect(placeGpus(hosts, 1, 'down')).toEqual({ ok: false, reason: 'down is not taking work: down' });
  });

  it('never splits a request across hosts', () => {
    expect(placeGpus([host('a', [true, false]), host('b', [true, false])], 2).ok).toBe(false);
  });
});

describe('quota', () => {
  const defaults = { maxGpus: 4, gpuHoursPerWeek: 168, maxHours: 72 };
  it('merges a user entry over the defaults', () => {
    expect(limitsFor('alice', defaults, { alice: { maxGpus: 8 } })).toEqual({ maxGpus: 8, gpuHoursPerWeek: 168, maxHours: 72 });
    expect(limitsFor('bob', defaults, { alice: { maxGpus: 8 } })).toEqual(defaults);
  });

  it('names the limit and the current numbers', () => {
    expect(checkRequest(defaults, 3, 2, 8)).toEqual({ ok: false, limit: 'maxGpus', reason: 'quota maxGpus: you hold 3 GPUs and asked for 2 more; your limit is 4 at a time' });
    expect(checkRequest(defaults, 0, 1, 100)).toEqual({ ok: false, limit: 'maxHours', reason: 'quota maxHours: you asked for 100 h; your limit is 72 h' });
    expect(checkRequest(defaults, 2, 2, 72)).toEqual({ ok: true });
  });

  it('defaults to a working day within the limit', () => {
    expect(defaultHours(defaults)).toBe(24);
    expect(defaultHours({ ...defaults, maxHours: 4 })).toBe(4);
  });
});

describe('imageAllowed', () => {
  const allowed = ['pytorch/pytorch:*', 'nvcr.io/nvidia/pytorch:*'];
  it.each([
    ['pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', true],
    ['nvcr.io/nvidia/pytorch:24.05-py3', true],
    ['pytorch/pytorch', false],
    ['ubuntu:22.04', false],
    ['evil.io/pytorch/pytorch:1', false],
    ['nvcr.io/nvidia/pytorchX:1', false],
  ])('%s -> %s', (image, ok) => {
    expect(imageAllowed(image, allowed)).toBe(ok);
  });
});
