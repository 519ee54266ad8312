/** Command counts and latencies, for /metrics. */
export class CommandMetrics {
  private readonly counts = new Map<string, number>();
  private readonly seconds = new Map<string, { sum: number; count: number }>();

  record(command: string, ok: boolean, ms: number): void {
    const key = `${command}|${ok}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
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
    out.push('# HELP gpubot_command_seconds Time to answer a command.', '# TYPE gpubot_command_seconds summary');
    for (const [command, s] of this.seconds) out.push(`gpubot_command_seconds_sum{command="${command}"} ${s.sum}`, `gpubot_command_seconds_count{command="${command}"} ${s.count}`);
    return out;
  }
}
