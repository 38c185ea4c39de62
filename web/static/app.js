// SPDX-License-Identifier: GPL-2.0-or-later
// The teaching page: every number and byte comes from the server's snapshot of the emulated guest.

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
};

const state = {
  scenario: null, // the /api/scenario document
  step: 0,
  fn: null,
  snap: null,
  prevSnap: null,
  checks: null,
  tab: 'enabled_functions',
  token: 0,
  playing: null,
};

async function api(path, init) {
  const r = await fetch(path, init);
  const body = await r.json();
  if (!r.ok) {
    const err = new Error(body.error || r.statusText);
    err.body = body;
    throw err;
  }
  return body;
}

function showError(text) {
  const e = $('error');
  if (!text) {
    e.hidden = true;
    e.textContent = '';
    return;
  }
  e.hidden = false;
  e.textContent = text;
}

// ---------- URL ----------

function readUrl() {
  const q = new URLSearchParams(location.search);
  return { scenario: q.get('scenario'), step: q.get('step'), fn: q.get('fn'), large: q.get('large') === '1' };
}

function writeUrl() {
  const q = new URLSearchParams();
  if (state.scenario) q.set('scenario', state.scenario.key);
  q.set('step', String(state.step));
  if (state.fn) q.set('fn', state.fn);
  if (document.body.classList.contains('large')) q.set('large', '1');
  history.replaceState(null, '', '?' + q.toString());
}

// ---------- scenario and step ----------

async function loadScenarioList() {
  const list = await api('/api/scenarios');
  const sel = $('scenario');
  sel.replaceChildren(...list.map((s) => el('option', { value: s.key, text: s.name })));
  return list;
}

async function openScenario(doc, step, fn) {
  state.scenario = doc;
  state.prevSnap = null;
  state.snap = null;
  state.checks = null;
  state.fn = fn || null;
  const sel = $('scenario');
  if (![...sel.options].some((o) => o.value === doc.key)) sel.append(el('option', { value: doc.key, text: `${doc.name} (uploaded)` }));
  sel.value = doc.key;
  $('scenarioName').textContent = doc.name;
  $('description').textContent = doc.description;
  const slider = $('slider');
  slider.max = String(doc.steps.length - 1);
  const n = step === null || step === undefined || !/^\d+$/.test(String(step)) ? doc.openStep : Math.min(Number(step), doc.steps.length - 1);
  await goTo(n);
  // The whole run (and its variant) after the first step is drawn: the server runs one job at a time.
  api(`/api/checks?name=${encodeURIComponent(doc.key)}`)
    .then((c) => {
      if (state.scenario === doc) {
        state.checks = c;
        renderChecks();
      }
    })
    .catch((e) => {
      if (state.scenario === doc) $('checks').replaceChildren(el('li', { class: 'fail', text: e.message }));
    });
}

async function goTo(step) {
  const doc = state.scenario;
  if (!doc) return;
  step = Math.max(0, Math.min(step, doc.steps.length - 1));
  state.step = step;
  $('slider').value = String(step);
  const info = doc.steps[step];
  $('stepLabel').textContent = `step ${step} of ${doc.steps.length - 1}: ${info.kind}`;
  renderYaml();
  renderChecks();
  writeUrl();
  const token = ++state.token;
  document.body.classList.add('busy');
  try {
    const q = `name=${encodeURIComponent(doc.key)}&step=${step}${state.fn ? `&fn=${encodeURIComponent(state.fn)}` : ''}`;
    const snap = await api(`/api/snapshot?${q}`);
    if (token !== state.token) return;
    showError('');
    state.prevSnap = state.snap && state.snap.scenario === snap.scenario ? state.snap : null;
    state.snap = snap;
    state.fn = snap.function;
    writeUrl();
    render();
    $('eras').replaceChildren(el('p', { class: 'muted', text: 'running the same step in the other configurations…' }));
    api(`/api/compare?${q}`)
      .then((c) => token === state.token && renderEras(c))
      .catch((e) => token === state.token && $('eras').replaceChildren(el('p', { class: 'fail', text: e.message })));
  } catch (e) {
    if (token === state.token) showError(e.body && e.body.file ? `${e.body.file}:${e.body.line}: ${e.body.key ? e.body.key + ': ' : ''}${e.body.reason}` : e.message);
  } finally {
    if (token === state.token) document.body.classList.remove('busy');
  }
}

