// The tab: one store (state/store.js) and what reacts to it. Actions change the store; map panels (panel.js)
// load and draw and report what they show; the chrome (header, time bar, side cards) is rendered from pure
// selectors (state/selectors.js) once per change, so every label agrees with the maps on screen.

import {createApi} from './api.js';
import {connectHost, readUrlState} from './host.js';
import {REFERENCE} from './reference.js';
import {createStore, INITIAL_STATE} from './state/store.js';
import {createAligner} from './state/align.js';
import {decodeState} from './state/urlstate.js';
import {DEFAULT_CAMERA, centreOn} from './state/camera.js';
import * as sel from './state/selectors.js';
import {createPanel} from './panel.js';
import {createPlayback} from './playback.js';
import {syncUrl} from './urlsync.js';
import {installDebug} from './debug.js';
import {createSelection} from './selection.js';
import {createQuality} from './quality.js';
import {createDynamicsHost} from './dynamicshost.js';
import {createLayersHost} from './layershost.js';
import {createAlarmsHost} from './alarmshost.js';
import {nearestIndex, overviewData} from './state/timeline.js';
import {h, card, clear} from './views/dom.js';
import {createHeader} from './views/header.js';
import {createTimebar} from './views/timebar.js';
import {createLegend} from './views/legend.js';
import {createFilters} from './views/filters.js';
import {createInspect} from './views/inspect.js';
import {createMetrics} from './views/metrics.js';
import {createAlarmList} from './views/alarms.js';

export const RUNS_POLL_MS = 5000;

