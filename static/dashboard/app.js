// gpubot dashboard: one page, no framework. Every name from the cluster goes in as text
// (textContent), never as HTML: container and process names are chosen by users.
/* global uPlot */
'use strict';
(function () {
  const base = location.pathname.replace(/\/+$/, '');
  let history = null;
  let gpuHoursPlot = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else node.setAttribute(k, String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const pct = (n) => (n === null || n === undefined ? '?' : `${Math.round(n)} %`);
  const gib = (mib) => (mib === null || mib === undefined ? '?' : `${(mib / 1024).toFixed(1)}`);
  const when = (iso) => (iso ? new Date(iso).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : '—');

  function bar(fraction, label, kind) {
    const fill = el('span');
    fill.style.width = `${Math.max(0, Math.min(1, fraction || 0)) * 100}%`;
    return el('div', { class: `bar ${kind}` }, fill, el('em', {}, label));
  }

  function sparkline(points) {
    const w = 90;
    const h = 22;
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('width', w);
    svg.setAttribute('height', h);
    svg.setAttribute('class', 'spark');
    const values = (points || []).filter((p) => p[1] !== null);
    svg.setAttribute('data-points', values.length);
    if (values.length < 2) return svg;
    const t0 = values[0][0];
    const span = Math.max(1, values[values.length - 1][0] - t0);
    const path = document.createElementNS(ns, 'polyline');
    path.setAttribute('points', values.map(([t, u]) => `${(((t - t0) / span) * (w - 2) + 1).toFixed(1)},${(h - 1 - (u / 100) * (h - 2)).toFixed(1)}`).join(' '));
    path.setAttribute('fill', 'none');
    path.setAttribute('stroke', '#2ea44f');
    path.setAttribute('stroke-width', '1.5');
    svg.append(path);
    return svg;
  }

  function holderText(h) {
    if (h.otherGpubot) return `${h.owner} (${h.container}, other gpubot)`;
    return h.container ? `${h.owner} (${h.container})` : `${h.owner} (reserved)`;
  }

  function hostCard(h) {
    const badges = [el('span', { class: `badge ${h.state}` }, h.state), h.drained ? el('span', { class: 'badge drained' }, 'drained') : null];
    const card = el('div', { class: 'host', 'data-host': h.name }, el('h3', {}, el('span', { class: 'name' }, h.name), badges));
    if (h.error) card.append(el('div', { class: 'error' }, h.error));
    if (!h.gpus) {
      card.append(el('div', { class: 'muted' }, h.state === 'up' ? 'GPUs unknown' : 'no GPU sample'));
      return card;
    }
    const rows = h.gpus.map((g) => {
      const key = `${h.name}:${g.index}`;
      const mem = g.memoryTotalMiB ? g.memoryUsedMiB / g.memoryTotalMiB : 0;
      const holders = g.holders.length ? g.holders.map((x) => el('div', { class: 'holder' }, holderText(x))) : [el('span', { class: 'free' }, 'free')];
      const unmanaged = g.unmanaged.map((p) => el('div', { class: 'unmanaged' }, `pid ${p.pid} ${p.name}${p.container ? ` in ${p.container}` : ''}`));
      return el(
        'tr',
        { class: 'gpu', 'data-gpu': key },
        el('td', {}, String(g.index)),
        el('td', { class: 'model' }, g.model),
        el('td', {}, bar(mem, `${gib(g.memoryUsedMiB)}/${gib(g.memoryTotalMiB)} GiB`, 'mem')),
        el('td', {}, bar((g.utilization || 0) / 100, pct(g.utilization), 'util')),
        el('td', { class: 'spark-cell' }, sparkline(history && history.sparklines[key])),
        el('td', { class: 'holders' }, holders),
        el('td', {}, unmanaged),
      );
    });
    card.append(
      el(
        'table',
        {},
        el(
          'thead',
          {},
          el(
            'tr',
            {},
            ['GPU', 'Model', 'Memory', 'Util', 'Last hour', 'Held by', 'Not gpubot'].map((c) => el('th', {}, c)),
          ),
        ),
        el('tbody', {}, rows),
      ),
    );
    return card;
  }

  function table(columns, rows, attrs) {
    if (!rows.length) return el('p', { class: 'muted' }, 'none');
    return el(
      'table',
      attrs || {},
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          columns.map((c) => el('th', {}, c)),
        ),
      ),
      el(
        'tbody',
        {},
        rows.map((r) =>
          el(
            'tr',
            {},
            r.map((c) => el('td', {}, c)),
          ),
        ),
      ),
    );
  }

  let lastState = null;
  function render(state) {
    lastState = state;
    document.getElementById('who').textContent = state.viewer ? `${state.viewer.handle}${state.viewer.isAdmin ? ' (admin)' : ''}` : 'team view';
    document.getElementById('grid').replaceChildren(...state.hosts.map(hostCard));
    document.getElementById('queue').replaceChildren(
      table(
        ['#', 'User', 'GPUs', 'Waiting since'],
        state.queue.map((q) => [q.position, q.user, q.gpus, when(q.since)]),
      ),
    );
    const me = document.getElementById('me');
    me.hidden = !state.me;
    if (state.me) {
      const m = state.me;
      const q = m.quota;
      document.getElementById('me-body').replaceChildren(
        el(
          'div',
          { id: 'quota' },
          bar(q.budget ? q.used / q.budget : 0, `${q.used.toFixed(1)} / ${q.budget} GPU-hours`, 'mem'),
          el('span', { class: 'muted' }, ` this week${q.windowEnds ? ` (until ${when(q.windowEnds)})` : ''}; holding ${q.heldGpus} of at most ${q.maxGpus} GPUs`),
        ),
        el('h3', {}, 'My containers'),
        table(
          ['Name', 'Host', 'GPUs', 'State', 'Ends'],
          m.containers.map((c) => [c.name, c.host, c.gpus, c.state, when(c.endsAt)]),
          { id: 'my-containers' },
        ),
        el('h3', {}, 'My reservations'),
        table(
          ['Id', 'Host', 'GPUs', 'Ends'],
          m.reservations.map((r) => [r.id, r.host, r.gpus, when(r.endsAt)]),
        ),
        el('h3', {}, 'My queued runs'),
        table(
          ['Id', 'Position', 'GPUs', 'GPUs may free up by'],
          m.queue.map((r) => [r.id, r.position, r.gpus, when(r.estimate)]),
        ),
      );
    }
    const admin = document.getElementById('admin');
    admin.hidden = !state.admin;
    if (state.admin) {
      document.getElementById('connections').replaceChildren(
        table(
          ['Host', 'Connection'],
          Object.entries(state.admin.connections).map(([h, c]) => [h, typeof c === 'string' ? c : JSON.stringify(c)]),
        ),
      );
      document.getElementById('audit').replaceChildren(
        table(
          ['At', 'Who', 'Action', 'Target', 'Result', 'Detail'],
          state.admin.audit.map((a) => [when(a.at), a.actor, a.action, a.target || '', a.result, a.detail || '']),
        ),
      );
    }
  }

  function renderHistory(h) {
    history = h;
    if (lastState) render(lastState); // the sparklines live in the grid
    const box = document.getElementById('gpu-hours-chart');
    box.setAttribute('data-series', h.gpuHours.length);
    box.setAttribute('data-total', h.gpuHours.reduce((n, u) => n + u.hours.reduce((a, b) => a + b, 0), 0).toFixed(2));
    if (gpuHoursPlot) gpuHoursPlot.destroy();
    gpuHoursPlot = null;
    box.replaceChildren();
    if (!h.gpuHours.length) {
      box.append(el('p', { class: 'muted' }, 'No GPUs were held in the last 7 days.'));
    } else if (typeof uPlot === 'function') {
      const xs = h.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
      const palette = ['#5b8def', '#2ea44f', '#e36209', '#8250df', '#bf3989', '#1b7c83', '#9a6700', '#cf222e'];
      const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined;
      // Stacked: each user's bar is drawn as the running total up to them, tallest first, so every
      // user's own share shows as its own colour (the legend stays off: its values would be totals).
      const cumulative = [];
      h.gpuHours.forEach((u, i) => cumulative.push(u.hours.map((v, d) => v + (i ? cumulative[i - 1][d] : 0))));
      const order = h.gpuHours.map((_, i) => i).reverse();
      gpuHoursPlot = new uPlot(
        {
          width: Math.min(900, box.clientWidth - 10 || 600),
          height: 220,
          legend: { live: false },
          scales: { x: { time: true } },
          axes: [{}, { label: 'GPU-hours' }],
          series: [{}, ...order.map((i) => ({ label: h.gpuHours[i].user, stroke: palette[i % palette.length], fill: palette[i % palette.length], paths: bars }))],
        },
        [xs, ...order.map((i) => cumulative[i])],
        box,
      );
    }
    document.getElementById('efficiency').replaceChildren(
      el('h3', {}, 'Mean utilization of the GPUs held (7 days)'),
      table(
        ['User', 'Mean utilization'],
        h.efficiency.map((e) => [e.user, e.utilization === null ? 'not measured' : pct(e.utilization)]),
        { id: 'efficiency-table' },
      ),
    );
  }

  function denied(text) {
    const notice = document.getElementById('notice');
    notice.hidden = false;
    notice.textContent = text;
    const live = document.getElementById('live');
    live.className = 'badge off';
    live.textContent = 'closed';
  }

  async function loadHistory() {
    const res = await fetch(`${base}/history`, { cache: 'no-store' });
    if (res.ok) renderHistory(await res.json());
  }

  async function start() {
    const res = await fetch(`${base}/state`, { cache: 'no-store' });
    if (!res.ok) return denied(await res.text());
    render(await res.json());
    performance.mark('gpubot-first-render'); // read by bench/dashboard.ts
    await loadHistory();
    setInterval(() => void loadHistory().catch(() => {}), 60_000);
    const events = new EventSource(`${base}/events`);
    const live = document.getElementById('live');
    events.addEventListener('open', () => {
      live.className = 'badge live';
      live.textContent = 'live';
    });
    events.addEventListener('error', () => {
      live.className = 'badge stale';
      live.textContent = 'reconnecting…';
    });
    events.addEventListener('state', (e) => {
      live.className = 'badge live';
      live.textContent = 'live';
      render(JSON.parse(e.data));
    });
    events.addEventListener('denied', (e) => {
      events.close();
      denied(`This link no longer works: ${JSON.parse(e.data)}`);
    });
  }

  start().catch((err) => denied(`Could not load the dashboard: ${err && err.message ? err.message : err}`));
})();
