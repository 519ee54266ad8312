import type { RefusalCode } from '../core/reply.js';

/** Command counts and latencies, for /metrics. */
export class CommandMetrics {
  private readonly counts = new Map<string, number>();
  private readonly refusals = new Map<string, number>();
  private readonly seconds = new Map<string, { sum: number; count: number }>();

  /** `code`: the refusal's, undefined when the command was done. */
  record(command: string, code: RefusalCode | undefined, ms: number): void {
    const key = `${command}|${code === undefined}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    if (code !== undefined) this.refusals.set(`${command}|${code}`, (this.refusals.get(`${command}|${code}`) ?? 0) + 1);
    const s = this.seconds.get(command) ?? { sum: 0, count: 0 };
    s.sum += ms / 1000;
    s.count++;
    this.seconds.set(command, s);
  }

  lines(): string[] {
    const out = ['# HELP gpubot_commands_total Commands answered, by command and outcome.', '# TYPE gpubot_commands_total counter'];
    for (const [key, n] of this.counts) {
      const [command, ok] = key.split('|');
      out.push(`gpubot_commands_total{command="${command}",ok="${ok}"} ${n}`);
    }
    out.push('# HELP gpubot_command_refusals_total Commands refused or failed, by command and refusal code.', '# TYPE gpubot_command_refusals_total counter');
    for (const [key, n] of this.refusals) {
      const [command, code] = key.split('|');
      out.push(`gpubot_command_refusals_total{command="${command}",code="${code}"} ${n}`);
    }
    out.push('# HELP gpubot_command_seconds Time to answer a command.', '# TYPE gpubot_command_seconds summary');
    for (const [command, s] of this.seconds) out.push(`gpubot_command_seconds_sum{command="${command}"} ${s.sum}`, `gpubot_command_seconds_count{command="${command}"} ${s.count}`);
    return out;
  }
}
