// Phalanx admin page: polls the admin API every 2 s and draws queues, pending and running jobs
// and recent evictions. Plain ES2020, no dependencies. Every string from the server goes into the
// page as text (textContent / attributes), never as HTML: job names and messages come from users.
'use strict';

const POLL_MS = 2000;
const TIMEOUT_MS = 8000;
const TOKEN_KEY = 'phalanx.token';

const S = {
  token: sessionStorage.getItem(TOKEN_KEY) || null,
  filter: '',
  queues: null, // [] once loaded
  configurationError: null,
  pending: null,
  running: null,
  events: null,
  lastOk: null, // Date of the last complete update
  failure: null, // {message} while the server cannot be reached or answers errors
  auth: null, // {status, message} while the API refuses us (401/403)
  who: null, // whoami answer
  skewMs: 0, // server clock minus ours, from the Date header
  timer: null,
  inFlight: false,
  again: false,
  open: new Set(), // messages shown in full
};

// ---------- DOM helpers ----------

const $ = (sel) => document.querySelector(sel);

/** Builds an element. Children that are strings become text nodes (never parsed as HTML). */
function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') Object.assign(el.style, v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const muted = (text, props) => h('span', { class: 'muted', ...props }, text);

/** Sets an element's text only when it changes: live regions announce every change. */
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// ---------- formatting ----------

const BYTES = new Set(['memory', 'ephemeral-storage', 'storage']);
const isBytes = (r) => BYTES.has(r) || r.startsWith('hugepages-');

function trimNum(x, digits) {
  return x.toFixed(digits).replace(/\.?0+$/, '');
}

/** A resource quantity for humans: cpu in cores (or m below one core), bytes in Ki..Pi. */
function qty(res, v) {
  if (v == null) return '—';
  if (res === 'cpu') {
    if (v % 1000 === 0) return String(v / 1000);
    if (Math.abs(v) < 1000) return `${v}m`;
    return trimNum(v / 1000, v < 10000 ? 2 : 1);
  }
  if (isBytes(res)) {
    if (v === 0) return '0';
    const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
    let i = 0;
    let x = v;
    while (Math.abs(x) >= 1024 && i < units.length - 1) {
      x /= 1024;
      i += 1;
    }
    return trimNum(x, Math.abs(x) < 10 ? 2 : 1) + units[i];
  }
  return v.toLocaleString('en-US');
}

/** The short name shown for a resource (full name on hover). */
function resLabel(res) {
  if (res === 'ephemeral-storage') return 'disk';
  return res.includes('/') ? res.slice(res.lastIndexOf('/') + 1) : res;
}

/** A quantity with what it counts: "4 cores", "500m cpu", "32Gi", "2 gpu". */
function qtyUnit(res, v) {
  const q = qty(res, v);
  if (res === 'cpu') {
    if (q.endsWith('m')) return `${q} cpu`;
    return `${q} ${v === 1000 ? 'core' : 'cores'}`;
  }
  if (res === 'memory') return q;
  return `${q} ${resLabel(res)}`;
}

const RES_ORDER = (r) => {
  if (r === 'cpu') return 0;
  if (r === 'memory') return 1;
  if (r.includes('gpu')) return 2;
  if (r === 'pods') return 5;
  if (r === 'ephemeral-storage') return 4;
  return 3;
};
const sortRes = (list) =>
  list.sort((a, b) => RES_ORDER(a) - RES_ORDER(b) || a.localeCompare(b));

/** Seconds as "42s", "4m12s", "2h05m", "3d4h". */
function dur(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hr / 24)}d${hr % 24}h`;
}

/** A coarser duration for "in 12m" / "3m ago". */
function durShort(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hr / 24)}d${hr % 24}h`;
}

const serverNow = () => Date.now() + S.skewMs;

const TIME_FMT = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const DATE_FMT = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});

/** Local clock time; with the date when it is not today. */
function clock(d) {
  const today = new Date(serverNow());
  return d.toDateString() === today.toDateString() ? TIME_FMT.format(d) : DATE_FMT.format(d);
}

