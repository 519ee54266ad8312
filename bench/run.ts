/** npm run bench [-- one|two|slack|live|dashboard]: the benchmarks in one run; figures go to docs/BENCHMARKS.md. */
const only = process.argv[2];
const report = (line: string) => process.stdout.write(`${line}\n`);
report(`gpubot benchmarks (${new Date().toISOString()}, node ${process.version})`);
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
  await (await import('./live.js')).benchLive(report);
}
if (!only || only === 'dashboard') {
  report('\n## Dashboard');
  await (await import('./dashboard.js')).benchDashboard(report);
}
