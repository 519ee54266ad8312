/** Labels gpubot puts on every container it starts; the source of truth on the host side. */
export const LABEL = {
  managed: 'gpubot.managed',
  owner: 'gpubot.owner',
  gpus: 'gpubot.gpus',
  allocation: 'gpubot.allocation',
  name: 'gpubot.name',
  /** The installation (database) that started it; another installation's containers are never touched. */
  instance: 'gpubot.instance',
  /** End time (ISO) at start, and the uid it runs as: what adoption by a restored database reads. */
  endsAt: 'gpubot.ends',
  uid: 'gpubot.uid',
} as const;

export const parseGpuList = (value: string | undefined): number[] =>
  (value ?? '')
    .split(',')
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
