import type { ProgressSink, Reply } from './reply.js';

/** The chats gpubot speaks in. */
export type Platform = 'console' | 'slack' | 'discord';

/** A person as one chat knows them; gpubot resolves it to its user (creating one on first use). */
export interface ChatIdentity {
  platform: Platform;
  /** The chat's own id for the person (Slack U..., Discord snowflake, console user name). */
  id: string;
  /** Where a first-time user's handle comes from; looked up only then (it may cost an API call). */
  name?: string | (() => Promise<string>);
}

/** Where an option's values come from, for autocomplete and form selects. */
export type ChoiceSource = 'container' | 'image' | 'host' | 'free-host' | 'job';

export interface Choice {
  value: string;
  /** What the chat shows, e.g. "gpu1 (3 free)". */
  label: string;
  /** free-host: its free GPUs. */
  free?: number;
}

/**
 * What a chat adapter may ask of gpubot, and nothing more: adapters render, this decides.
 * The app implements it; adapters never see the database, the hosts or the jobs.
 */
export interface ChatPort {
  /** Text as typed, or words already split, as the person behind `who`. Never throws: failures are Replies. */
  handle(who: ChatIdentity, input: string | string[], progress?: ProgressSink): Promise<Reply>;
  /** Values for an option, best first, within `budgetMs` (a host that is slower is left out). `who` decides whose containers. */
  choices(source: ChoiceSource, who?: ChatIdentity, budgetMs?: number): Promise<Choice[]>;
  /** What the launch form starts with. */
  launchDefaults(): { image: string; hours: number };
  /** An adapter that can reach people privately (DMs) registers its sender here. */
  registerNotifier(platform: Platform, send: (externalId: string, reply: Reply) => Promise<void>): void;
}
