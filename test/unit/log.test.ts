import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';

describe('logs', () => {
  it('are JSON lines, and never carry a token or a key, at any level', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _e, cb) {
        out += String(chunk);
        cb();
      },
    });
    const log = createLogger('trace', sink);
    const secrets = { token: 'xoxb-1234-secret', privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----abc', password: 'hunter2', signingSecret: 's3cr3t', appToken: 'xapp-1-secret' };
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) {
      log[level](
        { user: 'alice', command: 'run', host: 'gpu1', ...secrets, ssh: { privateKey: secrets.privateKey, password: secrets.password }, slack: { token: secrets.token } },
        'a line',
      );
    }
    await new Promise((r) => setTimeout(r, 50));
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(6);
    expect(lines[0]).toMatchObject({ user: 'alice', command: 'run', host: 'gpu1', token: '[redacted]' });
    for (const secret of Object.values(secrets)) expect(out).not.toContain(secret);
  });

  it('are human-readable lines at a terminal, with the same redaction', async () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _e, cb) {
        out += String(chunk);
        cb();
      },
    });
    const log = createLogger('info', sink, { pretty: true });
    log.debug('not shown at info');
    log.warn({ host: 'gpu1', token: 'xoxb-1234-secret' }, 'ssh connection failed');
    await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/WARN.*ssh connection failed/);
    expect(out).toContain('host: "gpu1"');
    expect(out).not.toContain('xoxb-1234-secret');
    expect(out).not.toContain('not shown');
    expect(() => JSON.parse(out.split('\n')[0]!)).toThrow();
  });
});