// ---------- rendering ----------

function render() {
  const s = state.snap;
  const fnSel = $('fn');
  const names = [...new Set([...state.scenario.functions, s.function])];
  fnSel.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
  fnSel.value = s.function;
  $('fnName').textContent = s.function;
  renderSite();
  renderTrampoline();
  renderPath();
  renderMemory();
  renderTracefs();
  // What tests and screenshots wait for: this scenario, step and function are drawn.
  document.body.dataset.shown = `${state.scenario.key}:${state.step}:${s.function}`;
}

function yamlLine(text) {
  // Comments, keys and values, escaped by building text nodes.
  const out = [];
  const m = /^(\s*)(- )?([A-Za-z_][\w]*)(:)(.*)$/.exec(text);
  let rest = text;
  if (m) {
    out.push(m[1], m[2] ? el('span', { class: 'y-dash', text: m[2] }) : '', el('span', { class: 'y-key', text: m[3] }), m[4]);
    rest = m[5];
  }
  const hash = rest.indexOf(' #');
  const body = hash >= 0 ? rest.slice(0, hash) : rest;
  out.push(el('span', { class: 'y-val', text: body }));
  if (hash >= 0) out.push(el('span', { class: 'y-com', text: rest.slice(hash) }));
  return out;
}

function renderYaml(errorLine) {
  const doc = state.scenario;
  const pre = $('yaml');
  const lines = (doc ? doc.text : '').replace(/\n$/, '').split('\n');
  const cur = doc && !errorLine ? doc.steps[state.step] : null;
  let first = null;
  pre.replaceChildren(
    ...lines.map((t, i) => {
      const n = i + 1;
      const on = cur && n >= cur.line && n <= cur.endLine;
      const bad = errorLine === n;
      const row = el('span', { class: `yl${on ? ' cur' : ''}${bad ? ' bad' : ''}`, 'data-line': String(n) }, el('span', { class: 'ln', text: String(n).padStart(3) }), ...yamlLine(t), '\n');
      if ((on || bad) && !first) first = row;
      return row;
    }),
  );
  if (first) pre.scrollTop += first.getBoundingClientRect().top - pre.getBoundingClientRect().top - pre.clientHeight / 3;
}

function stepOfCheck(name) {
  const m = /^(?:\[[^\]]+\] )?steps\[(\d+)\]/.exec(name);
  return m ? Number(m[1]) : null;
}

function renderChecks() {
  const ul = $('checks');
  const c = state.checks;
  if (!c) {
    ul.replaceChildren(el('li', { class: 'muted', text: 'running the whole scenario…' }));
    return;
  }
  const last = state.scenario.steps.length - 1;
  const shown = c.checks.filter((x) => {
    const s = stepOfCheck(x.name);
    return s === null ? state.step === last : s <= state.step;
  });
  if (!shown.length) {
    ul.replaceChildren(el('li', { class: 'muted', text: 'no check up to this step' }));
    return;
  }
  // Newest first: the checks of the step on show lead, marked.
  const passed = shown.filter((x) => x.passed).length;
  ul.replaceChildren(
    el('li', { class: `summary ${passed === shown.length ? 'pass' : 'fail'}`, text: `${passed} of ${shown.length} passed` }),
    ...shown.reverse().map((x) =>
      el(
        'li',
        { class: `${x.passed ? 'pass' : 'fail'}${stepOfCheck(x.name) === state.step ? ' now' : ''}`, title: x.detail },
        el('span', { class: 'mark', text: x.passed ? '✔' : '✘' }),
        ' ',
        el('span', { text: x.name }),
        el('div', { class: 'detail', text: x.detail }),
      ),
    ),
  );
}

/** Bytes as boxes that explain themselves on hover; `focusable` ones also on keyboard focus (Tab). */
function byteSpans(hexText, tipFor, classFor, focusable = true) {
  return hexText.split(' ').map((b, i) => el('span', { class: `b ${classFor ? classFor(i) : ''}`, 'data-tip': tipFor(i, b), tabindex: focusable ? '0' : null, text: b }));
}

