import type Docker from 'dockerode';
import type { Config, HostConfig } from '../config/schema.js';
import { LABEL } from './labels.js';
import { sizeBytes } from '../core/validate.js';

export interface LaunchSpec {
  name: string;
  owner: string;
  image: string;
  gpus: number[];
  allocationId: number;
  shmSize: string;
  cmd?: string[];
  host: HostConfig;
  /** This installation's id (label gpubot.instance). */
  instanceId: string;
  endsAt: Date;
  /** The uid/gid it runs as under storage.runAs: user; undefined: root. */
  uid?: number;
  /** The user's own network (containers of different users cannot reach each other). */
  network: string;
}

/** Ulimits PyTorch and NCCL need: pinned memory (unlimited unless limits.memlock says) and deep stacks. */
export const ulimits = (memlock: number) => [
  { Name: 'memlock', Soft: memlock, Hard: memlock },
  { Name: 'stack', Soft: 67108864, Hard: 67108864 },
];

/** The bridge network of one user: their containers share it, nobody else's do. */
export const userNetwork = (handle: string): string => `gpubot-u-${handle}`;

export const IDLE_COMMAND = ['sh', '-c', 'trap "exit 0" TERM INT; sleep infinity & wait'];

export const userDir = (config: Config, handle: string): string => `${config.storage.userRoot.replace(/\/+$/, '')}/${handle}`;

/**
 * The one container shape gpubot creates: the chosen GPUs, the user's dir and the shared dirs,
 * enough shared memory for DataLoaders; never privileged, no host namespaces, no added devices or
 * capabilities, no mount the user chose.
 */
export function containerSpec(config: Config, spec: LaunchSpec): Docker.ContainerCreateOptions {
  const devices = spec.gpus.map(String);
  const gpuConfig: Pick<Docker.HostConfig, 'DeviceRequests' | 'Runtime'> & { env: string[] } =
    spec.host.gpuMode === 'nvidia-runtime'
      ? { Runtime: 'nvidia', env: [`NVIDIA_VISIBLE_DEVICES=${devices.join(',')}`] }
      : { DeviceRequests: [{ Driver: 'nvidia', DeviceIDs: devices, Capabilities: [['gpu']] }], env: [] };
  const { env, ...gpuHostConfig } = gpuConfig;
  const { limits } = config;
  const asUser = spec.uid !== undefined;
  return {
    name: spec.name,
    Image: spec.image,
    // Without a command the container idles; a plain `sleep` as PID 1 ignores SIGTERM, so every
    // stop would wait out Docker's grace period.
    Cmd: spec.cmd ?? IDLE_COMMAND,
    WorkingDir: config.storage.mountPath,
    Env: [...env, 'NVIDIA_DRIVER_CAPABILITIES=compute,utility', `GPUBOT_OWNER=${spec.owner}`, ...(asUser ? [`HOME=${config.storage.mountPath}`, `USER=${spec.owner}`] : [])],
    ...(asUser ? { User: `${spec.uid}:${spec.uid}` } : {}),
    Labels: {
      [LABEL.managed]: 'true',
      [LABEL.owner]: spec.owner,
      [LABEL.gpus]: devices.join(','),
      [LABEL.allocation]: String(spec.allocationId),
      [LABEL.name]: spec.name,
      [LABEL.instance]: spec.instanceId,
      [LABEL.endsAt]: spec.endsAt.toISOString(),
      ...(asUser ? { [LABEL.uid]: String(spec.uid) } : {}),
    },
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      ...gpuHostConfig,
      Mounts: [
        { Type: 'bind', Source: userDir(config, spec.owner), Target: config.storage.mountPath, ReadOnly: false },
        // Under runAs: user shared dirs are read-only whatever the config says: one user's writes are not another's to find.
        ...config.storage.shared.map((s) => ({ Type: 'bind' as const, Source: s.hostPath, Target: s.containerPath, ReadOnly: asUser || s.readOnly })),
      ],
      ShmSize: sizeBytes(spec.shmSize),
      Privileged: false,
      CapAdd: [],
      // NET_RAW: raw sockets serve spoofing and ARP games, never training.
      CapDrop: ['NET_RAW'],
      SecurityOpt: ['no-new-privileges'],
      PidsLimit: limits.pids,
      Ulimits: ulimits(limits.memlock),
      ...(limits.memoryPerGpu ? { Memory: sizeBytes(limits.memoryPerGpu) * Math.max(1, spec.gpus.length) } : {}),
      ...(limits.cpusPerGpu ? { NanoCpus: Math.round(limits.cpusPerGpu * Math.max(1, spec.gpus.length) * 1e9) } : {}),
      NetworkMode: spec.network,
      RestartPolicy: { Name: 'no' },
    },
  };
}
