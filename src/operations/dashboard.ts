import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { HostSnapshot } from '../core/cluster.js';
import type { CommandContext } from '../core/engine.js';
import { refuse, reply, type Reply } from '../core/reply.js';
import type { Request } from '../core/requests.js';
import { audit } from '../db/audit.js';
import { parseIndexes } from '../db/allocations.js';
import { usageOf } from '../db/usage.js';
import { chatIdKeys } from '../db/users.js';
import type { OpsDeps } from './deps.js';
import { fairOrder } from './queue.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Who looks at the dashboard: a signed link's user, or nobody in particular (http.dashboard.public). */
export type Viewer = { userId: number; handle: string; isAdmin: boolean } | null;

const keys = new WeakMap<OpsDeps['db'], Promise<Buffer>>();

/** The key that signs links: one per database, so every process (and a restart) accepts the same links. Read once per client. */
export function dashboardKey(deps: Pick<OpsDeps, 'db'>): Promise<Buffer> {
  let key = keys.get(deps.db);
  if (!key) {
    key = deps.db.dashboardKey.upsert({ where: { id: 1 }, create: { id: 1, secret: randomBytes(32).toString('hex') }, update: {} }).then((row) => Buffer.from(row.secret, 'hex'));
    key.catch(() => keys.delete(deps.db));
    keys.set(deps.db, key);
  }
  return key;
}

async function generationOf(deps: Pick<OpsDeps, 'db'>, userId: number): Promise<number> {
  return (await deps.db.dashboardAccess.findUnique({ where: { userId } }))?.generation ?? 0;
}

const mac = (key: Buffer, body: string): string => createHmac('sha256', key).update(`gpubot-dashboard:${body}`).digest('base64url');

/** A link token: user.generation.expiry(s).signature, URL-safe. */
export function signToken(key: Buffer, userId: number, generation: number, expiresAt: Date): string {
  const body = `${userId}.${generation}.${Math.floor(expiresAt.getTime() / 1000)}`;
  return `${body}.${mac(key, body)}`;
}

const TOKEN = /^(\d{1,10})\.(\d{1,10})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** The viewer a token stands for, or why not: forged, expired, revoked, or a user that is gone. */
export async function verifyToken(deps: Pick<OpsDeps, 'db' | 'config' | 'now'>, token: string): Promise<{ ok: true; viewer: NonNullable<Viewer> } | { ok: false; why: string }> {
  const m = TOKEN.exec(token);
  if (!m) return { ok: false, why: 'not a dashboard link' };
  const [, user, generation, expires, signature] = m as unknown as [string, string, string, string, string];
  const expected = Buffer.from(mac(await dashboardKey(deps), `${user}.${generation}.${expires}`));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, why: 'the signature does not match' };
  if (Number(expires) * 1000 <= deps.now().getTime()) return { ok: false, why: 'the link has expired; say "dashboard" in chat for a new one' };
  const userId = Number(user);
  if ((await generationOf(deps, userId)) !== Number(generation)) return { ok: false, why: 'the link was revoked; say "dashboard" in chat for a new one' };
  const row = await deps.db.user.findUnique({ where: { id: userId }, include: { identities: true } });
  if (!row) return { ok: false, why: 'no such user' };
  const keys = [row.handle, ...row.identities.flatMap((i) => chatIdKeys(i.platform, i.externalId))];
  return { ok: true, viewer: { userId, handle: row.handle, isAdmin: keys.some((k) => deps.config.admins.includes(k)) } };
}

/** Where people open the dashboard: http.publicUrl, else the side port's own address. */
export function dashboardBase(config: OpsDeps['config']): string | undefined {
  const http = config.http;
  if (!http) return undefined;
  return (http.publicUrl ?? `http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}`).replace(/\/+$/, '');
}

/** dashboard [revoke]: a personal signed link, or every link of yours made void. */
export async function dashboardCommand(deps: OpsDeps, req: Extract<Request, { command: 'dashboard' }>, { actor }: CommandContext): Promise<Reply> {
  const base = dashboardBase(deps.config);
  if (req.revoke) {
    await deps.db.dashboardAccess.upsert({ where: { userId: actor.userId }, create: { userId: actor.userId, generation: 1 }, update: { generation: { increment: 1 } } });
    await audit(deps.db, { actor: actor.handle, action: 'dashboard revoke', result: 'ok' });
    return reply('success', 'Your dashboard links are revoked', [
      { type: 'text', text: 'Every link you were given so far gets "403 Forbidden" now. Say "dashboard" for a new one.' },
    ]);
  }
  if (!base) return refuse('unavailable', 'The dashboard is off in this deployment', 'It runs on the side port: an admin sets http.port (and http.publicUrl) in the config.');
  const hours = deps.config.http!.dashboard.linkHours;
  const expires = new Date(deps.now().getTime() + hours * HOUR_MS);
  const token = signToken(await dashboardKey(deps), actor.userId, await generationOf(deps, actor.userId), expires);
  await audit(deps.db, { actor: actor.handle, action: 'dashboard', result: 'ok', detail: `link until ${expires.toISOString()}` });
  return reply('info', 'Your dashboard link', [
    { type: 'text', text: `${base}/dashboard/${token}` },
    {
      type: 'text',
      text: `Valid for ${hours} h (until ${expires.toISOString().slice(0, 16).replace('T', ' ')} UTC). The link is the password: keep it to yourself. "dashboard revoke" voids all your links.`,
    },
  ]);
}

