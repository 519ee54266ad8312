import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { App } from '../app.js';
import { errorMessage } from '../util/errors.js';
import { Dashboard } from './dashboard.js';

/** How long /healthz waits for the database's answer. */
const HEALTH_DB_TIMEOUT_MS = 3_000;

const label = (s: string): string => s.replace(/[\\"\n]/g, '_');

/** Prometheus text for the hosts' GPUs, holders, the queue, allocations and commands. */
export async function metricsText(app: App): Promise<string> {
  const snapshots = await app.cluster.snapshot();
  const [queue, allocations] = await Promise.all([app.db.queuedRun.count({ where: { state: 'waiting' } }), app.db.allocation.count({ where: { state: 'active' } })]);
  const out: string[] = [];
  const metric = (name: string, help: string, type: string, rows: [string, number | null][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of rows) if (value !== null) out.push(`${name}{${labels}} ${value}`);
  };
  const gpus = snapshots.flatMap((s) => (s.gpus ?? []).map((g) => ({ host: s.name, g })));
  const gl = (host: string, index: number, model: string) => `host="${label(host)}",gpu="${index}",model="${label(model)}"`;
  metric(
    'gpubot_host_up',
    '1 when the host answers over SSH.',
    'gauge',
    snapshots.map((s) => [`host="${label(s.name)}"`, s.state === 'up' ? 1 : 0]),
  );
  metric(
    'gpubot_gpu_utilization_percent',
    'GPU utilization from nvidia-smi (absent when unknown).',
    'gauge',
    gpus.map(({ host, g }) => [gl(host, g.index, g.model), g.utilization]),
  );
  metric(
    'gpubot_gpu_memory_used_mib',
    'GPU memory in use.',
    'gauge',
    gpus.map(({ host, g }) => [gl(host, g.index, g.model), g.memoryUsedMiB]),
  );
  metric(
    'gpubot_gpu_memory_total_mib',
    'GPU memory in all.',
    'gauge',
    gpus.map(({ host, g }) => [gl(host, g.index, g.model), g.memoryTotalMiB]),
  );
  metric(
    'gpubot_gpu_holders',
    'Holders of the GPU (containers or reservations).',
    'gauge',
    gpus.map(({ host, g }) => [gl(host, g.index, g.model), g.holders.length]),
  );
  metric(
    'gpubot_gpu_unmanaged_processes',
    'Processes on the GPU that gpubot did not start.',
    'gauge',
    gpus.map(({ host, g }) => [gl(host, g.index, g.model), g.unmanaged.length]),
  );
  out.push('# HELP gpubot_queue_length Runs waiting for GPUs.', '# TYPE gpubot_queue_length gauge', `gpubot_queue_length ${queue}`);
  out.push(
    '# HELP gpubot_allocations_active Active allocations (containers and reservations).',
    '# TYPE gpubot_allocations_active gauge',
    `gpubot_allocations_active ${allocations}`,
  );
  out.push(...app.metrics.lines());
  return `${out.join('\n')}\n`;
}

/** With http.metricsToken set, /metrics wants "Authorization: Bearer TOKEN" (compared in constant time). */
function metricsAllowed(app: App, req: IncomingMessage): boolean {
  const token = app.options.config.http?.metricsToken;
  if (!token) return true;
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

/** The side port: /healthz (database reachable; each host's connection), /metrics and the read-only /dashboard. */
export function startOpsServer(app: App, port: number, host = '127.0.0.1'): Promise<Server> {
  const dashboard = new Dashboard(app);
  const server = createServer((req, res) => {
    void (async () => {
      try {
        if (await dashboard.handle(req, res)) return;
        if (req.url === '/healthz') {
          let database = 'ok';
          try {
            // A database that hangs must not hang the probe.
            await Promise.race([
              app.db.$queryRawUnsafe('SELECT 1'),
              new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer in ${HEALTH_DB_TIMEOUT_MS} ms`)), HEALTH_DB_TIMEOUT_MS).unref()),
            ]);
          } catch (err) {
            database = errorMessage(err);
          }
          const hosts = Object.fromEntries(app.pool.all().map((h) => [h.name, h.connection()]));
          res.writeHead(database === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ ok: database === 'ok', database, hosts }));
        } else if (req.url === '/metrics' && !metricsAllowed(app, req)) {
          res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="gpubot metrics"' });
          res.end('401 Unauthorized: /metrics wants "Authorization: Bearer <http.metricsToken>"\n');
        } else if (req.url === '/metrics') {
          const text = await metricsText(app);
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
          res.end(text);
        } else {
          res.writeHead(404).end();
        }
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(errorMessage(err));
      }
    })();
  });
  // Open event streams would keep close() waiting forever.
  const close = server.close.bind(server);
  server.close = (done) => {
    dashboard.stop();
    return close(done);
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
