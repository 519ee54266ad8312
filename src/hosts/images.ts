import type Docker from 'dockerode';
import { imageAllowed } from '../core/policy/images.js';
import type { ProgressSink } from '../core/reply.js';
import { withTimeout } from './errors.js';
import type { GpuHost } from './gpu-host.js';
import { errorMessage } from '../util/errors.js';

interface PullEvent {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
}

/** Docker's error text without dockerode's "(HTTP code N) unexpected - " prefix. */
const dockerReason = (err: unknown): string =>
  errorMessage(err)
    .replace(/^\(HTTP code \d+\)\s*[a-z ]*-\s*/i, '')
    .trim();

/**
 * Pulls an image, reporting download progress at most every `everyMs` (chat messages are edited,
 * not spammed). A pull that shows no sign of life for `stallMs` is abandoned.
 */
export async function pullImage(docker: Docker, image: string, progress: ProgressSink, { everyMs = 2000, stallMs = 120_000 } = {}): Promise<void> {
  const report = (text: string) => Promise.resolve(progress(text)).catch(() => {});
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.pull(image);
  } catch (err) {
    throw new Error(`pulling ${image} failed: ${dockerReason(err)}`, { cause: err });
  }
  const layers = new Map<string, { current: number; total: number }>();
  let last = Date.now();
  await new Promise<void>((resolve, reject) => {
    let stall = setTimeout(onStall, stallMs);
    function onStall() {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      reject(new Error(`pulling ${image} failed: no progress for ${Math.round(stallMs / 1000)} s`));
    }
    docker.modem.followProgress(
      stream,
      (err: Error | null, events: PullEvent[]) => {
        clearTimeout(stall);
        const failed = events?.find((e) => e.error);
        if (err || failed) reject(new Error(`pulling ${image} failed: ${err ? dockerReason(err) : failed!.error}`));
        else resolve();
      },
      (event: PullEvent) => {
        clearTimeout(stall);
        stall = setTimeout(onStall, stallMs);
        // Percentages count downloads only; extraction reuses the same layer ids.
        if (event.id && event.status === 'Downloading' && event.progressDetail?.total)
          layers.set(event.id, { current: event.progressDetail.current ?? 0, total: event.progressDetail.total });
        if (event.id && event.status === 'Download complete') {
          const layer = layers.get(event.id);
          if (layer) layer.current = layer.total;
        }
        const now = Date.now();
        if (now - last < everyMs || layers.size === 0) return;
        last = now;
        const current = [...layers.values()].reduce((n, l) => n + l.current, 0);
        const total = [...layers.values()].reduce((n, l) => n + l.total, 0);
        void report(`pulling ${image}: ${Math.round((100 * current) / total)} % of ${(total / 1024 ** 2).toFixed(0)} MiB`);
      },
    );
  });
}

/** The default image and every allowed tag present on the hosts that answer within budgetMs. */
export async function allowedImagesOnHosts(hosts: GpuHost[], images: { default: string; allowed: string[] }, budgetMs: number): Promise<string[]> {
  const found = new Set([images.default]);
  await Promise.all(
    hosts.map(async (h) => {
      if (h.connection().state !== 'up') return;
      const list = await withTimeout(h.runtime.listImages(), budgetMs, 'listing images').catch(() => []);
      for (const image of list) for (const tag of image.tags) if (imageAllowed(tag, images.allowed)) found.add(tag);
    }),
  );
  return [...found];
}