function renderSite() {
  const s = state.snap;
  const e = s.explanation;
  const target = $('target');
  target.textContent = `now calls ${e.target}`;
  target.className = `badge t-${e.target.startsWith('trampoline') ? 'tramp' : e.target === 'nop' ? 'nop' : 'caller'}`;
  const prev = state.prevSnap && state.prevSnap.function === s.function ? state.prevSnap.explanation.stages[2].bytes : null;
  const rows = e.stages.map((st, k) => {
    const changed = k === 2 && prev !== null && prev !== st.bytes;
    const tip = (i, b) =>
      i === 0
        ? `${b}: ${b === 'e8' ? 'the opcode of call rel32' : b === '0f' ? 'first byte of the 5-byte NOP (0f 1f 44 00 00)' : 'opcode'}`
        : b === '00' && st.bytes.startsWith('0f 1f')
          ? `${b}: part of the 5-byte NOP nopl 0x0(%rax,%rax,1)`
          : `${b}: ${st.bytes.startsWith('e8') ? `byte ${i} of the rel32 displacement (little-endian), counted from the next instruction at ${e.site} + 5` : 'part of the NOP'}`;
    return el(
      'tr',
      { class: changed ? 'changed' : '' },
      el('th', { text: st.stage }),
      el('td', { class: 'bytes' }, byteSpans(st.bytes, tip)),
      el('td', { class: 'insn', text: st.instruction }),
    );
  });
  $('site').replaceChildren(el('caption', { class: 'muted', text: `call site at ${e.site}` }), ...rows);
}

function tipForTrampolineByte(line, i, b, callerName, callerLine) {
  const n = line.note;
  if (n.startsWith('48 8b 15')) {
    if (i < 3) return `${b}: movq disp32(%rip), %rdx opcode bytes (REX.W 8b /r, ModRM 15 = %rdx, rip-relative): kept. create_trampoline checks them before it rewrites the displacement.`;
    return `${b}: byte ${i - 3} of the rewritten disp32 (little-endian): ${n.replace(/^48 8b 15 kept; /, '')}. In ${callerName} it was ${callerLine ? callerLine.bytes.split(' ')[i] : '?'}.`;
  }
  if (n.startsWith('the copied ftrace_call')) {
    if (i === 0) return `${b}: call rel32 opcode`;
    return `${b}: byte ${i - 1} of the rel32 (little-endian): ${line.instruction.replace(/^callq /, 'now calls ')}; in ${callerName} the same call reaches whatever ftrace_call is patched to: ftrace_stub, a lone ops' func, or the list function`;
  }
  if (n.startsWith('appended')) return i === 0 ? `${b}: jmp rel32 opcode, appended after the copy` : `${b}: byte ${i - 1} of the rel32 to ftrace_return (little-endian)`;
  if (n.startsWith('the ops pointer')) return `${b}: byte ${i} of ${n.replace(/^the ops pointer \((&\w+)\).*/, '$1')} = ${line.instruction.replace('.quad ', '')}, little-endian: the 48 8b 15 above loads it into %rdx`;
  return `${b}: ${n}, unchanged`;
}

function trampolineClass(line) {
  const n = line.note;
  if (n.startsWith('48 8b 15')) return 'rewritten';
  if (n.startsWith('the copied ftrace_call')) return 'call';
  if (n.startsWith('appended')) return 'appended';
  if (n.startsWith('the ops pointer')) return 'opsptr';
  return 'copied';
}

