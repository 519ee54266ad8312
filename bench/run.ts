import { benchEngineOne } from './engine-one.js';

/** npm run bench: every benchmark in one run; figures go to docs/BENCHMARKS.md by hand. */
const report = (line: string) => process.stdout.write(`${line}\n`);
report(`gpubot benchmarks (${new Date().toISOString()}, node ${process.version})`);
report('\n## Engine I: status and Docker over SSH');
await benchEngineOne(report);

report('\n## Engine II: allocation and launch');
await (await import('./engine-two.js')).benchEngineTwo(report);