function parseTime(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "in 12m" / "3m ago" / "now". */
function relative(d) {
  const s = (d.getTime() - serverNow()) / 1000;
  if (Math.abs(s) < 1.5) return 'now';
  return s > 0 ? `in ${durShort(s)}` : `${durShort(-s)} ago`;
}

/** "3m ago", "just now". */
function ago(d) {
  const r = relative(d);
  return r === 'now' ? 'just now' : r;
}

const shortQueue = (path) => (path && path.startsWith('root.') ? path.slice(5) : path || '—');

// ---------- the API ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const headers = { Accept: 'application/json' };
  if (S.token) headers.Authorization = `Bearer ${S.token}`;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  let r;
  try {
    r = await fetch(path, { headers, signal: ctl.signal, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new ApiError(0, ctl.signal.aborted ? 'no answer in 8 s' : 'the scheduler cannot be reached');
  } finally {
    clearTimeout(timer);
  }
  const date = Date.parse(r.headers.get('Date') || '');
  // The server's clock, for "in 12m" and "3m ago" (the header has whole seconds: only a real
  // difference counts).
  if (!Number.isNaN(date) && Math.abs(date - Date.now() - S.skewMs) > 1500) S.skewMs = date - Date.now();
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  if (!r.ok) {
    // A Kubernetes Status ({message, reason, code}); `error` from older schedulers.
    const said = body && (typeof body.message === 'string' ? body.message : body.error);
    const msg = typeof said === 'string' ? said : r.statusText || 'error';
    throw new ApiError(r.status, `${r.status}: ${msg}`);
  }
  if (body == null) throw new ApiError(r.status, 'the answer is not JSON');
  return body;
}

async function poll() {
  clearTimeout(S.timer);
  if (S.inFlight) {
    S.again = true; // e.g. a new token: ask again as soon as this round is back
    return;
  }
  S.inFlight = true;
  S.again = false;
  try {
    const [q, p, r, e] = await Promise.all([
      api('/api/v1/queues'),
      api('/api/v1/jobs?state=pending'),
      api('/api/v1/jobs?state=running'),
      api('/api/v1/events?limit=50'),
    ]);
    S.queues = Array.isArray(q.queues) ? q.queues : [];
    S.configurationError = q.configurationError ?? null;
    S.pending = Array.isArray(p.jobs) ? p.jobs : [];
    S.running = Array.isArray(r.jobs) ? r.jobs : [];
    S.events = Array.isArray(e.events) ? e.events : [];
    S.lastOk = new Date();
    S.failure = null;
    S.auth = null;
    if (!S.who) S.who = await api('/api/v1/whoami').catch(() => null);
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      S.auth = { status: err.status, message: err.message };
      S.failure = null;
      S.who = null;
    } else {
      S.failure = { message: err.message };
    }
  } finally {
    S.inFlight = false;
  }
  render();
  if (S.again) poll();
  else if (!document.hidden) S.timer = setTimeout(poll, POLL_MS);
}

// ---------- rendering ----------

function render() {
  const focusKey = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.focusKey : null;
  renderHeader();
  renderQueues();
  renderFilter();
  renderPending();
  renderRunning();
  renderEvents();
  if (focusKey) {
    const el = document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (el) el.focus();
  }
}

function renderHeader() {
  const live = $('#live');
  const text = $('#live-text');
  let state;
  if (S.auth) state = 'auth';
  else if (S.failure) state = S.lastOk ? 'stale' : 'down';
  else if (S.lastOk) state = 'live';
  else state = 'loading';
  live.dataset.state = state;
  setText(text, {
    auth: 'sign-in needed', stale: 'stale', down: 'unreachable', live: 'live', loading: 'connecting…',
  }[state]);
  document.body.classList.toggle('stale', state === 'stale' || (state === 'auth' && !!S.lastOk));

  const summary = $('#summary');
  if (S.queues) {
    summary.replaceChildren(
      h('span', { id: 'sum-queues' }, `${S.queues.length} ${S.queues.length === 1 ? 'queue' : 'queues'}`),
      ' · ',
      h('span', { id: 'sum-pending' }, `${S.pending.length} pending`),
      ' · ',
      h('span', { id: 'sum-running' }, `${S.running.length} running`),
      ' · ',
      h('span', { id: 'updated', title: S.lastOk.toISOString() }, `updated ${TIME_FMT.format(S.lastOk)}`),
    );
    document.title = `${S.pending.length ? `(${S.pending.length} pending) ` : ''}Phalanx queues`;
  } else {
    summary.textContent = '';
  }

  const offline = $('#offline');
  offline.hidden = !S.failure;
  if (S.failure) {
    const says = `Cannot update: ${S.failure.message}. ${S.lastOk
      ? `Showing the data of ${TIME_FMT.format(S.lastOk)}, greyed out;` : 'No data yet;'} retrying every ${POLL_MS / 1000} s.`;
    if (offline.textContent !== says) {
      offline.replaceChildren(h('strong', null, 'Cannot update: '), says.slice('Cannot update: '.length));
    }
  }

  const cfg = $('#config-error');
  cfg.hidden = S.configurationError == null;
  setText($('#config-error-text'), S.configurationError ?? '');

  const auth = $('#auth');
  auth.hidden = !S.auth;
  if (S.auth) {
    const msg = S.auth.status === 401
      ? (S.token
        ? 'The scheduler refused this token (expired or not valid for this cluster). Paste another one.'
        : 'The scheduler asks who you are: paste a Kubernetes bearer token to read queues and jobs.')
      : 'This token is valid but its user may not read queues here (it needs get and list on queues.scheduling.volcano.sh). Paste a token of a user who may.';
    const am = $('#auth-message');
    if (am.textContent !== `${msg} (${S.auth.message})`) {
      am.replaceChildren(msg, ' ', muted(`(${S.auth.message})`, { id: 'auth-detail' }));
    }
  }

  const who = $('#whoami');
  if (S.who) {
    const on = S.who.auth ?? S.who.authentication;
    if (on === false) who.replaceChildren(muted('authentication off', { title: 'Anyone who reaches this port reads every queue and job' }));
    else if (S.who.user) who.replaceChildren('signed in as ', h('strong', { id: 'user' }, S.who.user));
    else who.replaceChildren();
  } else {
    who.replaceChildren();
  }
  $('#signout').hidden = !S.token;
}

function depthMap(queues) {
  const byName = new Map(queues.map((q) => [q.name, q]));
  const depth = new Map();
  const get = (q, seen = 0) => {
    if (depth.has(q.name)) return depth.get(q.name);
    const p = q.parent != null ? byName.get(q.parent) : null;
    const d = p && seen < 64 ? get(p, seen + 1) + 1 : (q.parent == null ? 0 : q.name.split('.').length - 1);
    depth.set(q.name, d);
    return d;
  };
  queues.forEach((q) => get(q));
  return depth;
}

function queueResources(q) {
  const keys = new Set();
  for (const m of [q.capability, q.allocated, q.pending, q.deserved, q.guarantee]) {
    if (m) Object.keys(m).forEach((k) => keys.add(k));
  }
  // A resource nobody asks for nor limits is noise; so is the pod count, unless it is limited.
  return sortRes([...keys].filter((k) => (k !== 'pods' || (q.capability && q.capability.pods != null))
    && [q.capability, q.allocated, q.pending, q.deserved, q.guarantee].some((m) => m && m[k] > 0)));
}

function pct(x) {
  return `${Math.max(0, Math.min(100, x * 100)).toFixed(2)}%`;
}

/**
 * What each queue's bar of each resource is drawn against: its capability; without one, its
 * parent's scale (so an unlimited queue reads as a share of what its parent may use); for the root,
 * its deserved share, which is the whole cluster.
 */
function scales(queues) {
  const out = new Map();
  for (const q of queues) {
    const parent = q.parent != null ? out.get(q.parent) : null;
    const m = new Map();
    for (const res of queueResources(q)) {
      const cap = q.capability && q.capability[res] != null ? q.capability[res] : null;
      let scale = cap != null && cap > 0 ? cap : null;
      if (scale == null && parent && parent.get(res) > 0) scale = parent.get(res);
      if (scale == null && q.parent == null && q.deserved && q.deserved[res] > 0) scale = q.deserved[res];
      if (scale == null) {
        const v = (k) => (q[k] && q[k][res]) || 0;
        scale = Math.max(v('allocated') + v('pending'), v('deserved'), v('guarantee'), 1);
      }
      m.set(res, scale);
    }
    out.set(q.name, m);
  }
  return out;
}

function resourceBar(q, res, scale) {
  const get = (m) => (m && m[res] != null ? m[res] : 0);
  const alloc = get(q.allocated);
  const pend = get(q.pending);
  const deserved = q.deserved && q.deserved[res] != null ? q.deserved[res] : null;
  const guarantee = q.guarantee && q.guarantee[res] ? q.guarantee[res] : null;
  const cap = q.capability && q.capability[res] != null ? q.capability[res] : null;
  // The root has no capability: its deserved share is the cluster.
  const cluster = q.parent == null && cap == null && deserved != null && deserved > 0 ? deserved : null;

  const within = deserved != null ? Math.min(alloc, deserved) : alloc;
  const over = alloc - within;
  const bar = h('div', { class: 'bar' });
  bar.append(h('span', { class: 'seg alloc', style: { width: pct(within / scale) } }));
  if (over > 0) bar.append(h('span', { class: 'seg over', style: { width: pct(over / scale) } }));
  if (pend > 0) bar.append(h('span', { class: 'seg pend', style: { width: pct(Math.min(pend, Math.max(scale - alloc, 0)) / scale) } }));
  if (alloc + pend > scale) bar.classList.add('overflow');
  if (cluster == null && deserved != null && deserved > 0 && deserved <= scale) {
    bar.append(h('span', { class: 'mark deserved', style: { left: pct(deserved / scale) } }));
  }
  if (guarantee != null && guarantee <= scale) {
    bar.append(h('span', { class: 'mark guarantee', style: { left: pct(guarantee / scale) } }));
  }

  const parts = [`${resLabel(res)}: ${qtyUnit(res, alloc)} allocated`];
  if (cluster != null) parts.push(`of the cluster's ${qtyUnit(res, cluster)}`);
  else parts.push(cap != null ? `capability ${qtyUnit(res, cap)}` : 'no capability limit (bar drawn against its parent)');
  if (pend > 0) parts.push(`${qtyUnit(res, pend)} pending`);
  if (alloc + pend > scale) parts.push(cap != null ? 'demand above capability' : 'demand above what there is');
  if (deserved != null && cluster == null) parts.push(`deserved ${qtyUnit(res, deserved)}`);
  if (guarantee != null) parts.push(`guarantee ${qtyUnit(res, guarantee)}`);
  const label = parts.join(', ');
  bar.setAttribute('role', 'img');
  bar.setAttribute('aria-label', label);

  const unit = res === 'cpu' ? ' cores' : '';
  const capText = cap != null ? qty(res, cap) : (cluster != null ? qty(res, cluster) : '∞');
  if (cap == null && cluster == null) bar.classList.add('unlimited');
  return h('div', {
    class: 'res', title: label,
    dataset: {
      resource: res, allocated: alloc, pending: pend, scale,
      capability: cap ?? '', deserved: deserved ?? '', guarantee: guarantee ?? '',
    },
  },
  h('span', { class: 'rname', title: res }, resLabel(res)),
  bar,
  h('span', { class: 'rtext' },
    h('span', { class: 'rval' }, `${qty(res, alloc)} / ${capText}${unit}`),
    pend > 0 ? h('span', { class: 'rpend' }, ` +${qty(res, pend)} pending`) : null));
}

function stateBadge(state) {
  return h('span', { class: `badge state-${String(state).toLowerCase()}` }, state ?? '—');
}

function setFilter(name) {
  S.filter = name || '';
  const url = S.filter ? `#queue=${encodeURIComponent(S.filter)}` : location.pathname + location.search;
  history.replaceState(null, '', url);
  render();
}

const inFilter = (path) => !S.filter || path === S.filter || (path || '').startsWith(`${S.filter}.`);

function renderQueues() {
  const body = $('#queues tbody');
  if (!S.queues) {
    body.replaceChildren(emptyRow(7, S.lastOk ? 'No data' : 'Loading…'));
    return;
  }
  if (!S.queues.length) {
    body.replaceChildren(emptyRow(7, 'No queues configured'));
    return;
  }
  const depth = depthMap(S.queues);
  const scale = scales(S.queues);
  // Jobs wait in leaf queues; a parent shows those of its subtree.
  const jobs = new Map(S.queues.map((q) => [q.name, [q.pendingJobs || 0, q.runningJobs || 0]]));
  for (const q of [...S.queues].reverse()) {
    const p = q.parent != null ? jobs.get(q.parent) : null;
    const mine = jobs.get(q.name);
    if (p) {
      p[0] += mine[0];
      p[1] += mine[1];
    }
  }
  body.replaceChildren(...S.queues.map((q) => {
    const [pendingJobs, runningJobs] = jobs.get(q.name);
    const d = depth.get(q.name) || 0;
    const last = q.name.slice(q.name.lastIndexOf('.') + 1);
    const selected = S.filter === q.name;
    const res = queueResources(q);
    return h('tr', {
      dataset: { queue: q.name, depth: d, state: q.state },
      class: selected ? 'selected' : null,
    },
    h('th', { scope: 'row', class: 'qname' },
      h('span', { class: 'indent', style: { paddingLeft: `${d * 1.1}em` } },
        d > 0 ? h('span', { class: 'tree', 'aria-hidden': 'true' }, '└ ') : null,
        h('button', {
          type: 'button', class: 'linkish', title: `${q.name}: show its jobs`,
          'aria-pressed': selected ? 'true' : 'false',
          dataset: { focusKey: `q:${q.name}` },
          onclick: () => setFilter(selected ? '' : q.name),
        }, last),
        q.object && q.object !== last ? muted(` (${q.object})`) : null)),
    h('td', { class: 'qstate' }, stateBadge(q.state)),
    h('td', { class: 'num', dataset: { label: 'weight' } }, q.weight ?? '—'),
    h('td', { class: 'num', dataset: { col: 'share', label: 'share' } },
      q.dominantShare != null ? `${(q.dominantShare * 100).toFixed(q.dominantShare < 0.1 && q.dominantShare > 0 ? 1 : 0)}%` : '—',
      q.dominantResource ? muted(` ${resLabel(q.dominantResource)}`) : null),
    h('td', {
      class: 'num', dataset: { col: 'jobs', label: 'jobs' },
      title: `${pendingJobs} pending, ${runningJobs} running${pendingJobs !== (q.pendingJobs || 0) || runningJobs !== (q.runningJobs || 0) ? ' in its subtree' : ''}`,
    },
    h('span', { class: pendingJobs ? 'pend-count' : null }, pendingJobs), ' / ', runningJobs),
    h('td', { class: 'res-col' },
      res.length ? h('div', { class: 'res-list' }, res.map((r) => resourceBar(q, r, scale.get(q.name).get(r))))
        : muted('nothing allocated, no limits')),
    h('td', { class: (q.topReasons || []).length ? 'reasons' : 'reasons none' },
      (q.topReasons || []).length
        ? (q.topReasons || []).map(([label, n]) => h('span', { class: `chip reason-${label}` }, label, n > 1 ? ` ×${n}` : ''))
        : muted('—')));
  }));
}

function renderFilter() {
  const sel = $('#queue-filter');
  const names = (S.queues || []).map((q) => q.name);
  if (S.filter && !names.includes(S.filter)) names.push(S.filter);
  const have = [...sel.options].slice(1).map((o) => o.value);
  if (have.join('\n') !== names.join('\n')) {
    const depth = depthMap(S.queues || []);
    sel.replaceChildren(h('option', { value: '' }, 'all queues'),
      ...names.map((n) => h('option', { value: n }, '\u00a0\u00a0'.repeat(depth.get(n) || 0) + n)));
  }
  sel.value = S.filter;
  $('#clear-filter').hidden = !S.filter;
}

function emptyRow(cols, text) {
  return h('tr', { class: 'empty' }, h('td', { colspan: cols }, text));
}

function jobCell(name) {
  const i = name.indexOf('/');
  return h('th', { scope: 'row', class: 'job' },
    i >= 0 ? muted(name.slice(0, i + 1)) : null,
    h('span', { class: 'jname' }, i >= 0 ? name.slice(i + 1) : name));
}

function queueCell(path) {
  return h('td', { class: 'queue', title: path, dataset: { col: 'queue' } },
    h('button', {
      type: 'button', class: 'linkish', dataset: { focusKey: `jq:${path}` },
      title: `${path}: show its jobs`, onclick: () => setFilter(path),
    }, shortQueue(path)));
}

function requestsCell(req) {
  const keys = sortRes(Object.keys(req || {}).filter((k) => k !== 'pods' && req[k] > 0));
  if (!keys.length) return h('td', { class: 'req', dataset: { col: 'requests' } }, muted('—'));
  const full = keys.map((k) => `${k}: ${qty(k, req[k])}`).join(', ');
  return h('td', { class: 'req', title: full, dataset: { col: 'requests' } },
    keys.map((k, i) => [i ? h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · ') : null,
      h('span', { class: 'q' }, qtyUnit(k, req[k]))]));
}

/** A message cut to one line (full text on hover; click or Enter shows it all, and it stays
 * open across updates). */
function messageSpan(text, key) {
  return h('span', {
    class: S.open.has(key) ? 'msg open' : 'msg', title: text, tabindex: '0', dataset: { key, focusKey: key },
  }, text);
}

function jobRow(j, cells) {
  return h('tr', { dataset: { job: j.name, queue: j.queue, state: j.state } }, ...cells);
}

const byQueueThenPosition = (a, b) =>
  String(a.queue).localeCompare(String(b.queue))
  || (a.position == null) - (b.position == null)
  || (a.position ?? 0) - (b.position ?? 0)
  || String(a.name).localeCompare(String(b.name));

function renderPending() {
  const body = $('#pending tbody');
  if (!S.pending) {
    body.replaceChildren(emptyRow(9, S.lastOk ? 'No data' : 'Loading…'));
    $('#pending-count').textContent = '';
    return;
  }
  const list = S.pending.filter((j) => inFilter(j.queue)).sort(byQueueThenPosition);
  $('#pending-count').textContent = S.filter ? `${list.length} of ${S.pending.length}` : String(list.length);
  if (!list.length) {
    body.replaceChildren(emptyRow(9, S.filter ? `No pending jobs in ${S.filter}` : 'No pending jobs'));
    return;
  }
  body.replaceChildren(...list.map((j) => {
    const pods = j.pods || {};
    const exist = Object.values(pods).reduce((a, b) => a + (b || 0), 0);
    const start = parseTime(j.estimatedStart);
    return jobRow(j, [
      queueCell(j.queue),
      jobCell(j.name),
      h('td', { dataset: { col: 'state' } }, stateBadge(j.state)),
      h('td', { class: 'num', dataset: { col: 'position' } }, j.position ?? muted('—')),
      h('td', {
        class: 'num', dataset: { col: 'pods' },
        title: `min member ${j.minMember}; pods: ${Object.entries(pods).map(([k, v]) => `${v} ${k}`).join(', ')}`,
      }, `${j.minMember ?? '—'}`, exist && exist !== j.minMember ? muted(` (${exist} exist)`) : null),
      requestsCell(j.requests),
      h('td', { class: 'num', dataset: { col: 'wait' }, title: j.created ? `created ${j.created}` : null },
        j.waitSeconds != null ? dur(j.waitSeconds) : muted('—')),
      h('td', { class: 'reason', dataset: { col: 'reason' } },
        j.reason
          ? [h('span', { class: `chip reason-${j.reason.label}`, dataset: { label: j.reason.label } }, j.reason.label),
            j.reason.message ? [' ', messageSpan(j.reason.message, `job:${j.name}`)] : null]
          : muted('—')),
      h('td', { class: 'eta', dataset: { col: 'estimate' } },
        start
          ? [h('time', { datetime: j.estimatedStart, title: j.estimatedStart, class: 'eta-rel' }, relative(start)),
            ' ', muted(`at ${clock(start)}`),
            h('span', { class: 'basis', dataset: { col: 'basis' } }, j.estimateBasis ? `by ${j.estimateBasis}` : '')]
          : h('span', { class: 'unknown', title: 'No estimate: nothing known says when room frees up' }, 'unknown')),
    ]);
  }));
}

function renderRunning() {
  const body = $('#running tbody');
  if (!S.running) {
    body.replaceChildren(emptyRow(5, S.lastOk ? 'No data' : 'Loading…'));
    $('#running-count').textContent = '';
    return;
  }
  const list = S.running.filter((j) => inFilter(j.queue))
    .sort((a, b) => String(a.queue).localeCompare(String(b.queue)) || String(a.name).localeCompare(String(b.name)));
  $('#running-count').textContent = S.filter ? `${list.length} of ${S.running.length}` : String(list.length);
  if (!list.length) {
    body.replaceChildren(emptyRow(5, S.filter ? `No running jobs in ${S.filter}` : 'No running jobs'));
    return;
  }
  body.replaceChildren(...list.map((j) => {
    const pods = j.pods || {};
    const bound = pods.bound ?? 0;
    const since = parseTime(j.runningSince ?? j.started ?? null);
    const created = parseTime(j.created);
    return jobRow(j, [
      queueCell(j.queue),
      jobCell(j.name),
      h('td', {
        class: 'num', dataset: { col: 'pods' },
        title: Object.entries(pods).map(([k, v]) => `${v} ${k}`).join(', '),
      }, h('span', { class: bound < (j.minMember || 0) ? 'warn-text' : null }, `${bound} / ${j.minMember ?? '—'}`),
      pods.releasing ? muted(` (${pods.releasing} releasing)`) : null),
      requestsCell(j.requests),
      h('td', { dataset: { col: 'since' } },
        since
          ? [h('time', { datetime: since.toISOString(), title: since.toISOString() }, clock(since)), ' ', muted(`(${ago(since)})`)]
          : created
            ? h('time', {
              datetime: j.created, class: 'muted',
              title: `Created ${j.created}; the API does not say when it started running`,
            }, `created ${ago(created)}`)
            : muted('unknown')),
    ]);
  }));
}

function renderEvents() {
  const body = $('#events tbody');
  if (!S.events) {
    body.replaceChildren(emptyRow(6, S.lastOk ? 'No data' : 'Loading…'));
    $('#events-count').textContent = '';
    return;
  }
  const list = S.events.filter((e) => inFilter(e.queue));
  $('#events-count').textContent = S.filter ? `${list.length} of ${S.events.length}` : String(list.length);
  if (!list.length) {
    body.replaceChildren(emptyRow(6, S.filter ? `No evictions in ${S.filter}` : 'No evictions or reclaims recently'));
    return;
  }
  body.replaceChildren(...list.map((e) => {
    const t = parseTime(e.time);
    return h('tr', { dataset: { job: e.job, queue: e.queue, reason: e.reason } },
      h('td', { class: 'time' },
        t ? [h('time', { datetime: e.time, title: e.time }, clock(t)), ' ', muted(`(${ago(t)})`)] : muted('—')),
      queueCell(e.queue),
      jobCell(String(e.job)),
      h('td', { class: 'num' }, e.pods ?? '—'),
      h('td', null, h('span', { class: `chip reason-${e.reason}` }, e.reason ?? '—')),
      h('td', { class: 'message' }, e.message ? messageSpan(e.message, `ev:${e.time}:${e.job}`) : muted('—')));
  }));
}

// ---------- wiring ----------

function toggleMessage(m) {
  const open = m.classList.toggle('open');
  if (open) S.open.add(m.dataset.key);
  else S.open.delete(m.dataset.key);
}

function readHash() {
  const m = /^#queue=(.+)$/.exec(location.hash);
  S.filter = m ? decodeURIComponent(m[1]) : '';
}

function init() {
  readHash();
  $('#queue-filter').addEventListener('change', (e) => setFilter(e.target.value));
  $('#clear-filter').addEventListener('click', () => setFilter(''));
  window.addEventListener('hashchange', () => { readHash(); render(); });
  $('#auth-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('#token').value.trim().replace(/^Bearer\s+/i, '');
    if (!v) return;
    S.token = v;
    sessionStorage.setItem(TOKEN_KEY, v);
    $('#token').value = '';
    S.who = null;
    poll();
  });
  $('#signout').addEventListener('click', () => {
    S.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    S.who = null;
    poll();
  });
  // Expand a truncated message on click (and Enter), for keyboards and touch screens.
  document.addEventListener('click', (e) => {
    const m = e.target.closest && e.target.closest('.msg');
    if (m) toggleMessage(m);
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.target.classList && e.target.classList.contains('msg')) toggleMessage(e.target);
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });
  render();
  poll();
}

document.addEventListener('DOMContentLoaded', init);