function renderTrampoline() {
  const s = state.snap;
  const t = s.explanation.trampoline;
  const c = s.caller;
  $('trampTitle').textContent = t
    ? `The trampoline of ${t.ops} (${t.size} bytes at ${t.address}, module space) beside ${t.copiedFrom}`
    : s.explanation.target === 'nop'
      ? `No trampoline: the site is a NOP. ${c.name} (${c.address}) is what it would call without one`
      : `No trampoline: the site calls ${c.name} (${c.address}), shared by every ops`;
  const byOff = new Map(c.lines.map((l) => [l.offset, l]));
  const offsets = [...new Set([...c.lines.map((l) => l.offset), ...(t ? t.lines.map((l) => l.offset) : [])])].sort((a, b) => a - b);
  const tByOff = new Map(t ? t.lines.map((l) => [l.offset, l]) : []);
  const head = el(
    'tr',
    {},
    el('th', { text: 'offset' }),
    el('th', { colspan: '2', text: `${c.name} (kernel text)` }),
    el('th', { colspan: '2', text: t ? `trampoline of ${t.ops}` : '' }),
  );
  const rows = offsets.map((off) => {
    const l = byOff.get(off);
    const r = tByOff.get(off);
    const cls = r ? trampolineClass(r) : '';
    const left = l
      ? [
          el(
            'td',
            { class: `bytes ${l.role === 'op_ptr' ? 'orig-op' : l.role === 'call' ? 'orig-call' : ''}` },
            byteSpans(
              l.bytes,
              (i, b) =>
                l.role === 'op_ptr'
                  ? i < 3
                    ? `${b}: movq disp32(%rip), %rdx: loads function_trace_op, the ops the callback gets in %rdx`
                    : `${b}: byte ${i - 3} of the disp32 (little-endian): %rip + disp = function_trace_op`
                  : l.role === 'call'
                    ? `${b}: ftrace_call: the call ftrace patches to ftrace_stub, a lone ops' func, or the list function`
                    : `${b}: ${c.name}+0x${off.toString(16)}`,
              null,
              l.role !== null,
            ),
          ),
          el('td', { class: 'insn', text: l.instruction }),
        ]
      : [el('td', { class: 'bytes empty', text: '—' }), el('td', { class: 'insn muted', text: off >= (t ? t.size : 0) ? 'past the end of the copied code' : '' })];
    const right = r
      ? [
          el(
            'td',
            { class: `bytes ${cls}` },
            byteSpans(
              r.bytes,
              (i, b) => tipForTrampolineByte(r, i, b, c.name, l),
              (i) => (cls === 'rewritten' && i >= 3 ? 'disp' : cls === 'rewritten' ? 'opc' : ''),
              cls !== 'copied',
            ),
          ),
          el('td', { class: `insn ${cls}` }, r.instruction, cls !== 'copied' ? el('div', { class: 'note', text: r.note }) : null),
        ]
      : [el('td', { class: 'bytes empty' }), el('td', { class: 'insn' })];
    return el('tr', { class: `row-${cls || 'plain'}`, 'data-offset': String(off) }, el('td', { class: 'off', text: `+0x${off.toString(16).padStart(2, '0')}` }), ...left, ...right);
  });
  const cols = el('colgroup', {}, el('col', { class: 'c-off' }), el('col', { class: 'c-bytes' }), el('col', { class: 'c-insn' }), el('col', { class: 'c-bytes' }), el('col', { class: 'c-insn' }));
  $('tramp').replaceChildren(el('table', { class: 'asm' }, cols, el('thead', {}, head), el('tbody', {}, rows)));
}

function opsByAddr(addr) {
  return state.snap.ops.find((o) => o.address === addr);
}

