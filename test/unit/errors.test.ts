import { describe, expect, it } from 'vitest';
import { userMessage } from '../../src/util/errors.js';

describe('userMessage', () => {
  it('says the database is away only for the database', () => {
    const prismaDown = Object.assign(
      new Error("\nInvalid `db.user.findUnique()` invocation in\n/app/src/db/users.ts:20:17\n\n→ 20 const known = ...\nCan't reach database server at 127.0.0.1:5432"),
      { name: 'PrismaClientKnownRequestError', code: 'P1001' },
    );
    expect(userMessage(prismaDown)).toContain('cannot reach its database');
    const adapterDown = Object.assign(new Error('DatabaseNotReachable'), { name: 'DriverAdapterError', cause: { kind: 'DatabaseNotReachable' } });
    expect(userMessage(adapterDown)).toContain('cannot reach its database');
    // A GPU host or a Docker socket refusing is not the database.
    expect(userMessage(new Error('gpu1 is down: connect ECONNREFUSED 10.0.0.5:22'))).toBe('gpu1 is down: connect ECONNREFUSED 10.0.0.5:22');
    expect(userMessage(Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), { code: 'ECONNREFUSED' }))).toContain('docker.sock');
  });

  it('keeps the cause of a Prisma error and drops its code frame', () => {
    const err = Object.assign(
      new Error(
        '\nInvalid `db.container.create()` invocation in\n/app/src/operations/run.ts:40:5\n\n  39 |\n→ 40 row = await db.container.create(\nUnique constraint failed on the fields: (`name`)',
      ),
      { name: 'PrismaClientKnownRequestError', code: 'P2002' },
    );
    expect(userMessage(err)).toBe('Unique constraint failed on the fields: (`name`)');
  });

  it('takes anything thrown', () => {
    expect(userMessage(null)).toBe('null');
    expect(userMessage('plain')).toBe('plain');
  });
});