export function createApp(root, {api = createApi(), renderer = 'auto', host = connectHost(), prefetch = true} = {}) {
  const store = createStore(INITIAL_STATE);
  const aligner = createAligner();
  const panels = [];
  let destroyed = false;
  let pollTimer = 0;

  // ---------- actions ----------
  const actions = {
    goto(index, {animate = false, user = false} = {}) {
      const steps = sel.allSteps(store.get());
      if (!steps.length) return Promise.resolve();
      if (user) playback.stop();
      const step = steps[Math.max(0, Math.min(steps.length - 1, index))];
      store.set(user ? {step, follow: false} : {step});
      return loadAll({animate});
    },
    stepBy(d) {
      const s = store.get();
      return actions.goto(sel.allSteps(s).indexOf(s.step) + d, {animate: true, user: true});
    },
    live() {
      playback.stop();
      store.set({follow: true, step: sel.newestStep(store.get())});
      loadAll({animate: true});
    },
    setFilter(filter) {
      store.set({filter: {...filter}});
    },
    select(id, {centre = false} = {}) {
      store.set({selected: id});
      if (centre) actions.centre();
    },
    centre() {
      const id = store.get().selected;
      const p = panels.find((q) => q.positionOf(id));
      if (!p || !p.shown) return;
      const [x, y] = p.positionOf(id);
      actions.setCamera(p.run, centreOn(cameraOf(p.run), p.shown.data.bounds, x, y, 2));
    },
    setCamera(run, camera) {
      const s = store.get();
      store.set(s.linked ? {camera} : {cameras: {...s.cameras, [run]: camera}});
    },
    toggleLinked() {
      const s = store.get();
      // Unlinking starts every panel from the shared camera; linking takes the first panel's.
      const first = sel.visibleRuns(s)[0];
      if (s.linked) store.set({linked: false, cameras: Object.fromEntries(sel.visibleRuns(s).map((r) => [r, s.camera]))});
      else store.set({linked: true, camera: (first && s.cameras[first]) || s.camera});
    },
    selectRun(run) {
      if (!sel.runInfo(store.get(), run)) return;
      playback.stop();
      store.set({run, zoom: null});
      rebuild();
    },
    setCompare(on) {
      const s = store.get();
      if (on && s.runs.length < 2) return;
      playback.stop();
      if (on) {
        const chosen = s.compareRuns.filter((n) => sel.runInfo(s, n));
        const runs = chosen.length >= 2 ? chosen : [s.run, ...s.runs.map((r) => r.run).filter((n) => n !== s.run)].slice(0, 2);
        store.set({compare: true, compareRuns: runs});
      } else {
        store.set({compare: false, run: s.compareRuns.includes(s.run) ? s.run : s.compareRuns[0] || s.run});
      }
      rebuild();
    },
    setCompareRuns(runs) {
      const s = store.get();
      const valid = runs.filter((n) => sel.runInfo(s, n));
      if (!valid.length) return;
      store.set({compareRuns: valid, run: valid.includes(s.run) ? s.run : valid[0]});
      rebuild();
    },
    toggleSide() {
      store.set({sideOpen: !store.get().sideOpen});
    },
    setView(view) {
      store.set({view});
      if (view === 'map') for (const p of panels) p.scatter.draw();
    },
    /** Moves to the logged step nearest to `step` (alarms and layer statistics may name a step between two). */
    gotoStep(step) {
      const i = nearestIndex(sel.allSteps(store.get()), step);
      if (i >= 0) return actions.goto(i, {user: true});
      return Promise.resolve();
    },
    /** Zooms the time bar into the step range [lo, hi] (null: every step). */
    setZoom(range) {
      store.set({zoom: range ? [Math.min(...range), Math.max(...range)] : null});
    },
  };
  const playback = createPlayback({store, goto: (i) => actions.goto(i, {animate: true})});
  const cameraOf = (run) => {
    const s = store.get();
    return s.linked ? s.camera : s.cameras[run] || s.camera || DEFAULT_CAMERA;
  };

  // ---------- layout ----------
  const header = createHeader({
    onRun: actions.selectRun, onCompareToggle: () => actions.setCompare(!store.get().compare),
    onCompareRuns: actions.setCompareRuns, onLinkToggle: actions.toggleLinked, onSideToggle: actions.toggleSide,
    onView: actions.setView,
  });
  const timebar = createTimebar({
    onStep: (step) => actions.gotoStep(step), onPlay: () => playback.toggle(),
    onPrev: () => actions.stepBy(-1), onNext: () => actions.stepBy(1), onLive: actions.live, onZoom: actions.setZoom,
  });
  const alarmList = createAlarmList({onStep: (step) => actions.gotoStep(step)});
  const legend = createLegend({onClass: (i) => actions.setFilter({...store.get().filter, label: store.get().filter.label === i ? null : i})});
  const filters = createFilters({onChange: actions.setFilter, onFindId: (id) => actions.select(id, {centre: true})});
  const inspect = createInspect({onClose: () => actions.select(null), onFocus: actions.centre});
  const metrics = createMetrics({reference: REFERENCE});
  const maps = h('div', {class: 'dvi-maps', testid: 'maps'});
  const empty = h('div', {class: 'dvi-empty dvi-hidden', testid: 'empty'});
  const dynamicsBox = h('div', {class: 'dvi-dynamics-box dvi-hidden', testid: 'dynamics'});
  const layersBox = h('div', {class: 'dvi-dynamics-box dvi-hidden', testid: 'layers'});
  const alarmsCard = card('Alarms', 'alarms-card', alarmList.el);
  const side = h('aside', {class: 'dvi-side', testid: 'side'},
    alarmsCard,
    card('Classes and background', 'legend-card', legend.el),
    card('Query', 'query-card', filters.el),
    card('Selected sample', 'inspect-card', inspect.el),
    card('Projection quality', 'metrics-card', metrics.el));
  const main = h('main', {class: 'dvi-main'}, maps, dynamicsBox, layersBox, empty, timebar.el);
  const body = h('div', {class: 'dvi-body'}, main, side);
  const app = h('div', {class: 'dvi-app', testid: 'dvi-app'}, header.el, body);
  root.append(app);

  const selection = createSelection({store, api, aligner, panels: () => panels, render: (m) => inspect.update(m)});
  const quality = createQuality({store, api, render: (entries) => metrics.update(entries)});
  const dynamics = createDynamicsHost({container: dynamicsBox, api, actions});
  const layers = createLayersHost({container: layersBox, api, actions});
  const alarms = createAlarmsHost({store, api});
  const overviewOf = memoOverview();

  // ---------- panels ----------
  function syncPanels() {
    const s = store.get();
    const want = sel.visibleRuns(s);
    if (want.join('\n') === panels.map((p) => p.run).join('\n')) return false;
    for (const p of panels.splice(0)) p.destroy();
    clear(maps);
    maps.classList.toggle('dvi-compare', s.compare);
    const hooks = {
      onSelectIndex: (run, index) => {
        const ids = aligner.ids(run);
        actions.select(index >= 0 && ids ? ids[index] : null);
      },
      onCamera: actions.setCamera,
    };
    for (const run of want) {
      const p = createPanel({run, store, api, aligner, renderer, compact: s.compare, container: maps, hooks, prefetch});
      p.setCamera(cameraOf(run));
      panels.push(p);
    }
    return true;
  }

  function loadAll({animate}) {
    return Promise.all(panels.map((p) => p.load({animate})));
  }

  /** After the visible runs change: panels, a valid step, and load. */
  function rebuild() {
    syncPanels();
    const s = store.get();
    const steps = sel.allSteps(s);
    if (s.follow || s.step === null || !steps.includes(s.step)) store.set({step: steps.length ? steps[steps.length - 1] : null});
    loadAll({animate: false});
  }

  // ---------- reactions ----------
  store.subscribe((s, prev) => {
    if (s.filter !== prev.filter) for (const p of panels) p.applyFilter();
    if (s.selected !== prev.selected) for (const p of panels) p.applySelection();
    if (s.camera !== prev.camera || s.cameras !== prev.cameras || s.linked !== prev.linked) for (const p of panels) p.setCamera(cameraOf(p.run));
    if (prev.playing && !s.playing) for (const p of panels) p.refreshTiles();
    scheduleRender();
  });

  // ---------- rendering of the chrome (once per batch of changes) ----------
  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    queueMicrotask(() => {
      renderQueued = false;
      if (!destroyed) render(store.get());
    });
  }

  function render(s) {
    const runs = sel.visibleRuns(s);
    const r0 = sel.runInfo(s, runs[0] || s.run);
    header.update({runs: s.runs, run: s.run, compare: s.compare, chips: sel.compareChips(s), linked: s.linked, sideOpen: s.sideOpen, view: s.view});
    header.setStatus(sel.statusLine(s));
    const tb = sel.timebarModel(s);
    const tl = s.timeline && s.timeline.run === sel.primaryRun(s) ? s.timeline : null;
    timebar.update(tb, overviewOf(tl, tb.steps), !tl && !!sel.primaryRun(s)); // the strip's place kept while it loads
    alarmsCard.classList.toggle('dvi-hidden', !tl);
    if (tl) alarmList.update({run: tl.run, alarms: tl.alarms, pending: tl.pending, error: tl.error, current: s.step}); // the time bar's step
    legend.update({classes: sel.classesOf(r0), colors: sel.colorsOf(r0), activeLabel: s.filter.label, hasHead: !!r0 && r0.has_head !== false});
    const m0 = runs.length ? sel.panelModel(s, runs[0]) : null;
    const flags = [...new Set(runs.flatMap((n) => sel.runInfo(s, n).flags || []))];
    filters.update({classes: sel.classesOf(r0), flags, value: s.filter, matched: m0 && m0.matched !== null ? m0.matched : 0,
      total: m0 && m0.total !== null ? m0.total : r0 ? r0.n || 0 : 0, note: m0 ? m0.note : null});
    for (const p of panels) {
      const m = sel.panelModel(s, p.run);
      p.view.setTitle({shown: m.shown, accuracy: m.accuracy, renderer: p.scatter.renderer});
      p.view.setProgress(m.waiting && m.pending !== null ? {want: m.pending, shown: m.shown, progress: m.progress, queued: m.queued, eta: m.eta} : null);
      p.view.setMessage(m.error);
    }
    const msg = sel.emptyMessage(s);
    empty.classList.toggle('dvi-hidden', !msg);
    if (empty.textContent !== (msg || '')) empty.textContent = msg || '';
    maps.classList.toggle('dvi-hidden', !!msg || s.view !== 'map');
    dynamics.update(msg ? {...s, view: 'map'} : s);
    layers.update(msg ? {...s, view: 'map'} : s);
    alarms.update(s);
    timebar.el.classList.toggle('dvi-hidden', !!msg);
    side.classList.toggle('dvi-hidden', !!msg);
    body.classList.toggle('dvi-side-open', s.sideOpen);
    selection.update(s);
    quality.update(s);
  }

  // ---------- runs: first load, live updates ----------
  async function fetchRuns() {
    try {
      const runs = await api.runs();
      store.set({runs, loaded: true, error: null, runsAt: performance.now()});
      return true;
    } catch (e) {
      store.set({error: e.message, loaded: true});
      return false;
    }
  }

  async function pollRuns() {
    clearTimeout(pollTimer);
    const before = store.get();
    const ok = await fetchRuns();
    if (destroyed) return;
    if (ok) onRunsChanged(before);
    pollTimer = setTimeout(pollRuns, RUNS_POLL_MS);
  }

  function onRunsChanged(before) {
    const s = store.get();
    const names = s.runs.map((r) => r.run);
    const patch = {};
    if (s.run && !names.includes(s.run)) patch.run = names[0] || null;
    if (!s.run && names.length) patch.run = names[0];
    const compareRuns = s.compareRuns.filter((n) => names.includes(n));
    if (compareRuns.length !== s.compareRuns.length) patch.compareRuns = compareRuns;
    if (s.compare && compareRuns.length < 1) patch.compare = false;
    if (Object.keys(patch).length) store.set(patch);
    const newest = sel.newestStep(store.get());
    const stepsChanged = JSON.stringify(sel.allSteps(before)) !== JSON.stringify(sel.allSteps(store.get()));
    if (syncPanels() || patch.run !== undefined) return rebuild();
    if (store.get().follow && newest !== null && newest !== store.get().step && !store.get().playing) {
      store.set({step: newest});
      return loadAll({animate: true});
    }
    if (stepsChanged || panels.some((p) => !p.shown)) loadAll({animate: false});
  }

  // ---------- keyboard ----------
  function onKey(e) {
    const t = e.target;
    const tag = t && t.tagName;
    if ((tag === 'INPUT' && t.type !== 'checkbox') || tag === 'SELECT' || tag === 'TEXTAREA' || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === 'ArrowRight') actions.stepBy(1);
    else if (e.key === 'ArrowLeft') actions.stepBy(-1);
    else if (e.key === ' ' && tag !== 'BUTTON') playback.toggle();
    else if (e.key === 'Escape') actions.select(null);
    else return;
    e.preventDefault();
  }
  document.addEventListener('keydown', onKey);

  installDebug({store, panels: () => panels, api, overview: timebar.overview});

  // ---------- start ----------
  async function start() {
    scheduleRender();
    const [saved] = await Promise.all([readUrlState(host), fetchRuns()]);
    if (host.available) host.on('experimental.DataReloaded', () => pollRuns());
    const s = store.get();
    const patch = decodeState(saved || {}, s.runs);
    if (!patch.run) patch.run = patch.compare ? patch.compareRuns[0] : s.runs.length ? s.runs[0].run : null;
    store.set(patch);
    const steps = sel.allSteps(store.get());
    if (!steps.includes(store.get().step)) store.set({step: sel.newestStep(store.get()), follow: true});
    syncUrl(store);
    if (store.get().run) rebuild();
    pollTimer = setTimeout(pollRuns, RUNS_POLL_MS);
  }

  function destroy() {
    destroyed = true;
    clearTimeout(pollTimer);
    playback.stop();
    document.removeEventListener('keydown', onKey);
    for (const p of panels.splice(0)) p.destroy();
    dynamics.destroy();
    layers.destroy();
    alarms.destroy();
    timebar.overview.destroy();
    app.remove();
  }

  return {ready: start(), destroy, store};
}

/** overviewData, recomputed only when the timeline facts or the slider's steps change (the strip redraws then). */
function memoOverview() {
  let last = {timeline: undefined, steps: undefined, value: null};
  return (timeline, steps) => {
    const same = last.steps && steps.length === last.steps.length && steps[0] === last.steps[0] && steps[steps.length - 1] === last.steps[last.steps.length - 1];
    if (timeline !== last.timeline || !same) {
      last = {timeline, steps, value: timeline && !timeline.error ? overviewData(timeline, steps) : null};
    }
    return last.value;
  };
}