function renderPath() {
  const s = state.snap;
  const total = s.hops.reduce((n, h) => n + h.instructions, 0);
  const used = new Set();
  const items = s.hops.map((h, i) => {
    const isCallback = s.explanation.callbacks.some((c) => c.callback === h.name);
    const kind = isCallback ? 'callback' : h.name.endsWith('call site') ? 'site' : h.name.startsWith('ftrace_trampoline') ? 'tramp' : /_caller|_call$|ftrace_return|_op_ptr|caller_end/.test(h.name) ? 'caller' : h.name.includes('list_func') || h.name.includes('ops_test') || h.name.includes('lookup_ip') ? 'list' : h.name === 'ftrace_stub' ? 'stub' : 'callback';
    // A callback's hop is tied to its row below, so that playing the call lights both.
    const cb = kind === 'callback' ? s.explanation.callbacks.findIndex((c, k) => c.callback === h.name && !used.has(k)) : -1;
    if (cb >= 0) used.add(cb);
    return el(
      'li',
      { class: `hop k-${kind}`, 'data-i': String(i), 'data-cb': cb >= 0 ? String(cb) : null },
      el('span', { class: 'name', text: h.name }),
      el('span', { class: 'count', text: `${h.instructions} insn` }),
    );
  });
  if (s.fault) items.push(el('li', { class: 'hop k-fault' }, el('span', { class: 'name', text: 'the CPU faults' }), el('span', { class: 'count', text: `after ${total} insn` })));
  else items.push(el('li', { class: 'hop k-site' }, el('span', { class: 'name', text: `${s.function}+0x5: the function runs on` }), el('span', { class: 'count', text: `${total} in all` })));
  $('hops').replaceChildren(...items);
  const cbs = s.explanation.callbacks;
  if (s.fault) {
    $('callbacks').replaceChildren(el('pre', { class: 'oops', text: s.fault }));
    return;
  }
  if (!cbs.length) {
    $('callbacks').replaceChildren(el('p', { class: 'muted', text: 'No callback ran: the call site is a NOP.' }));
    return;
  }
  const head = el('tr', {}, ...['callback', '%rdi (ip)', '%rsi (parent ip)', '%rdx (op)', 'the ops it belongs to', ''].map((h) => el('th', { text: h })));
  const rows = cbs.map((cb) => {
    const ops = s.ops.find((o) => o.func === cb.callback && o.registered && o.flags.includes('ENABLED') && (cb.ops === null || o.name === cb.ops)) || s.ops.find((o) => o.func === cb.callback);
    const own = opsByAddr(cb.rdx);
    return el(
      'tr',
      { class: cb.ownOps ? 'pass' : 'fail' },
      el('td', { class: 'cb', text: cb.callback }),
      el('td', { class: 'reg rdi', text: cb.rdi }),
      el('td', { class: 'reg rsi', text: cb.rsi }),
      el('td', { class: 'reg rdx', text: cb.rdx }),
      el('td', { class: 'ops' }, ops ? `${ops.name} at ` : '?', ops ? el('span', { class: 'reg opsaddr', text: ops.address }) : null),
      el('td', { class: 'verdict', text: cb.ownOps ? `✔ %rdx = &${own ? own.name : cb.ops}` : `✘ %rdx is not its ops` }),
    );
  });
  $('callbacks').replaceChildren(el('table', { class: 'cbs' }, el('thead', {}, head), el('tbody', {}, rows)));
}

function play() {
  if (state.playing) {
    clearInterval(state.playing);
    state.playing = null;
  }
  const hops = [...document.querySelectorAll('#hops .hop')];
  hops.forEach((h) => h.classList.remove('active', 'done'));
  let i = 0;
  const tick = () => {
    if (i > 0) hops[i - 1].classList.replace('active', 'done');
    document.querySelectorAll('#callbacks tbody tr').forEach((r, k) => r.classList.toggle('active', i < hops.length && hops[i].dataset.cb === String(k)));
    if (i >= hops.length) {
      clearInterval(state.playing);
      state.playing = null;
      return;
    }
    hops[i].classList.add('active');
    i++;
  };
  tick();
  state.playing = setInterval(tick, 650);
}

const REGION_NAMES = {
  'kernel-text': 'kernel text',
  'kernel-data': 'kernel data',
  percpu: 'per-CPU',
  modules: 'module space (module_alloc)',
  'direct-map': 'kmalloc (direct map)',
  user: 'user memory',
};

