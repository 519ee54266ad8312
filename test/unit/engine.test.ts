import { describe, expect, it } from 'vitest';
import { Engine, type EngineDeps } from '../../src/core/engine.js';
import { reply, type RefusalCode } from '../../src/core/reply.js';
import { InputError } from '../../src/core/validate.js';

const cluster = { hostNames: () => ['gpu1'], snapshot: async () => [] };
const alice = { userId: 1, handle: 'alice', isAdmin: false };
const who = { platform: 'slack' as const, id: 'U1' };

function engine(deps: Partial<EngineDeps>) {
  const events: { command: string; code: RefusalCode | undefined }[] = [];
  const unexpected: unknown[] = [];
  const e = new Engine({
    cluster,
    identify: async () => alice,
    onCommand: (ev) => events.push({ command: ev.command, code: ev.code }),
    onUnexpected: (err) => unexpected.push(err),
    ...deps,
  });
  return { e, events, unexpected };
}

describe('the engine, the one door for adapters', () => {
  it('answers "Something went wrong" (internal) when the user cannot be resolved, and never throws', async () => {
    const { e, unexpected } = engine({ identify: async () => Promise.reject(new Error('database is locked')) });
    const answer = await e.handleFrom(who, 'status');
    expect(answer).toMatchObject({ tone: 'error', title: 'Something went wrong', code: 'internal' });
    expect(unexpected).toHaveLength(1);
  });

  it('gives every outcome its code: done, refused from deep inside, a bug, a failure without a code', async () => {
    const { e, events } = engine({
      handlers: {
        ls: async () => reply('info', 'nothing'),
        stop: async () => {
          throw new InputError('"x" belongs to bob', 'not-owner');
        },
        rm: async () => {
          throw new TypeError('a bug');
        },
        keep: async () => reply('error', 'a handler forgot its code'),
      },
    });
    expect((await e.handleFrom(who, 'ls')).code).toBeUndefined();
    expect(await e.handleFrom(who, 'stop x')).toMatchObject({ title: 'Refused', code: 'not-owner' });
    expect(await e.handleFrom(who, 'rm x')).toMatchObject({ title: 'Something went wrong', code: 'internal' });
    expect(await e.handleFrom(who, ['keep', 'x'])).toMatchObject({ code: 'internal' });
    expect(await e.handleFrom(who, 'stop')).toMatchObject({ title: 'That command was not understood', code: 'invalid' });
    expect(events).toEqual([
      { command: 'ls', code: undefined },
      { command: 'stop', code: 'not-owner' },
      { command: 'rm', code: 'internal' },
      { command: 'keep', code: 'internal' },
      { command: 'invalid', code: 'invalid' },
    ]);
  });
});
