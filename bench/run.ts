/** npm run bench [-- one|two|slack|live|memory|slurm|gateway|dashboard]: the benchmarks in one run; figures go to docs/BENCHMARKS.md. */
const only = process.argv[2];
const report = (line: string) => process.stdout.write(`${line}\n`);
report(`gpubot benchmarks (${new Date().toISOString()}, node ${process.version} ${process.execArgv.filter((a) => a.startsWith('--max')).join(' ')})`);
if (!only || only === 'one') {
  report('\n## Engine I: status and Docker over SSH');
  await (await import('./engine-one.js')).benchEngineOne(report);
}
if (!only || only === 'two') {
  report('\n## Engine II: allocation and launch');
  await (await import('./engine-two.js')).benchEngineTwo(report);
}
if (!only || only === 'slack') {
  report('\n## Slack adapter');
  await (await import('./slack.js')).benchSlack(report);
}
if (!only || only === 'live') {
  report('\n## Live feed');
  const live = await import('./live.js');
  await live.benchLive(report);
  await live.benchExitNotice(report);
}
if (!only || only === 'memory') {
  report('\n## Memory');
  await (await import('./memory.js')).benchMemory(report);
}
if (!only || only === 'slurm') {
  report('\n## Slurm backend');
  await (await import('./slurm.js')).benchSlurm(report);
}
if (!only || only === 'gateway') {
  report('\n## SSH gateway');
  await (await import('./gateway.js')).benchGateway(report);
}
if (!only || only === 'dashboard') {
  report('\n## Dashboard');
  await (await import('./dashboard.js')).benchDashboard(report);
}
