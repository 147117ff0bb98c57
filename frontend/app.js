// The tab's controller: holds the view state (run, step, filter, selection, compare runs), loads data through
// api.js, drives the map panels (scatter.js) and the side views, and mirrors state into the URL.

import {createApi} from './api.js';
import {createScatter} from './scatter.js';
import {connectHost, readUrlState, writeUrlState} from './host.js';
import {h, clear, fmtInt, card} from './views/dom.js';
import {createHeader} from './views/header.js';
import {createTimebar} from './views/timebar.js';
import {createLegend} from './views/legend.js';
import {createFilters, computeMask, EMPTY_FILTER, isEmptyFilter} from './views/filters.js';
import {createInspect} from './views/inspect.js';
import {createMetrics} from './views/metrics.js';
import {createMapPanel} from './views/mappanel.js';

export const RUNS_POLL_MS = 5000;
export const PENDING_POLL_MS = 1000;
export const ANIMATION_MS = 650;
export const PLAY_HOLD_MS = 350;
export const PREDICT_THROTTLE_MS = 120;
const DEFAULT_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

const ease = (k) => (k < 0.5 ? 2 * k * k : 1 - (-2 * k + 2) ** 2 / 2);

export function createApp(root, {api = createApi(), renderer = 'auto', host = connectHost()} = {}) {
  const st = {runs: [], run: null, compare: false, compareRuns: [], step: null, filter: {...EMPTY_FILTER}, selected: null, playing: false};
  const panels = [];
  const canon = new Map(); // run -> {ids, index: Map(id -> i)}
  const samples = new Map(); // `${run}\0${id}\0${readyCount}` -> Promise
  const metricsCache = new Map();
  let updates = 0;
  let loadError = null;
  let urlTimer = 0;
  let pollTimer = 0;
  let playTimer = 0;
  let destroyed = false;

  // ---------- layout ----------
  const header = createHeader({
    onRun: (run) => selectRun(run),
    onCompareToggle: () => setCompare(!st.compare),
    onCompareRuns: (runs) => setCompareRuns(runs),
  });
  const timebar = createTimebar({
    onStep: (i) => gotoIndex(i, {animate: false, user: true}),
    onPlay: () => togglePlay(),
    onPrev: () => stepBy(-1),
    onNext: () => stepBy(1),
  });
  const legend = createLegend({onClass: (i) => setFilter({...st.filter, label: st.filter.label === i ? null : i})});
  const filters = createFilters({onChange: (f) => setFilter(f), onFindId: (id) => select(id, {centre: true})});
  const inspect = createInspect({onClose: () => select(null), onFocus: () => centreOnSelection()});
  const metrics = createMetrics();
  const maps = h('div', {class: 'dvi-maps', testid: 'maps'});
  const empty = h('div', {class: 'dvi-empty dvi-hidden', testid: 'empty'});
  const side = h('aside', {class: 'dvi-side'},
    card('Classes', 'legend-card', legend.el),
    card('Query', 'query-card', filters.el),
    card('Selected sample', 'inspect-card', inspect.el),
    card('Projection quality', 'metrics-card', metrics.el));
  const main = h('main', {class: 'dvi-main'}, maps, empty, timebar.el);
  const app = h('div', {class: 'dvi-app', testid: 'dvi-app'}, header.el, h('div', {class: 'dvi-body'}, main, side));
  root.append(app);

  // ---------- helpers ----------
  const runInfo = (name) => st.runs.find((r) => r.run === name) || null;
  const primary = () => panels[0] || null;
  const readySet = (r) => new Set(r && r.status && Array.isArray(r.status.ready) ? r.status.ready : r ? r.steps : []);

  function classesOf(r) {
    const n = r ? r.n_classes || (r.classes || []).length : 0;
    return r && r.classes && r.classes.length ? r.classes : Array.from({length: n}, (_, i) => String(i));
  }
  function colorsOf(r) {
    return r && r.colors && r.colors.length ? r.colors : DEFAULT_COLORS;
  }
  function visibleRuns() {
    return st.compare ? st.compareRuns : st.run ? [st.run] : [];
  }
  function allSteps() {
    const set = new Set();
    for (const name of visibleRuns()) for (const s of (runInfo(name) || {steps: []}).steps) set.add(s);
    return [...set].sort((a, b) => a - b);
  }
  function readyAll() {
    const steps = allSteps();
    const sets = visibleRuns().map((n) => ({r: runInfo(n), set: readySet(runInfo(n))}));
    return new Set(steps.filter((s) => sets.every(({r, set}) => !r || !r.steps.includes(s) || set.has(s))));
  }
  /** The run's own step to show for the shared step `step` (largest step ≤ step, else its first). */
  function stepForRun(run, step) {
    const steps = (runInfo(run) || {steps: []}).steps;
    let best = steps.length ? steps[0] : null;
    for (const s of steps) if (s <= step) best = s;
    return best;
  }
  function previousStep(run, step) {
    const steps = (runInfo(run) || {steps: []}).steps;
    const i = steps.indexOf(step);
    return i > 0 ? steps[i - 1] : null;
  }

  /** Aligns a projection to the run's canonical sample order (the first projection seen) and packs positions. */
  function align(run, proj) {
    if (proj._aligned) return proj._aligned;
    let c = canon.get(run);
    if (!c) {
      c = {ids: proj.ids, index: null};
      canon.set(run, c);
    }
    const n = c.ids.length;
    let same = proj.ids.length === n;
    for (let i = 0; same && i < n; i++) if (proj.ids[i] !== c.ids[i]) same = false;
    const pos = new Float32Array(2 * n);
    let labels;
    let pred;
    let conf;
    let split;
    if (same) {
      for (let i = 0; i < n; i++) {
        pos[2 * i] = proj.x[i];
        pos[2 * i + 1] = proj.y[i];
      }
      ({labels, pred, conf, split} = proj);
    } else {
      if (!c.index) c.index = new Map(Array.from(c.ids, (id, i) => [id, i]));
      pos.fill(NaN);
      labels = new Int32Array(n).fill(-1);
      pred = new Int32Array(n).fill(-1);
      conf = new Float32Array(n);
      split = new Uint8Array(n);
      for (let j = 0; j < proj.ids.length; j++) {
        const i = c.index.get(proj.ids[j]);
        if (i === undefined) continue;
        pos[2 * i] = proj.x[j];
        pos[2 * i + 1] = proj.y[j];
        labels[i] = proj.labels[j];
        pred[i] = proj.pred[j];
        conf[i] = proj.conf[j];
        split[i] = proj.split[j];
      }
    }
    const flagSets = {};
    for (const [k, ids] of Object.entries(proj.flags || {})) flagSets[k] = new Set(ids);
    proj._aligned = {n, ids: c.ids, pos, labels, pred, conf, split, flagSets, bounds: proj.bounds, accuracy: proj.accuracy || null, step: proj.step};
    return proj._aligned;
  }

  function indexOfId(run, id) {
    const c = canon.get(run);
    if (!c) return -1;
    if (!c.index) c.index = new Map(Array.from(c.ids, (v, i) => [v, i]));
    const i = c.index.get(id);
    return i === undefined ? -1 : i;
  }

  function maskFor(panel, shown) {
    return computeMask(shown.data, st.filter, shown.prev ? shown.prev.pred : null, shown.data.flagSets);
  }

  // ---------- panels ----------
  function makePanel(run) {
    const view = createMapPanel({run, compact: st.compare});
    maps.append(view.el);
    const panel = {run, view, shown: null, token: 0, timer: 0, anim: 0, hover: {seq: 0, inflight: false, last: 0, want: null, predicted: null, index: -1, px: 0, py: 0}};
    const r = runInfo(run);
    panel.scatter = createScatter(view.canvas, {
      renderer,
      onClick: (index) => onMapClick(panel, index),
      onHover: (index, xy, pos) => onMapHover(panel, index, xy, pos),
    });
    panel.scatter.set({palette: colorsOf(r)});
    return panel;
  }

  function syncPanels() {
    const want = visibleRuns();
    const have = panels.map((p) => p.run);
    if (want.join('\n') === have.join('\n') && panels.every((p) => p.view.el.classList.contains('dvi-compact') === st.compare)) return false;
    for (const p of panels.splice(0)) destroyPanel(p);
    clear(maps);
    maps.classList.toggle('dvi-compare', st.compare);
    for (const run of want) panels.push(makePanel(run));
    return true;
  }

  function destroyPanel(p) {
    p.token++;
    clearTimeout(p.timer);
    cancelAnimationFrame(p.anim);
    p.scatter.destroy();
    p.view.el.remove();
  }

  /** Loads and shows the panel's step for the shared step. Resolves when shown or superseded. */
  async function loadPanel(panel, sharedStep, {animate}) {
    const step = stepForRun(panel.run, sharedStep);
    if (step === null) return;
    if (panel.shown && panel.shown.step === step && !panel.anim) {
      panel.view.setProgress(null);
      return;
    }
    const token = ++panel.token;
    clearTimeout(panel.timer);
    const prevStep = previousStep(panel.run, step);
    let proj;
    let prev = null;
    try {
      [proj, prev] = await Promise.all([api.projection(panel.run, step), prevStep === null ? null : api.projection(panel.run, prevStep).catch(() => null)]);
    } catch (e) {
      if (token !== panel.token) return;
      panel.view.setProgress(null);
      if (!panel.shown) panel.view.setMessage(`Could not load step ${step}: ${e.message}`);
      else header.setStatus(`Step ${step}: ${e.message}`, 'error');
      return;
    }
    if (token !== panel.token || destroyed) return;
    if (proj.pending) {
      // Keep the last map on screen under a progress veil and ask again.
      panel.view.setProgress({step, progress: proj.progress ?? null, text: proj.status === 'queued' ? `Step ${step} is queued for projection…` : `Projecting step ${step}…`});
      panel.pendingStep = step;
      if (!panel.shown) await showFallback(panel, step, token);
      refresh();
      await new Promise((resolve) => {
        panel.timer = setTimeout(resolve, PENDING_POLL_MS);
      });
      if (token !== panel.token) return;
      return loadPanel(panel, sharedStep, {animate});
    }
    panel.pendingStep = null;
    const r = runInfo(panel.run);
    const image = r && r.has_head === false ? null : await api.landscape(panel.run, step).catch(() => null);
    if (token !== panel.token || destroyed) return;
    panel.view.setProgress(null);
    panel.view.setMessage('');
    const next = {step, data: align(panel.run, proj), prev: prev && !prev.pending ? align(panel.run, prev) : null, land: image ? {image, bounds: proj.bounds} : null};
    await show(panel, next, animate, token);
    // Prefetch the following step so play and "next" are instant.
    const steps = (runInfo(panel.run) || {steps: []}).steps;
    const ni = steps.indexOf(step) + 1;
    if (ni > 0 && ni < steps.length && readySet(r).has(steps[ni])) {
      api.projection(panel.run, steps[ni]).catch(() => null);
      if (!(r && r.has_head === false)) api.landscape(panel.run, steps[ni]).catch(() => null);
    }
  }

  /** While `step` is being projected and the panel is empty, show the latest ready step before it (never a blank map). */
  async function showFallback(panel, step, token) {
    const r = runInfo(panel.run);
    const ready = readySet(r);
    const candidates = (r ? r.steps : []).filter((s) => s < step && ready.has(s));
    if (!candidates.length) return;
    const fb = candidates[candidates.length - 1];
    try {
      const proj = await api.projection(panel.run, fb);
      if (proj.pending || token !== panel.token) return;
      const image = r && r.has_head === false ? null : await api.landscape(panel.run, fb).catch(() => null);
      if (token !== panel.token || panel.shown) return;
      await show(panel, {step: fb, data: align(panel.run, proj), prev: null, land: image ? {image, bounds: proj.bounds} : null}, false, token);
    } catch (_) {
      /* keep the veil */
    }
  }

  function show(panel, next, animate, token) {
    const cur = panel.shown;
    const {mask, count} = maskFor(panel, next);
    panel.matched = count;
    const base = {labels: next.data.labels, pred: next.data.pred, highlight: mask};
    cancelAnimationFrame(panel.anim);
    panel.anim = 0;
    panel.shown = next;
    applySelection(panel);
    if (st.selected !== null) refreshSelection();
    refresh();
    if (!animate || !cur || cur.step === next.step) {
      panel.scatter.set({...base, from: next.data.pos, t: 0, landscapes: {a: next.land, b: null, fade: 0}});
      panel.scatter.draw();
      return Promise.resolve();
    }
    const from = panel.scatter.positions();
    const fromLand = cur.land;
    panel.scatter.set({...base, from, to: next.data.pos, t: 0, landscapes: {a: fromLand, b: next.land, fade: 0}});
    const t0 = performance.now();
    return new Promise((resolve) => {
      const frame = (now) => {
        if (token !== panel.token) return resolve();
        const k = Math.min(1, (now - t0) / ANIMATION_MS);
        const e = ease(k);
        panel.scatter.set({t: e, landscapes: {a: fromLand, b: next.land, fade: e}});
        panel.scatter.draw();
        if (k < 1) {
          panel.anim = requestAnimationFrame(frame);
          return;
        }
        panel.anim = 0;
        panel.scatter.set({from: next.data.pos, t: 0, highlight: mask, landscapes: {a: next.land, b: null, fade: 0}});
        panel.scatter.draw();
        refresh();
        resolve();
      };
      panel.anim = requestAnimationFrame(frame);
    });
  }

  function loadAll({animate}) {
    return Promise.all(panels.map((p) => loadPanel(p, st.step, {animate})));
  }

  // ---------- navigation ----------
  function gotoIndex(i, {animate, user}) {
    const steps = allSteps();
    if (!steps.length) return Promise.resolve();
    const idx = Math.max(0, Math.min(steps.length - 1, i));
    if (user && st.playing) stopPlay();
    st.step = steps[idx];
    refresh();
    saveUrl();
    loadMetrics();
    refreshSelection();
    return loadAll({animate});
  }
  function stepIndex() {
    return Math.max(0, allSteps().indexOf(st.step));
  }
  function stepBy(d) {
    return gotoIndex(stepIndex() + d, {animate: true, user: true});
  }
  function togglePlay() {
    if (st.playing) return stopPlay();
    const steps = allSteps();
    if (steps.length < 2) return;
    st.playing = true;
    if (stepIndex() >= steps.length - 1) gotoIndex(0, {animate: false}).then(() => schedulePlay());
    else playNext();
    refresh();
  }
  function stopPlay() {
    st.playing = false;
    clearTimeout(playTimer);
    refresh();
  }
  function schedulePlay() {
    clearTimeout(playTimer);
    if (st.playing) playTimer = setTimeout(playNext, PLAY_HOLD_MS);
  }
  function playNext() {
    if (!st.playing) return;
    const i = stepIndex();
    if (i >= allSteps().length - 1) return stopPlay();
    gotoIndex(i + 1, {animate: true}).then(() => schedulePlay());
  }

  // ---------- filter and selection ----------
  function setFilter(f) {
    st.filter = {...f};
    for (const p of panels) {
      if (!p.shown) continue;
      const {mask, count} = maskFor(p, p.shown);
      p.matched = count;
      p.scatter.set({highlight: mask});
      if (!p.anim) p.scatter.draw();
    }
    saveUrl();
    refresh();
  }

  function onMapClick(panel, index) {
    if (index < 0) return select(null);
    const c = canon.get(panel.run);
    select(c ? c.ids[index] : index);
  }

  function select(id, {centre = false} = {}) {
    st.selected = id;
    for (const p of panels) applySelection(p);
    refreshSelection();
    if (centre) centreOnSelection();
    saveUrl();
    refresh();
  }

  function applySelection(panel) {
    const idx = st.selected === null ? -1 : indexOfId(panel.run, st.selected);
    panel.scatter.set({selected: idx});
    if (st.selected === null) {
      panel.scatter.set({trajectory: null});
      panel.trajectoryShown = false;
    }
  }

  function centreOnSelection() {
    for (const p of panels) {
      const idx = st.selected === null ? -1 : indexOfId(p.run, st.selected);
      if (idx < 0) continue;
      const pos = p.scatter.positions();
      const v = p.scatter.getView();
      p.scatter.setView({cx: pos[2 * idx], cy: pos[2 * idx + 1], scale: Math.max(v.scale, v.scale * 1.0), autoFit: false});
    }
  }

  function sampleOf(run, id) {
    const r = runInfo(run);
    const key = `${run}\u0000${id}\u0000${readySet(r).size}`;
    if (!samples.has(key)) {
      const p = api.sample(run, id);
      samples.set(key, p);
      p.catch(() => samples.delete(key));
    }
    return samples.get(key);
  }

  let selectionSeq = 0;
  function refreshSelection() {
    const seq = ++selectionSeq;
    const id = st.selected;
    const p0 = primary();
    if (id === null || !p0) {
      inspect.update(null);
      return;
    }
    const r0 = runInfo(p0.run);
    const base = () => {
      const idx = indexOfId(p0.run, id);
      const d = p0.shown && p0.shown.data;
      const now = d && idx >= 0 && d.labels[idx] >= 0 ? {label: d.labels[idx], pred: d.pred[idx], conf: d.conf[idx], split: d.split[idx]} : null;
      return {id, run: p0.run, classes: classesOf(r0), colors: colorsOf(r0), step: p0.shown ? p0.shown.step : st.step, now, missing: !!d && !now,
        thumbnailUrl: r0 && r0.has_inputs === false ? null : api.thumbnailUrl(p0.run, id)};
    };
    inspect.update({...base(), loading: true});
    for (const p of panels) {
      const r = runInfo(p.run);
      sampleOf(p.run, id).then((sample) => {
        if (seq !== selectionSeq) return;
        const pts = sample.steps.map((s, i) => [sample.x[i], sample.y[i]]).filter((q) => q[0] !== null && q[1] !== null);
        const shownStep = p.shown ? p.shown.step : null;
        const upto = sample.steps.map((s, i) => (shownStep === null || s <= shownStep ? [sample.x[i], sample.y[i]] : null)).filter((q) => q && q[0] !== null);
        p.scatter.set({trajectory: {points: upto.length ? upto : pts, color: colorsOf(r)[sample.label % colorsOf(r).length]}});
        p.trajectoryShown = true;
        if (p === primary()) {
          const b = base();
          inspect.update({...b, sample, thumbnailUrl: sample.has_thumbnail === false ? null : b.thumbnailUrl, loading: false});
        }
      }, (e) => {
        if (seq !== selectionSeq) return;
        if (p === primary()) inspect.update({id, run: p.run, error: e.status === 404 ? `Sample ${id} is not in run ${p.run}.` : e.message});
      });
    }
  }

  // ---------- hover readout (model prediction at the cursor, throttled) ----------
  function onMapHover(panel, index, xy, pos) {
    const hv = panel.hover;
    if (!xy) {
      hv.want = null;
      hv.seq++;
      panel.view.setReadout(null);
      return;
    }
    hv.px = pos.px;
    hv.py = pos.py;
    hv.index = index;
    hv.want = xy;
    renderReadout(panel);
    const r = runInfo(panel.run);
    if (!panel.shown || (r && r.has_head === false)) return;
    requestPredict(panel);
  }

  function requestPredict(panel) {
    const hv = panel.hover;
    if (hv.inflight || !hv.want) return;
    const wait = hv.last + PREDICT_THROTTLE_MS - performance.now();
    if (wait > 0) {
      clearTimeout(hv.timer);
      hv.timer = setTimeout(() => requestPredict(panel), wait);
      return;
    }
    const xy = hv.want;
    const step = panel.shown.step;
    const seq = ++hv.seq;
    hv.inflight = true;
    hv.last = performance.now();
    api.predict(panel.run, step, [xy]).then((res) => {
      if (seq !== hv.seq || !hv.want) return;
      const probs = res.probs && res.probs[0];
      const cls = res.pred ? res.pred[0] : probs.indexOf(Math.max(...probs));
      hv.predicted = {cls, prob: probs ? probs[cls] : null, at: xy};
      renderReadout(panel);
    }, () => {
      hv.predicted = null;
    }).finally(() => {
      hv.inflight = false;
      if (hv.want && hv.want !== xy) requestPredict(panel);
    });
  }

  function renderReadout(panel) {
    const hv = panel.hover;
    if (!hv.want) return panel.view.setReadout(null);
    const r = runInfo(panel.run);
    const d = panel.shown && panel.shown.data;
    let point = null;
    if (d && hv.index >= 0) point = {id: d.ids[hv.index], label: d.labels[hv.index], pred: d.pred[hv.index], conf: d.conf[hv.index]};
    const hasHead = !(r && r.has_head === false);
    panel.view.setReadout({px: hv.px, py: hv.py, point, predicted: hasHead ? hv.predicted : null, pendingPredict: hasHead && !hv.predicted, classes: classesOf(r), colors: colorsOf(r)});
  }

  // ---------- metrics ----------
  let metricsSeq = 0;
  function loadMetrics() {
    const p0 = primary();
    if (!p0 || st.step === null) return metrics.update(null);
    const run = p0.run;
    const step = stepForRun(run, st.step);
    const key = `${run}\u0000${step}`;
    const seq = ++metricsSeq;
    const cached = metricsCache.get(key);
    const pr = cached || api.metrics(run, step);
    if (!cached) metricsCache.set(key, pr);
    pr.then((m) => {
      if (m.pending) metricsCache.delete(key);
      if (seq !== metricsSeq) return;
      metrics.update(m.pending ? {pending: true} : {metrics: m});
      if (m.pending) setTimeout(() => seq === metricsSeq && loadMetrics(), 2 * PENDING_POLL_MS);
    }, (e) => {
      metricsCache.delete(key);
      if (seq === metricsSeq) metrics.update({error: e.status === 404 ? 'not computed for this run' : e.message});
    });
  }

  // ---------- runs, compare, live updates ----------
  function selectRun(run) {
    if (!runInfo(run)) return;
    stopPlay();
    st.run = run;
    const steps = runInfo(run).steps;
    if (!steps.includes(st.step)) st.step = defaultStep(run);
    rebuild();
  }

  function defaultStep(run) {
    const r = runInfo(run);
    if (!r || !r.steps.length) return null;
    const ready = r.steps.filter((s) => readySet(r).has(s));
    return ready.length ? ready[ready.length - 1] : r.steps[0];
  }

  function setCompare(on) {
    if (on && st.runs.length < 2) return;
    stopPlay();
    st.compare = on;
    if (on && st.compareRuns.filter((n) => runInfo(n)).length < 2) {
      const others = st.runs.map((r) => r.run).filter((n) => n !== st.run);
      st.compareRuns = [st.run, ...others].slice(0, 2);
    }
    if (!on && st.compareRuns.length) st.run = st.compareRuns.includes(st.run) ? st.run : st.compareRuns[0];
    rebuild();
  }

  function setCompareRuns(runs) {
    const ordered = st.runs.map((r) => r.run).filter((n) => runs.includes(n));
    if (ordered.length < 1) return;
    st.compareRuns = ordered;
    if (!ordered.includes(st.run)) st.run = ordered[0];
    rebuild();
  }

  function rebuild() {
    syncPanels();
    const steps = allSteps();
    if (st.step === null || !steps.includes(st.step)) st.step = steps.length ? steps[steps.length - 1] : null;
    refresh();
    saveUrl();
    loadMetrics();
    refreshSelection();
    loadAll({animate: false});
  }

  async function pollRuns() {
    clearTimeout(pollTimer);
    try {
      const runs = await api.runs();
      if (destroyed) return;
      loadError = null;
      const before = JSON.stringify(st.runs.map((r) => [r.run, r.steps, r.status && r.status.ready]));
      st.runs = runs;
      const after = JSON.stringify(st.runs.map((r) => [r.run, r.steps, r.status && r.status.ready]));
      if (st.run && !runInfo(st.run)) st.run = runs.length ? runs[0].run : null;
      st.compareRuns = st.compareRuns.filter((n) => runInfo(n));
      if (st.compare && st.compareRuns.length < 1) st.compare = false;
      if (!st.run && runs.length) {
        st.run = runs[0].run;
        st.step = defaultStep(st.run);
        rebuild();
      } else if (before !== after) {
        if (syncPanels()) loadAll({animate: false});
        for (const p of panels) if (!p.shown && !p.pendingStep) loadPanel(p, st.step, {animate: false});
        if (!metricsCache.size) loadMetrics();
      }
      lastPoll = Date.now();
      refresh();
    } catch (e) {
      loadError = e.message;
      refresh();
    } finally {
      if (!destroyed) pollTimer = setTimeout(pollRuns, RUNS_POLL_MS);
    }
  }
  let lastPoll = 0;

  // ---------- URL state ----------
  function saveUrl() {
    clearTimeout(urlTimer);
    urlTimer = setTimeout(() => {
      writeUrlState({
        run: st.run,
        step: st.step === null ? null : String(st.step),
        sel: st.selected === null ? null : String(st.selected),
        compare: st.compare ? st.compareRuns.join(',') : null,
      });
    }, 150);
  }

  // ---------- rendering of the chrome ----------
  function refresh() {
    updates++;
    const p0 = primary();
    const r0 = p0 ? runInfo(p0.run) : runInfo(st.run);
    header.update({runs: st.runs, run: st.run, compare: st.compare, compareRuns: st.compareRuns});
    const steps = allSteps();
    const acc = !st.compare && p0 && p0.shown ? p0.shown.data.accuracy : null;
    timebar.update({steps, index: stepIndex(), ready: readyAll(), playing: st.playing, accuracy: acc, step: st.step});
    legend.update({classes: classesOf(r0), colors: colorsOf(r0), activeLabel: st.filter.label});
    const flags = [...new Set(visibleRuns().flatMap((n) => (runInfo(n) || {}).flags || []))];
    filters.update({classes: classesOf(r0), flags, value: st.filter, matched: p0 && p0.shown ? p0.matched : 0, total: p0 && p0.shown ? p0.shown.data.n : r0 ? r0.n || 0 : 0});
    for (const p of panels) {
      p.view.setTitle({step: p.shown ? p.shown.step : null, accuracy: p.shown ? p.shown.data.accuracy : null, renderer: p.scatter.renderer,
        matched: isEmptyFilter(st.filter) ? null : p.matched});
    }
    // Empty states.
    if (loadError && !st.runs.length) showEmpty(`Could not reach the DVI plugin: ${loadError}`);
    else if (!st.runs.length && lastPoll) showEmpty('No DVI data in this logdir yet. Log snapshots with dvi.summary.snapshot(writer, step, features=…, labels=…, head=…); they appear here while training runs.');
    else showEmpty(null);
    // Status line.
    if (loadError) header.setStatus(`Offline: ${loadError}`, 'error');
    else if (r0 && r0.status) {
      const s = r0.status;
      const ready = (s.ready || []).length;
      if (s.state === 'error') header.setStatus(`Projection error: ${s.error || 'unknown'}`, 'error');
      else if (s.state === 'running' || s.state === 'queued') {
        const pct = s.progress === null || s.progress === undefined ? '' : ` · ${Math.round(100 * s.progress)}%`;
        header.setStatus(`Projecting${s.running !== null && s.running !== undefined ? ` step ${s.running}` : ''}${pct} · ${ready}/${r0.steps.length} ready`, 'busy');
      } else if (s.state === 'not projected') header.setStatus('Not projected yet', 'busy');
      else header.setStatus(`${r0.steps.length} steps · ${fmtInt(r0.n || 0)} samples · live`, 'live');
    } else header.setStatus(st.runs.length ? 'live' : '', 'live');
  }

  function showEmpty(text) {
    empty.classList.toggle('dvi-hidden', !text);
    empty.textContent = text || '';
    maps.classList.toggle('dvi-hidden', !!text);
    timebar.el.classList.toggle('dvi-hidden', !!text);
  }

  // ---------- keyboard ----------
  function onKey(e) {
    const t = e.target;
    const tag = t && t.tagName;
    if (tag === 'INPUT' && t.type !== 'checkbox' && t.type !== 'range') return;
    if (tag === 'SELECT' || tag === 'TEXTAREA' || e.altKey || e.ctrlKey || e.metaKey) return;
    if (tag === 'INPUT' && t.type === 'range') return; // the slider handles its own arrows
    if (e.key === 'ArrowRight') stepBy(1);
    else if (e.key === 'ArrowLeft') stepBy(-1);
    else if (e.key === ' ' && tag !== 'BUTTON') togglePlay();
    else if (e.key === 'Escape') select(null);
    else return;
    e.preventDefault();
  }
  document.addEventListener('keydown', onKey);

  // ---------- test hooks (read-only) ----------
  const debug = {};
  const panelInfo = (p) => ({
    run: p.run,
    step: p.shown ? p.shown.step : null,
    pending: p.pendingStep ?? null,
    pointsDrawn: p.shown ? p.scatter.count : 0,
    highlighted: p.shown ? p.scatter.highlighted : 0,
    frames: p.scatter.frames,
    renderer: p.scatter.renderer,
    landscape: !!(p.shown && p.shown.land),
    animating: !!p.anim,
    selected: st.selected === null ? -1 : indexOfId(p.run, st.selected),
    trajectory: !!p.trajectoryShown,
  });
  Object.defineProperties(debug, {
    run: {get: () => st.run, enumerable: true},
    step: {get: () => st.step, enumerable: true},
    steps: {get: () => allSteps(), enumerable: true},
    compare: {get: () => st.compare, enumerable: true},
    compareRuns: {get: () => st.compareRuns.slice(), enumerable: true},
    playing: {get: () => st.playing, enumerable: true},
    selected: {get: () => st.selected, enumerable: true},
    filter: {get: () => JSON.parse(JSON.stringify(st.filter)), enumerable: true},
    pointsDrawn: {get: () => (primary() ? panelInfo(primary()).pointsDrawn : 0), enumerable: true},
    highlighted: {get: () => (primary() ? panelInfo(primary()).highlighted : 0), enumerable: true},
    matched: {get: () => (primary() && primary().shown ? primary().matched : 0), enumerable: true},
    frames: {get: () => panels.reduce((a, p) => a + p.scatter.frames, 0), enumerable: true},
    renderer: {get: () => (primary() ? primary().scatter.renderer : null), enumerable: true},
    ready: {get: () => panels.length > 0 && panels.every((p) => p.shown && p.shown.step === stepForRun(p.run, st.step) && !p.anim), enumerable: true},
    panels: {get: () => panels.map(panelInfo), enumerable: true},
    updates: {get: () => updates, enumerable: true},
    fetches: {get: () => ({...api.stats}), enumerable: true},
  });
  debug.positions = (i = 0) => (panels[i] ? Array.from(panels[i].scatter.positions()) : []);
  /** Map geometry of panel i: view centre/scale (CSS px per data unit), canvas rect, and the shown step's bounds. */
  debug.geometry = (i = 0) => {
    const p = panels[i];
    if (!p) return null;
    const v = p.scatter.getView();
    const rect = p.view.canvas.getBoundingClientRect();
    return {cx: v.cx, cy: v.cy, scale: v.scale, left: rect.left, top: rect.top, width: rect.width, height: rect.height,
      bounds: p.shown ? Array.from(p.shown.data.bounds) : null};
  };
  debug.screenPosition = (id, i = 0) => {
    const p = panels[i];
    if (!p) return null;
    const idx = indexOfId(p.run, id);
    if (idx < 0) return null;
    const pos = p.scatter.positions();
    const [x, y] = p.scatter.toScreen(pos[2 * idx], pos[2 * idx + 1]);
    const rect = p.view.canvas.getBoundingClientRect();
    return {x: rect.left + x, y: rect.top + y};
  };
  Object.freeze(debug);
  try {
    Object.defineProperty(window, '__dvi', {value: debug, configurable: true, writable: false});
  } catch (_) {
    /* already defined */
  }

  // ---------- start ----------
  async function start() {
    refresh();
    const [saved] = await Promise.all([readUrlState(host), pollRunsOnce()]);
    if (host.available) host.on('experimental.DataReloaded', () => pollRuns());
    const names = st.runs.map((r) => r.run);
    if (saved.compare) {
      const cr = String(saved.compare).split(',').filter((n) => names.includes(n));
      if (cr.length >= 2) {
        st.compare = true;
        st.compareRuns = cr;
      }
    }
    st.run = saved.run && names.includes(saved.run) ? saved.run : st.compare ? st.compareRuns[0] : names[0] || null;
    const savedStep = saved.step !== undefined && saved.step !== null && saved.step !== '' ? Number(saved.step) : null;
    st.step = savedStep !== null && allSteps().includes(savedStep) ? savedStep : st.run ? defaultStep(st.run) : null;
    if (saved.sel !== undefined && saved.sel !== null && /^\d+$/.test(String(saved.sel))) st.selected = Number(saved.sel);
    if (st.run) rebuild();
    else refresh();
    pollTimer = setTimeout(pollRuns, RUNS_POLL_MS);
  }
  async function pollRunsOnce() {
    try {
      st.runs = await api.runs();
      lastPoll = Date.now();
    } catch (e) {
      loadError = e.message;
    }
  }

  function destroy() {
    destroyed = true;
    clearTimeout(pollTimer);
    clearTimeout(playTimer);
    document.removeEventListener('keydown', onKey);
    for (const p of panels.splice(0)) destroyPanel(p);
    app.remove();
  }

  const ready = start();
  return {ready, destroy};
}
