/** Labels gpubot puts on every container it starts; the source of truth on the host side. */
export const LABEL = {
  managed: 'gpubot.managed',
  owner: 'gpubot.owner',
  gpus: 'gpubot.gpus',
  allocation: 'gpubot.allocation',
  name: 'gpubot.name',
} as const;

export const parseGpuList = (value: string | undefined): number[] =>
  (value ?? '')
    .split(',')
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