function renderMemory() {
  const s = state.snap;
  const prev = state.prevSnap;
  const key = (o) => `${o.name}@${o.address}`;
  const had = new Set(prev ? prev.memory.objects.map(key) : []);
  const now = new Set(s.memory.objects.map(key));
  const gone = prev ? prev.memory.objects.filter((o) => !now.has(key(o))) : [];
  const regions = [...s.memory.regions].sort((a, b) => (BigInt(a.start) < BigInt(b.start) ? -1 : 1));
  const rows = regions.map((r) => {
    const objs = s.memory.objects.filter((o) => o.region === r.name);
    const ghosts = gone.filter((o) => o.region === r.name);
    const label = REGION_NAMES[r.name] || (r.name.startsWith('stack') ? `stack (${r.name})` : r.name);
    return el(
      'div',
      { class: `region r-${r.name.replace(/[^a-z]/g, '')}` },
      el('div', { class: 'rhead' }, el('span', { class: 'rname', text: label }), el('span', { class: 'raddr', text: `${r.start} · ${fmtSize(r.size)} · ${r.perms}` })),
      el(
        'div',
        { class: 'objs' },
        objs.map((o) => el('span', { class: `obj o-${o.kind}${prev && !had.has(key(o)) ? ' appear' : ''}`, 'data-tip': `${o.name}: ${fmtSize(o.size)} at ${o.address}` }, el('b', { text: o.name }), ` ${o.address.slice(-8)}`)),
        ghosts.map((o) => el('span', { class: `obj o-${o.kind} gone`, 'data-tip': `${o.name}: freed by this step (was at ${o.address})` }, el('b', { text: o.name }), ' freed')),
        !objs.length && !ghosts.length ? el('span', { class: 'muted', text: r.name === 'modules' ? 'empty: no trampoline allocated' : '' }) : null,
      ),
    );
  });
  $('memory').replaceChildren(...rows);
}

function fmtSize(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(n % (1 << 20) ? 1 : 0)} MiB`;
  if (n >= 1 << 10) return `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} KiB`;
  return `${n} B`;
}

function renderTracefs() {
  const s = state.snap;
  const tabs = document.querySelectorAll('.tabs [role=tab]');
  tabs.forEach((b) => b.setAttribute('aria-selected', String(b.dataset.tab === state.tab)));
  document.querySelector('[data-tab=dmesg]').textContent = s.dmesg.length ? `dmesg (${s.dmesg.length} ⚠)` : 'dmesg';
  const opsSel = $('filterOps');
  const names = Object.keys(s.tracefs.set_ftrace_filter);
  const keep = opsSel.value;
  opsSel.replaceChildren(...names.map((n) => el('option', { value: n, text: n })));
  if (names.includes(keep)) opsSel.value = keep;
  opsSel.hidden = state.tab !== 'set_ftrace_filter';
  let text;
  if (state.tab === 'enabled_functions') text = s.tracefs.enabled_functions || '(empty: no call site is enabled)\n';
  else if (state.tab === 'trace') text = s.tracefs.trace + (s.tracefs.traceLines > 60 ? `(the last 60 of ${s.tracefs.traceLines} entries)\n` : '');
  else if (state.tab === 'dmesg') text = s.dmesg.length ? s.dmesg.join('\n') + '\n' : '(no warning)\n';
  else text = opsSel.value ? `# ${opsSel.value}\n${s.tracefs.set_ftrace_filter[opsSel.value]}` : '(no ops)\n';
  $('tracefs').textContent = text;
}

function renderEras(list) {
  const cols = list.map((c) =>
    el(
      'div',
      { class: 'era' },
      el('h3', { text: c.label }),
      el('p', {}, 'site: ', el('code', { text: c.site }), ' → ', el('b', { text: c.target })),
      el('p', { class: 'total' }, el('b', { text: String(c.instructions) }), ' guest instructions in ftrace for one call'),
      el('ol', { class: 'mini' }, c.hops.map((h) => el('li', {}, el('span', { text: h.name }), el('span', { class: 'count', text: String(h.instructions) })))),
      c.fault
        ? el('p', { class: 'fail', text: `the call faults: ${c.fault.split('\n')[0]}` })
        : el('p', { class: 'muted', text: `${c.callbacks.length} callback(s); ${c.callbacks.filter((x) => x.ownOps).length} got their own ops in %rdx` }),
    ),
  );
  $('eras').replaceChildren(...cols);
}

// ---------- tooltips ----------

function showTip(target) {
  const tip = $('tip');
  const text = target && target.getAttribute('data-tip');
  if (!text) {
    tip.hidden = true;
    return;
  }
  tip.textContent = text;
  tip.hidden = false;
  const r = target.getBoundingClientRect();
  const w = tip.offsetWidth;
  tip.style.left = `${Math.max(8, Math.min(window.innerWidth - w - 8, r.left + window.scrollX - w / 2 + r.width / 2))}px`;
  tip.style.top = `${r.bottom + window.scrollY + 8}px`;
}

