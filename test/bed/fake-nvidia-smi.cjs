#!/usr/bin/env node
// Fake nvidia-smi for the gpubot test bed. The bed copies this file to <hostdir>/bin/nvidia-smi.cjs
// (bin/nvidia-smi is a sh wrapper that serves gpubot's two queries pre-rendered) and the GPU state lives in
// <hostdir>/gpus.json, which tests rewrite at will:
//   { "gpus": [{ "index": 0, "uuid": "GPU-...", "name": "...", "memoryUsedMiB": 0, "memoryTotalMiB": 81920,
//                "utilization": 0, "temperature": 35 }],
//     "processes": [{ "gpuIndex": 0, "pid": 1234, "name": "python", "usedMemoryMiB": 1000 }],
//     "fail": null }
// Output mimics the real tool: ", " separators, one line per GPU / process, "[N/A]" printed as is.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const DRIVER_GONE = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. " + 'Make sure that the latest NVIDIA driver is installed and running.';

const statePath = process.env.GPUBOT_FAKE_GPU_STATE || path.join(__dirname, '..', 'gpus.json');

function out(text) {
  process.stdout.write(text);
}

function die(code, text) {
  if (text) out(text.endsWith('\n') ? text : text + '\n');
  process.exitCode = code;
}

let state;
try {
  state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
} catch (e) {
  die(9, DRIVER_GONE);
  return;
}
if (typeof state.fail === 'string') {
  die(9, DRIVER_GONE);
  return;
}
const gpus = Array.isArray(state.gpus) ? state.gpus : [];
const processes = Array.isArray(state.processes) ? state.processes : [];

const num = (v, unit, units) => {
  if (typeof v === 'string') return v; // "[N/A]", "[Not Supported]", ...
  if (v === null || v === undefined) return '[N/A]';
  return units && unit ? `${v} ${unit}` : String(v);
};

// field name (and aliases) -> [header, unit, getter(gpu, units)]
const gpuFields = {
  index: ['index', '', (g) => String(g.index)],
  count: ['count', '', () => String(gpus.length)],
  uuid: ['uuid', '', (g) => g.uuid],
  gpu_uuid: ['uuid', '', (g) => g.uuid],
  name: ['name', '', (g) => g.name],
  gpu_name: ['name', '', (g) => g.name],
  'memory.used': ['memory.used [MiB]', 'MiB', (g, u) => num(g.memoryUsedMiB, 'MiB', u)],
  'memory.total': ['memory.total [MiB]', 'MiB', (g, u) => num(g.memoryTotalMiB, 'MiB', u)],
  'memory.free': [
    'memory.free [MiB]',
    'MiB',
    (g, u) => (typeof g.memoryUsedMiB === 'number' && typeof g.memoryTotalMiB === 'number' ? num(g.memoryTotalMiB - g.memoryUsedMiB, 'MiB', u) : '[N/A]'),
  ],
  'utilization.gpu': ['utilization.gpu [%]', '%', (g, u) => num(g.utilization, '%', u)],
  'temperature.gpu': ['temperature.gpu', '', (g) => num(g.temperature, '', false)],
};

const gpuOf = (p) => gpus.find((g) => g.index === p.gpuIndex);
const appFields = {
  gpu_uuid: ['gpu_uuid', '', (p) => (gpuOf(p) ? gpuOf(p).uuid : '[N/A]')],
  gpu_name: ['gpu_name', '', (p) => (gpuOf(p) ? gpuOf(p).name : '[N/A]')],
  pid: ['pid', '', (p) => String(p.pid)],
  process_name: ['process_name', '', (p) => p.name],
  name: ['process_name', '', (p) => p.name],
  used_memory: ['used_gpu_memory [MiB]', 'MiB', (p, u) => num(p.usedMemoryMiB, 'MiB', u)],
  used_gpu_memory: ['used_gpu_memory [MiB]', 'MiB', (p, u) => num(p.usedMemoryMiB, 'MiB', u)],
};

const args = process.argv.slice(2);
let queryGpu = null;
let queryApps = null;
let format = null;
let listGpus = false;
for (const a of args) {
  if (a.startsWith('--query-gpu=')) queryGpu = a.slice('--query-gpu='.length);
  else if (a.startsWith('--query-compute-apps=')) queryApps = a.slice('--query-compute-apps='.length);
  else if (a.startsWith('--format=')) format = a.slice('--format='.length);
  else if (a === '-L' || a === '--list-gpus') listGpus = true;
  else {
    die(2, `Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.`);
    return;
  }
}

function query(spec, table, rows) {
  const opts = (format || '').split(',').map((s) => s.trim());
  if (!opts.includes('csv')) {
    die(2, `'--format' argument is required when using '--query-*' options (csv is the only format).`);
    return;
  }
  const header = !opts.includes('noheader');
  const units = !opts.includes('nounits');
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const n of names) {
    if (!Object.prototype.hasOwnProperty.call(table, n)) {
      die(2, `Field "${n}" is not a valid field to query.`);
      return;
    }
  }
  let text = '';
  if (header) {
    // The real tool keeps the unit in the header even with nounits.
    text += names.map((n) => table[n][0]).join(', ') + '\n';
  }
  for (const r of rows) text += names.map((n) => table[n][2](r, units)).join(', ') + '\n';
  out(text);
}

if (queryGpu !== null) {
  query(queryGpu, gpuFields, gpus);
} else if (queryApps !== null) {
  // The real tool lists processes GPU by GPU.
  const rows = [];
  for (const g of gpus) for (const p of processes) if (p.gpuIndex === g.index) rows.push(p);
  for (const p of processes) if (!gpuOf(p)) rows.push(p);
  query(queryApps, appFields, rows);
} else if (listGpus) {
  out(gpus.map((g) => `GPU ${g.index}: ${g.name} (UUID: ${g.uuid})\n`).join(''));
} else if (args.length === 0) {
  // Not the real table, just enough for a human poking at a host.
  let text = 'Fake NVIDIA-SMI (gpubot test bed)\n';
  for (const g of gpus) {
    text += `GPU ${g.index}  ${g.name}  ${num(g.memoryUsedMiB, 'MiB', true)} / ${num(g.memoryTotalMiB, 'MiB', true)}  ${num(g.utilization, '%', true)}  ${num(g.temperature, 'C', true)}\n`;
  }
  for (const p of processes) text += `  GPU ${p.gpuIndex}  pid ${p.pid}  ${p.name}  ${p.usedMemoryMiB}MiB\n`;
  out(text);
} else {
  die(2, `Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.`);
}
