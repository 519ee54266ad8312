import { catalogue, commandSpec } from '../grammar.js';
import { reply, type Reply } from '../reply.js';

export function helpReply(topic?: string): Reply {
  if (topic) {
    const spec = commandSpec(topic)!;
    const actions = spec.actions ?? [];
    return reply('info', actions.length ? `${spec.name} ${actions.map((a) => a.name).join('|')}` : spec.usage, [
      { type: 'text', text: spec.summary },
      ...(actions.length ? [{ type: 'table' as const, columns: ['Action', 'What it does'], rows: actions.map((a) => [a.usage, a.summary]) }] : []),
      { type: 'code', text: spec.examples.join('\n') },
    ]);
  }
  return reply('info', 'gpubot commands', [
    { type: 'table', columns: ['Command', 'What it does'], rows: catalogue().map((e) => [e.usage, e.summary]) },
    { type: 'text', text: 'Say "help COMMAND" for examples.' },
  ]);
}