export interface LiveGpu {
  index: number;
  model: string;
  memoryUsedMiB: number | null;
  memoryTotalMiB: number | null;
  utilization: number | null;
  temperature: number | null;
  holders: { owner: string; container: string | null; otherGpubot?: boolean }[];
  unmanaged: { pid: number; name: string; container?: string }[];
}

export interface LiveState {
  at: string;
  viewer: { handle: string; isAdmin: boolean } | null;
  hosts: { name: string; state: string; drained: boolean; error?: string; gpus: LiveGpu[] | null }[];
  queue: { position: number; user: string; gpus: number; since: string }[];
  me?: {
    containers: { name: string; host: string; gpus: string; state: string; endsAt: string | null }[];
    reservations: { id: number; host: string; gpus: string; endsAt: string | null }[];
    quota: { used: number; budget: number; windowEnds: string | null; heldGpus: number; maxGpus: number };
    queue: { id: number; position: number; gpus: number; estimate: string | null }[];
  };
  admin?: { audit: { at: string; actor: string; action: string; target: string | null; result: string; detail: string | null }[]; connections: Record<string, unknown> };
}

/** What the grid shows: what "status" and "queue" show anyone, plus the viewer's own and (admins) the audit tail. */
export async function liveState(deps: OpsDeps, snapshots: HostSnapshot[], viewer: Viewer): Promise<LiveState> {
  const order = await fairOrder(deps);
  const state: LiveState = {
    at: deps.now().toISOString(),
    viewer: viewer && { handle: viewer.handle, isAdmin: viewer.isAdmin },
    hosts: snapshots.map((s) => ({
      name: s.name,
      state: s.state,
      drained: s.drained === true,
      error: s.error ?? s.gpuError ?? s.dockerError,
      gpus:
        s.gpus?.map((g) => ({
          index: g.index,
          model: g.model,
          memoryUsedMiB: g.memoryUsedMiB,
          memoryTotalMiB: g.memoryTotalMiB,
          utilization: g.utilization,
          temperature: g.temperature,
          holders: g.holders.map((h) => ({ owner: h.owner, container: h.container, ...(h.otherGpubot ? { otherGpubot: true } : {}) })),
          unmanaged: g.unmanaged.map((p) => ({ pid: p.pid, name: p.name, ...(p.foreignContainer ? { container: p.foreignContainer } : {}) })),
        })) ?? null,
    })),
    queue: order.map((w, i) => ({ position: i + 1, user: w.handle, gpus: (JSON.parse(w.request) as { gpus: number }).gpus, since: w.createdAt.toISOString() })),
  };
  if (viewer) {
    const [containers, reservations, usage, nextEnd] = await Promise.all([
      deps.db.container.findMany({ where: { userId: viewer.userId, removedAt: null }, orderBy: { createdAt: 'asc' } }),
      deps.db.allocation.findMany({ where: { userId: viewer.userId, kind: 'reservation', state: 'active' }, orderBy: { id: 'asc' } }),
      usageOf(deps.db, deps.config, viewer.userId, viewer.handle, deps.now()),
      deps.db.allocation.findFirst({ where: { state: 'active', endsAt: { not: null } }, orderBy: { endsAt: 'asc' } }),
    ]);
    state.me = {
      containers: containers.map((c) => ({ name: c.name, host: c.hostName, gpus: c.gpuIndexes, state: c.state, endsAt: c.endsAt?.toISOString() ?? null })),
      reservations: reservations.map((r) => ({ id: r.id, host: r.hostName, gpus: r.gpuIndexes, endsAt: r.endsAt?.toISOString() ?? null })),
      quota: {
        used: usage.used,
        budget: usage.limits.gpuHoursPerWeek,
        windowEnds: usage.window.end?.toISOString() ?? null,
        heldGpus: usage.heldGpus,
        maxGpus: usage.limits.maxGpus,
      },
      // The estimate: the soonest a held allocation ends on its own (a guess; runs end early too).
      queue: order.flatMap((w, i) =>
        w.userId === viewer.userId ? [{ id: w.id, position: i + 1, gpus: (JSON.parse(w.request) as { gpus: number }).gpus, estimate: nextEnd?.endsAt?.toISOString() ?? null }] : [],
      ),
    };
  }
  if (viewer?.isAdmin) {
    const events = await deps.db.auditEvent.findMany({ orderBy: { id: 'desc' }, take: 20 });
    state.admin = {
      audit: events.map((e) => ({ at: e.at.toISOString(), actor: e.actor, action: e.action, target: e.target, result: e.result, detail: e.detail })),
      connections: Object.fromEntries(deps.pool.all().map((h) => [h.name, h.connection()])),
    };
  }
  return state;
}

