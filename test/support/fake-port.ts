import type { AccessPolicy, Choice, ChatIdentity, ChatPort, ChoiceSource, Platform } from '../../src/core/port.js';
import { reply, type Reply } from '../../src/core/reply.js';

/** A ChatPort that records what adapters hand it and answers "ok": adapters alone, no hosts or database. */
export function recordingPort(
  access: Partial<AccessPolicy> = {},
): ChatPort & { received: { who: ChatIdentity; input: string | string[] }[]; notifiers: Platform[]; refused: { who: ChatIdentity; reason: string }[] } {
  const received: { who: ChatIdentity; input: string | string[] }[] = [];
  const notifiers: Platform[] = [];
  const refused: { who: ChatIdentity; reason: string }[] = [];
  return {
    received,
    notifiers,
    refused,
    accessPolicy: () => ({ discord: { allowDMs: false, allowAnyServer: false, roles: [] }, slack: { allowGuests: false }, ...access }),
    knows: async (who: ChatIdentity) => received.some((r) => r.who.platform === who.platform && r.who.id === who.id),
    refusedAtTheDoor(who: ChatIdentity, reason: string) {
      refused.push({ who, reason });
    },
    async handle(who: ChatIdentity, input: string | string[]): Promise<Reply> {
      received.push({ who, input });
      return reply('info', `ok ${received.length}`);
    },
    async choices(source: ChoiceSource): Promise<Choice[]> {
      const lists: Partial<Record<ChoiceSource, Choice[]>> = {
        job: [
          { value: 'expiry', label: 'expiry' },
          { value: 'reconcile', label: 'reconcile' },
        ],
        image: [
          { value: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', label: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime' },
          { value: 'gpubot-test/busybox:latest', label: 'gpubot-test/busybox:latest' },
        ],
        'free-host': [
          { value: 'gpu2', label: 'gpu2 (3 free)', free: 3 },
          { value: 'gpu1', label: 'gpu1 (1 free)', free: 1 },
        ],
      };
      return lists[source] ?? [];
    },
    launchDefaults: () => ({ image: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', hours: 24 }),
    registerNotifier(platform: Platform) {
      notifiers.push(platform);
    },
  };
}
