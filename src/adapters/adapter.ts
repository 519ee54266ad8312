import type { ChatPort } from '../core/port.js';
import type { Logger } from '../log.js';

/** A chat front end. Thin: chat events in, words to the port, Replies rendered back. */
export interface ChatAdapter {
  readonly name: string;
  /** Adapters see gpubot only through the port: no database, hosts or jobs. */
  start(port: ChatPort): Promise<void>;
  /** Resolves when the adapter has ended by itself (e.g. the console's input closed). */
  readonly done?: Promise<void>;
  stop(): Promise<void>;
}

export interface AdapterFactory {
  name: string;
  /** Whether the environment has what this adapter needs (its tokens). */
  isConfigured(env: NodeJS.ProcessEnv): boolean;
  /** May load its chat SDK first: only configured adapters' SDKs are ever loaded. */
  create(env: NodeJS.ProcessEnv, log: Logger): ChatAdapter | Promise<ChatAdapter>;
}
