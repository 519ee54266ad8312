import { describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/core/grammar.js';
import { InputError } from '../../src/core/validate.js';
import { signToken } from '../../src/operations/dashboard.js';

describe('dashboard and --chart in the grammar', () => {
  it('parses dashboard, dashboard revoke and the --chart flags; refuses anything else', () => {
    expect(parseCommand('dashboard')).toEqual({ command: 'dashboard', revoke: false });
    expect(parseCommand('dashboard revoke')).toEqual({ command: 'dashboard', revoke: true });
    expect(parseCommand('status --chart')).toEqual({ command: 'status', host: undefined, chart: true });
    expect(parseCommand('usage --chart')).toEqual({ command: 'usage', user: undefined, days: 7, chart: true });
    for (const bad of ['dashboard <script>', 'dashboard revoke now', 'dashboard --public']) expect(() => parseCommand(bad), bad).toThrow(InputError);
  });
});

describe('link tokens', () => {
  it('are URL-safe and differ by key, user, generation and expiry', () => {
    const key = Buffer.alloc(32, 1);
    const at = new Date('2030-01-01T00:00:00Z');
    const token = signToken(key, 7, 0, at);
    expect(token).toMatch(/^7\.0\.1893456000\.[A-Za-z0-9_-]{43}$/);
    const others = [signToken(Buffer.alloc(32, 2), 7, 0, at), signToken(key, 8, 0, at), signToken(key, 7, 1, at), signToken(key, 7, 0, new Date(at.getTime() + 1000))];
    for (const other of others) expect(other.split('.')[3]).not.toBe(token.split('.')[3]);
  });
});
