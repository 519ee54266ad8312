// By hand, what the deployment tests do (see README.md beside this file):
//   npx tsx test/deploy/cli.ts bases     # make (or find in the cache) the node:20 base rootfs tarballs
//   npx tsx test/deploy/cli.ts up        # a dockerd with the base images loaded; prints how to use it; Ctrl-C stops it
import { CACHE_DIR, baseTarballs, loadBaseImages, missingForImageTests, startDockerd } from './docker-env.js';

const log = (msg: string) => console.error(`[deploy] ${msg}`);

async function main(cmd: string | undefined): Promise<number> {
  const missing = await missingForImageTests();
  if (missing.length > 0) {
    log(`this machine lacks ${missing.join(', ')}`);
    return 1;
  }
  if (cmd === 'bases') {
    for (const t of await baseTarballs(log)) console.log(`${t.image}\t${t.tar}\t${t.cached ? 'cached' : `made in ${t.seconds.toFixed(1)} s`}`);
    return 0;
  }
  if (cmd === 'up') {
    const d = await startDockerd();
    try {
      await loadBaseImages(d, log);
    } catch (err) {
      await d.stop();
      throw err;
    }
    console.log(
      [
        `dockerd ${d.pid} on ${d.socket} (base dir ${d.baseDir}); in another shell:`,
        `  export DOCKER_HOST=unix://${d.socket} DOCKER_BUILDKIT=0 DOCKER_CONFIG=${d.env.DOCKER_CONFIG}`,
        '  docker build --network host -t gpubot:local .',
        '  docker run --rm --network none gpubot:local help',
        '  docker run --rm --network none -e DATABASE_URL=file:/app/data/x.db gpubot:local migrate',
        'Ctrl-C stops the daemon and removes its base dir (images and all).',
      ].join('\n'),
    );
    // A pending promise alone does not keep node running: the interval does.
    const keepAlive = setInterval(() => undefined, 60_000);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    clearInterval(keepAlive);
    log('stopping dockerd');
    await d.stop();
    return 0;
  }
  console.error(`usage: cli.ts bases | up   (base rootfs cache: ${CACHE_DIR})`);
  return 2;
}

main(process.argv[2]).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
