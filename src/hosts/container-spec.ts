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
}

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
  return {
    name: spec.name,
    Image: spec.image,
    // Without a command the container idles; a plain `sleep` as PID 1 ignores SIGTERM, so every
    // stop would wait out Docker's grace period.
    Cmd: spec.cmd ?? IDLE_COMMAND,
    WorkingDir: config.storage.mountPath,
    Env: [...env, 'NVIDIA_DRIVER_CAPABILITIES=compute,utility', `GPUBOT_OWNER=${spec.owner}`],
    Labels: {
      [LABEL.managed]: 'true',
      [LABEL.owner]: spec.owner,
      [LABEL.gpus]: devices.join(','),
      [LABEL.allocation]: String(spec.allocationId),
      [LABEL.name]: spec.name,
    },
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      ...gpuHostConfig,
      Mounts: [
        { Type: 'bind', Source: userDir(config, spec.owner), Target: config.storage.mountPath, ReadOnly: false },
        ...config.storage.shared.map((s) => ({ Type: 'bind' as const, Source: s.hostPath, Target: s.containerPath, ReadOnly: s.readOnly })),
      ],
      ShmSize: sizeBytes(spec.shmSize),
      Privileged: false,
      CapAdd: [],
      SecurityOpt: ['no-new-privileges'],
      RestartPolicy: { Name: 'no' },
    },
  };
}