export interface HistoryState {
  /** Per GPU ("host:index"): [epoch seconds, mean utilization] per minute, the last hour. */
  sparklines: Record<string, [number, number | null][]>;
  /** The last 7 UTC days, oldest first, and GPU-hours per user per day. */
  days: string[];
  gpuHours: { user: string; hours: number[] }[];
  /** Mean utilization of the GPUs each user held over the 7 days: everyone's for admins, your own otherwise. */
  efficiency: { user: string; utilization: number | null }[];
}

/** The charts: minute means (GpuSample) and allocations (GPU-hours), the last hour and the last 7 days. */
export async function historyState(deps: OpsDeps, viewer: Viewer): Promise<HistoryState> {
  const now = deps.now().getTime();
  const samples = await deps.db.gpuSample.findMany({ where: { at: { gte: new Date(now - HOUR_MS) } }, orderBy: { at: 'asc' } });
  const sparklines: HistoryState['sparklines'] = {};
  for (const s of samples) (sparklines[`${s.hostName}:${s.gpuIndex}`] ??= []).push([Math.floor(s.at.getTime() / 1000), s.utilization]);

  const firstDay = Math.floor(now / DAY_MS) * DAY_MS - 6 * DAY_MS;
  const days = Array.from({ length: 7 }, (_, i) => new Date(firstDay + i * DAY_MS).toISOString().slice(0, 10));
  const allocations = await deps.db.allocation.findMany({
    where: { createdAt: { lt: new Date(now) }, OR: [{ releasedAt: null }, { releasedAt: { gt: new Date(firstDay) } }] },
    include: { user: true },
  });
  const perUser = new Map<string, { hours: number[]; utilSum: number; utilCount: number }>();
  const weekSamples = await deps.db.gpuSample.findMany({ where: { at: { gte: new Date(firstDay) }, utilization: { not: null } } });
  const byGpu = new Map<string, { at: number; u: number }[]>();
  for (const s of weekSamples)
    (byGpu.get(`${s.hostName}:${s.gpuIndex}`) ?? byGpu.set(`${s.hostName}:${s.gpuIndex}`, []).get(`${s.hostName}:${s.gpuIndex}`)!).push({ at: s.at.getTime(), u: s.utilization! });
  for (const a of allocations) {
    const gpus = parseIndexes(a.gpuIndexes);
    const start = Math.max(a.createdAt.getTime(), firstDay);
    const end = Math.min(a.state === 'active' ? now : (a.releasedAt?.getTime() ?? now), now);
    if (end <= start || gpus.length === 0) continue;
    const u = perUser.get(a.user.handle) ?? perUser.set(a.user.handle, { hours: days.map(() => 0), utilSum: 0, utilCount: 0 }).get(a.user.handle)!;
    for (let t = start; t < end;) {
      const next = Math.min(end, (Math.floor(t / DAY_MS) + 1) * DAY_MS);
      u.hours[Math.floor((t - firstDay) / DAY_MS)]! += ((next - t) * gpus.length) / HOUR_MS;
      t = next;
    }
    for (const g of gpus)
      for (const m of byGpu.get(`${a.hostName}:${g}`) ?? [])
        if (m.at >= Math.floor(start / 60_000) * 60_000 && m.at < end) {
          u.utilSum += m.u;
          u.utilCount++;
        }
  }
  const users = [...perUser.keys()].sort();
  return {
    sparklines,
    days,
    gpuHours: users.map((user) => ({ user, hours: perUser.get(user)!.hours.map((h) => Math.round(h * 100) / 100) })),
    efficiency: users
      .filter((user) => viewer?.isAdmin || user === viewer?.handle)
      .map((user) => {
        const u = perUser.get(user)!;
        return { user, utilization: u.utilCount ? Math.round((u.utilSum / u.utilCount) * 10) / 10 : null };
      }),
  };
}