document.addEventListener('mouseover', (e) => showTip(e.target.closest('[data-tip]')));
document.addEventListener('focusin', (e) => showTip(e.target.closest('[data-tip]')));

// ---------- controls ----------

/** The sticky side column starts below the header, whose height changes with the type size. */
function fitHeader() {
  document.documentElement.style.setProperty('--hdr', `${$('top').offsetHeight}px`);
}
window.addEventListener('resize', fitHeader);

function setLarge(on) {
  document.body.classList.toggle('large', on);
  fitHeader();
  $('large').setAttribute('aria-pressed', String(on));
  writeUrl();
}

$('first').onclick = () => goTo(0);
$('prev').onclick = () => goTo(state.step - 1);
$('next').onclick = () => goTo(state.step + 1);
$('last').onclick = () => goTo(state.scenario.steps.length - 1);
// Dragging the slider shows the step number at once and asks the server once it rests.
let sliderTimer = null;
$('slider').oninput = (e) => {
  const n = Number(e.target.value);
  $('stepLabel').textContent = `step ${n} of ${state.scenario.steps.length - 1}: ${state.scenario.steps[n].kind}`;
  clearTimeout(sliderTimer);
  sliderTimer = setTimeout(() => goTo(n), 150);
};
$('play').onclick = play;
$('large').onclick = () => setLarge(!document.body.classList.contains('large'));
$('fn').onchange = (e) => {
  state.fn = e.target.value;
  state.prevSnap = null;
  goTo(state.step);
};
$('scenario').onchange = async (e) => {
  try {
    await openScenario(await api(`/api/scenario?name=${encodeURIComponent(e.target.value)}`), null, null);
  } catch (err) {
    showError(err.message);
  }
};
$('filterOps').onchange = renderTracefs;
document.querySelectorAll('.tabs [role=tab]').forEach((b) => {
  b.onclick = () => {
    state.tab = b.dataset.tab;
    renderTracefs();
  };
});
document.querySelector('label.upload').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    $('upload').click();
  }
});
$('upload').onchange = async (e) => {
  const f = e.target.files[0];
  e.target.value = '';
  if (!f) return;
  const text = await f.text();
  try {
    const doc = await api(`/api/upload?name=${encodeURIComponent(f.name)}`, { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: text });
    showError('');
    await openScenario(doc, null, null);
  } catch (err) {
    const b = err.body || {};
    showError(b.file ? `${b.file}:${b.line}: ${b.key ? b.key + ': ' : ''}${b.reason} (nothing was run)` : err.message);
    if (b.line) {
      // Show the rejected file with its bad line marked; the scenario shown before stays selected.
      const keep = state.scenario;
      state.scenario = { text, steps: [] };
      renderYaml(b.line);
      state.scenario = keep;
      $('scenarioName').textContent = `${f.name} (rejected)`;
    }
  }
};

document.addEventListener('keydown', (e) => {
  if (e.target.closest('select, input[type=file], textarea') || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.target.id === 'slider' && (e.key === 'ArrowLeft' || e.key === 'ArrowRight')) return; // the slider moves itself
  const k = e.key;
  if (k === 'ArrowRight') goTo(state.step + 1);
  else if (k === 'ArrowLeft') goTo(state.step - 1);
  else if (k === 'Home') goTo(0);
  else if (k === 'End') goTo(state.scenario.steps.length - 1);
  else if (k === 'p' || k === 'P') play();
  else if (k === 'l' || k === 'L') setLarge(!document.body.classList.contains('large'));
  else if (k === 'Escape') $('tip').hidden = true;
  else return;
  e.preventDefault();
});

async function main() {
  fitHeader();
  const u = readUrl();
  if (u.large) setLarge(true);
  try {
    await loadScenarioList();
    const key = u.scenario || 'kprobe-plus-function-tracer';
    await openScenario(await api(`/api/scenario?name=${encodeURIComponent(key)}`), u.step, u.fn);
  } catch (e) {
    showError(e.message);
  }
  document.body.dataset.ready = '1';
}

main();
