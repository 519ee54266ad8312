import { describe, expect, it } from 'vitest';
import { containerIdFromCgroup, parseGpus, parseProcesses, splitCombined } from '../../src/hosts/nvidia-smi.js';

const ok = (stdout: string) => ({ code: 0, stdout, stderr: '' });

describe('parseGpus', () => {
  it('reads each GPU line with numbers and the model name last', () => {
    const r = parseGpus(ok('1, GPU-bbb, 40000, 81920, 97, 66, NVIDIA A100-SXM4-80GB\n0, GPU-aaa, 3, 81920, 0, 31, NVIDIA A100-SXM4-80GB\n'));
    expect(r).toEqual({
      ok: true,
      value: [
        { index: 0, uuid: 'GPU-aaa', model: 'NVIDIA A100-SXM4-80GB', memoryUsedMiB: 3, memoryTotalMiB: 81920, utilization: 0, temperature: 31 },
        { index: 1, uuid: 'GPU-bbb', model: 'NVIDIA A100-SXM4-80GB', memoryUsedMiB: 40000, memoryTotalMiB: 81920, utilization: 97, temperature: 66 },
      ],
    });
  });

  it('keeps a comma inside the model name', () => {
    const r = parseGpus(ok('0, GPU-aaa, 1, 2, 3, 4, Odd, Name\n'));
    expect(r.ok && r.value[0]!.model).toBe('Odd, Name');
  });

  it('turns [N/A] and [Not Supported] into unknown values, not zero', () => {
    const r = parseGpus(ok('0, GPU-aaa, [N/A], 16384, [Not Supported], [N/A], Tesla T4\n'));
    expect(r.ok && r.value[0]).toMatchObject({ memoryUsedMiB: null, memoryTotalMiB: 16384, utilization: null, temperature: null });
  });

  it('reports the driver error when nvidia-smi fails, never 0 %', () => {
    const r = parseGpus({
      code: 9,
      stdout: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
      stderr: '',
    });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/exit 9.*couldn't communicate with the NVIDIA driver/);
  });

  it('says nvidia-smi is missing', () => {
    expect(parseGpus({ code: 127, stdout: '', stderr: 'sh: 1: nvidia-smi: not found' })).toEqual({ ok: false, error: 'nvidia-smi is not installed on this host' });
  });

  it.each([
    ['too few fields', '0, GPU-aaa, 1, 2\n'],
    ['a word where a number belongs', '0, GPU-aaa, lots, 81920, 5, 30, A100\n'],
    ['utilization over 100', '0, GPU-aaa, 1, 81920, 250, 30, A100\n'],
    ['a bad uuid', '0, $(reboot), 1, 81920, 5, 30, A100\n'],
    ['a negative index', '-1, GPU-aaa, 1, 81920, 5, 30, A100\n'],
    ['a duplicate index', '0, GPU-aaa, 1, 2, 3, 4, A\n0, GPU-bbb, 1, 2, 3, 4, A\n'],
    ['a header line', 'index, uuid, memory.used [MiB], memory.total [MiB], utilization.gpu [%], temperature.gpu, name\n'],
  ])('rejects malformed output: %s', (_what, stdout) => {
    const r = parseGpus(ok(stdout));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/could not be read/);
  });

  it('treats empty output as no GPUs', () => {
    expect(parseGpus(ok(''))).toEqual({ ok: true, value: [] });
  });
});

describe('parseProcesses', () => {
  it('reads compute processes', () => {
    expect(parseProcesses(ok('GPU-aaa, 4242, 1200, python train.py\nGPU-bbb, 17, [N/A], /usr/bin/x\n'))).toEqual({
      ok: true,
      value: [
        { gpuUuid: 'GPU-aaa', pid: 4242, usedMemoryMiB: 1200, name: 'python train.py' },
        { gpuUuid: 'GPU-bbb', pid: 17, usedMemoryMiB: null, name: '/usr/bin/x' },
      ],
    });
  });

  it('accepts the "No running processes found" banner', () => {
    expect(parseProcesses(ok('No running processes found\n'))).toEqual({ ok: true, value: [] });
  });

  it('rejects a non-numeric pid', () => {
    expect(parseProcesses(ok('GPU-aaa, 12;rm, 5, x\n')).ok).toBe(false);
  });
});

describe('containerIdFromCgroup', () => {
  const id = 'a'.repeat(40) + '0123456789abcdef01234567';
  it.each([
    ['cgroup v1, cgroupfs driver', `12:memory:/docker/${id}\n11:pids:/docker/${id}\n`],
    ['cgroup v2, systemd driver', `0::/system.slice/docker-${id}.scope\n`],
    ['cgroup v2, cgroupfs driver', `0::/docker/${id}\n`],
    ['nested under a parent cgroup', `4:memory:/process_api/3b4b/docker/${id}\n`],
  ])('finds the container id: %s', (_what, text) => {
    expect(containerIdFromCgroup(text)).toBe(id);
  });

  it('returns null for a process outside any container', () => {
    expect(containerIdFromCgroup('0::/user.slice/user-1000.slice/session-3.scope\n12:memory:/\n')).toBeNull();
  });
});

describe('splitCombined', () => {
  it('separates the two queries and keeps each exit code', () => {
    const [gpus, apps] = splitCombined({ code: 0, stdout: '0, GPU-a, 1, 2, 3, 4, A\n::gpubot-exit 0\nGPU-a, 7, 5, python\n::gpubot-exit 0\n', stderr: '' });
    expect(parseGpus(gpus).ok).toBe(true);
    expect(parseProcesses(apps)).toEqual({ ok: true, value: [{ gpuUuid: 'GPU-a', pid: 7, usedMemoryMiB: 5, name: 'python' }] });
  });

  it('keeps a failing query failing', () => {
    const [gpus] = splitCombined({ code: 0, stdout: 'No devices were found\n::gpubot-exit 6\n::gpubot-exit 6\n', stderr: '' });
    expect(parseGpus(gpus)).toEqual({ ok: false, error: 'nvidia-smi failed (exit 6): No devices were found' });
  });

  it('reports nvidia-smi missing through sh', () => {
    const [gpus] = splitCombined({ code: 0, stdout: '::gpubot-exit 127\n::gpubot-exit 127\n', stderr: 'sh: 1: nvidia-smi: not found\nsh: 1: nvidia-smi: not found\n' });
    expect(parseGpus(gpus)).toEqual({ ok: false, error: 'nvidia-smi is not installed on this host' });
  });

  it('treats output cut short as a failure, not as no GPUs', () => {
    const [gpus, apps] = splitCombined({ code: null, stdout: '', stderr: '' });
    expect(parseGpus(gpus).ok).toBe(false);
    expect(parseProcesses(apps).ok).toBe(false);
  });
});
