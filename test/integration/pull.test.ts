// `run` with an image the host does not have: the product pulls it (src/hosts/images.ts), reporting
// progress, from a real Registry v2 served by test/support/registry.ts inside h1's network namespace.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import type { Reply } from '../../src/core/reply.js';
import { startBed, type Bed } from '../bed/testbed.js';
import { appFor } from '../support/app.js';
import { startRegistryFor, type Registry } from '../support/registry.js';

const textOf = (r: Reply): string => [r.title, ...r.blocks.map((b) => ('text' in b ? b.text : JSON.stringify(b)))].join('\n');

describe('run pulls a missing image from a registry', () => {
  let bed: Bed;
  let app: App;
  let registry: Registry;

  beforeAll(async () => {
    bed = await startBed({ hosts: 1 });
    // 50 ms per 64 KiB of a ~5 MiB layer: the download takes > 4 s, so pullImage's one-line-per-2-s
    // throttle lets at least one "N %" line through.
    registry = await startRegistryFor(bed, 'h1', [{ name: 'gpubot-test/pulled', tag: '1' }], { delayMs: 50 });
    app = await appFor(bed, { images: { default: 'pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime', allowed: ['pytorch/pytorch:*', 'gpubot-test/*', '127.0.0.1:*'] } });
  });
  afterAll(async () => {
    await registry?.stop();
    await app?.close();
    await bed?.teardown();
  });

  // First, while nothing is held: the lease count must come back to exactly 0.
  it.each([
    ['an unknown repository', 'gpubot-test/missing', '1', 'nope1'],
    ['an unknown tag', 'gpubot-test/pulled', 'nope', 'nope2'],
  ])('answers %s (404) with an error that names the image, holding nothing', async (_what, name, tag, container) => {
    const ref = registry.ref(name, tag);
    const before = registry.requests();
    const lines: string[] = [];
    const reply = await app.engine.handleText(await app.actor('alice'), `run --image ${ref} --name ${container}`, (line) => void lines.push(line));
    const text = textOf(reply);
    expect(reply.tone, text).toBe('error');
    expect(reply.title).toBe(`Could not start ${container}`);
    // dockerd's message names the repository always, and the tag only when the repository exists.
    expect(text).toContain(`${registry.address}/${name}`);
    if (name === 'gpubot-test/pulled') expect(text).toContain(ref);
    expect(text).toContain('Nothing is held');
    expect(lines).toContain(`${ref} is not on h1 yet: pulling it`);
    expect(lines.some((l) => l.startsWith(`pulled ${ref}`))).toBe(false);
    expect(
      registry
        .log()
        .slice(before)
        .some((r) => r.path.includes(`/v2/${name}/manifests/${tag}`) && r.status === 404),
    ).toBe(true);

    expect(await app.db.gpuLease.count()).toBe(0);
    expect((await bed.dockerCli('h1', ['ps', '-aq'])).stdout.trim()).toBe('');
    expect((await bed.dockerCli('h1', ['image', 'inspect', ref])).code).not.toBe(0);
  });

  it('pulls the image with progress, then runs the container from it', async () => {
    const ref = registry.ref('gpubot-test/pulled', '1');
    const image = registry.images[0]!;
    expect((await bed.dockerCli('h1', ['image', 'inspect', ref])).code).not.toBe(0);
    const before = registry.requests();

    const lines: string[] = [];
    const started = Date.now();
    const reply = await app.engine.handleText(await app.actor('alice'), `run --image ${ref} --name pulled`, (line) => void lines.push(line));
    const ms = Date.now() - started;
    expect(reply.tone, `${textOf(reply)}\n${lines.join('\n')}`).toBe('success');
    expect(reply.title).toBe('pulled is running on h1 with GPU 0');

    expect(lines).toContain(`${ref} is not on h1 yet: pulling it`);
    const escaped = ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const percent = lines.filter((l) => new RegExp(`^pulling ${escaped}: \\d+ % of \\d+ MiB$`).test(l));
    expect(percent.length, lines.join('\n')).toBeGreaterThanOrEqual(1);
    expect(lines).toContain(`pulled ${ref} on h1`);
    expect(lines.indexOf(`pulled ${ref} on h1`)).toBeGreaterThan(lines.indexOf(percent[0]!));
    expect(ms).toBeGreaterThan(2_000); // the throttle did its job

    // The registry really served it: manifest, config and layer blobs.
    expect(registry.requests()).toBeGreaterThan(before);
    const served = registry.log().slice(before);
    expect(served).toContainEqual({ method: 'GET', path: `/v2/gpubot-test/pulled/blobs/${image.configDigest}`, status: 200 });
    expect(served).toContainEqual({ method: 'GET', path: `/v2/gpubot-test/pulled/blobs/${image.layerDigest}`, status: 200 });

    const inspected = await bed.dockerCli('h1', ['image', 'inspect', ref]);
    expect(inspected.code, inspected.stderr).toBe(0);
    const img = JSON.parse(inspected.stdout)[0];
    expect(img.Id).toBe(image.configDigest);
    expect(img.RootFS.Layers).toEqual([image.diffId]);
    expect(img.RepoDigests).toContain(`${registry.address}/gpubot-test/pulled@${image.manifestDigest}`);
    expect(img.Config.Cmd).toEqual(['sleep', 'infinity']);

    const c = await bed.dockerCli('h1', ['inspect', 'pulled']);
    expect(c.code, c.stderr).toBe(0);
    const container = JSON.parse(c.stdout)[0];
    expect(container.State.Running).toBe(true);
    expect(container.Config.Image).toBe(ref);
    const padding = await bed.dockerCli('h1', ['exec', 'pulled', 'stat', '-c', '%s', '/padding.bin']);
    expect(padding.stdout.trim(), padding.stderr).toBe(String(4 * 1024 * 1024));
    expect(await app.db.gpuLease.count()).toBe(1);
  }, 60_000);
});
