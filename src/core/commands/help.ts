import { commandSpec, commands } from '../grammar.js';
import { reply, type Reply } from '../reply.js';

export function helpReply(topic?: string): Reply {
  if (topic) {
    const spec = commandSpec(topic)!;
    return reply('info', spec.usage, [
      { type: 'text', text: spec.summary },
      { type: 'code', text: spec.examples.join('\n') },
    ]);
  }
  return reply('info', 'gpubot commands', [
    { type: 'table', columns: ['Command', 'What it does'], rows: commands.map((c) => [c.usage, c.summary]) },
    { type: 'text', text: 'Say "help COMMAND" for examples.' },
  ]);
}
