import type Docker from 'dockerode';
import type { ProgressSink } from '../core/reply.js';

interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
}

export async function hasImage(docker: Docker, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** Pulls an image, reporting progress at most every `everyMs` (chat messages are edited, not spammed). */
export async function pullImage(docker: Docker, image: string, progress: ProgressSink, everyMs = 2000): Promise<void> {
  const stream = await docker.pull(image);
  const layers = new Map<string, { current: number; total: number }>();
  let last = 0;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, events: PullEvent[]) => {
        const failed = events?.find((e) => e.error);
        if (err || failed) reject(new Error(`pulling ${image} failed: ${err?.message ?? failed?.error}`));
        else resolve();
      },
      (event: PullEvent) => {
        if (event.id && event.progressDetail?.total) layers.set(event.id, { current: event.progressDetail.current ?? 0, total: event.progressDetail.total });
        const now = Date.now();
        if (now - last < everyMs) return;
        last = now;
        const current = [...layers.values()].reduce((n, l) => n + l.current, 0);
        const total = [...layers.values()].reduce((n, l) => n + l.total, 0);
        void progress(total ? `pulling ${image}: ${Math.round((100 * current) / total)} % of ${(total / 1024 ** 2).toFixed(0)} MiB` : `pulling ${image}: ${event.status ?? 'working'}`);
      },
    );
  });
}
