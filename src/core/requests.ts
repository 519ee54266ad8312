/** Typed requests: what every adapter produces from chat input, whatever the chat. */
export type Request =
  | { command: 'help'; topic?: string }
  | { command: 'status'; host?: string; chart?: boolean }
  | { command: 'run'; gpus: number; image?: string; host?: string; name?: string; hours?: number; shm?: string; cmd?: string[]; queue?: boolean; jupyter?: boolean }
  | { command: 'queue'; cancel?: number }
  | { command: 'reserve'; gpus: number; host?: string; hours?: number }
  | { command: 'release'; target: number | 'all' }
  | { command: 'ls'; all: boolean }
  | { command: 'stop'; name: string }
  | { command: 'start'; name: string }
  | { command: 'rm'; name: string }
  | { command: 'logs'; name: string; tail: number }
  | { command: 'extend'; name: string; hours: number }
  | { command: 'keep'; name: string }
  | { command: 'images'; host?: string }
  | { command: 'quota'; user?: string }
  | { command: 'link'; code?: string; answer?: 'yes' | 'no' }
  | { command: 'image'; action: 'build'; name: string; file: string; host?: string; buildArgs: Record<string, string> }
  | { command: 'image'; action: 'logs'; name: string }
  | { command: 'image'; action: 'ls' }
  | { command: 'image'; action: 'rm'; name: string; version?: number }
  | { command: 'usage'; user?: string; days: number; chart?: boolean }
  | { command: 'dashboard'; revoke: boolean }
  | { command: 'key'; action: 'add'; line: string }
  | { command: 'key'; action: 'ls' }
  | { command: 'key'; action: 'rm'; target: string }
  | { command: 'ssh-config' }
  | { command: 'admin'; action: 'run-job'; job: string }
  | { command: 'admin'; action: 'quota'; user: string; maxGpus?: number; gpuHoursPerWeek?: number; maxHours?: number }
  | { command: 'admin'; action: 'audit'; count: number }
  | { command: 'admin'; action: 'hosts' }
  | { command: 'admin'; action: 'drain' | 'undrain' | 'forget'; host: string };

export type CommandName = Request['command'];

/** Who is asking. Adapters resolve chat identities to a gpubot user before calling the core. */
export interface Actor {
  userId: number;
  handle: string;
  isAdmin: boolean;
}
