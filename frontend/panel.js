// A map panel: one run's map as an object that loads its step, waits while the step is projected (keeping the
// previous map dimmed under a labelled overlay, or the newest projected step before it), animates between steps,
// keeps its landscape sharp with tiles as the camera zooms, and reports what it shows to the store.

import {createScatter} from './render/scatter.js';
import {createMapPanel} from './views/mappanel.js';
import {withPanel} from './state/store.js';
import {runInfo, colorsOf, classesOf, stepForRun, previousStep, fallbackStep, readySet} from './state/selectors.js';
import {computeMask} from './state/mask.js';
import {OVERVIEW_SIZE, TILE_SIZE, tileLevel, visibleTiles, visibleRect, pixelsPerUnit, zoomAheadTile, viewportImage, splitViewport, pyramidReady,
  firstPaint, containsBox, visibleMap} from './state/tiles.js';

export const PENDING_POLL_MS = 1000;
export const ANIMATION_MS = 650;
/** Maps with at least this many points animate at ANIMATION_RENDER_SCALE of the screen's resolution. */
export const LOW_RES_POINTS = 20000;
export const ANIMATION_RENDER_SCALE = 0.7;
export const TILE_DEBOUNCE_MS = 60;
/** A step drawn and at rest this long asks the plugin to load its model (see warm), unless playing. */
export const WARM_DELAY_MS = 50;
export const PREDICT_THROTTLE_MS = 120;
/** Background prefetch: at most this many points (points × steps) of projected steps are loaded ahead. */
export const PREFETCH_MAX_POINTS = 2_000_000;
export const PREFETCH_DELAY_MS = 200;
const MAX_TILE_LAYERS = 96;
/** Viewport images kept (each level's newest over the older ones; the tiles replace them). */
const MAX_VIEWPORT_GROUPS = 4;
/** A map at rest this long at the overview level fetches the level-1 tile under its centre (see zoomAhead). */
export const ZOOM_AHEAD_MS = 1500;

const ease = (k) => (k < 0.5 ? 2 * k * k : 1 - (-2 * k + 2) ** 2 / 2);
const overlaps = (a, b) => a[0] < b[2] && a[2] > b[0] && a[1] < b[3] && a[3] > b[1];

/**
 * Creates the panel of `run` inside `container`. `hooks`: onSelectIndex(run, index) (−1: empty map),
 * onCamera(run, camera) (the user moved this map's camera).
 */
export function createPanel({run, store, api, aligner, renderer, compact, container, hooks, prefetch: prefetchEnabled = true}) {
  const view = createMapPanel({run, compact});
  container.append(view.el);
  const scatter = createScatter(view.canvas, {
    renderer,
    onClick: (index) => hooks.onSelectIndex(run, index),
    onHover: (index, xy, pos, dot) => onHover(index, xy, pos, dot),
    onCamera: (camera) => hooks.onCamera(run, camera),
    onResize: () => scheduleTiles(),
  });
  const info = () => runInfo(store.get(), run);
  const hasHead = () => !(info() && info().has_head === false);
  scatter.set({palette: colorsOf(info())});

  let token = 0;
  let timer = 0;
  let anim = 0;
  let animDone = null; // resolves the promise of the running animation
  let destroyed = false;
  let shown = null; // {step, data, prev (the previous step, aligned, once loaded), overview: image | null}
  let trajectorySample = null;
  const tiles = {z: 0, layers: new Map(), timer: 0, aheadTimer: 0, aheadStep: null, drawn: 0, wanted: 0, requested: 0,
    views: new Map(), viewSeq: 0, viewRequests: 0, viewDrawn: false, viewPxPerUnit: null, sharp: false, firstSharp: null, loadedZ: 0,
    warmTimer: 0, warmed: new Set(), inflight: null, probes: 0};
  const report = (patch) => store.set((s) => withPanel(s, run, patch));

  /** Shows the panel's step for the store's shared step; resolves once shown or superseded. */
  async function load({animate = false} = {}) {
    const r = info();
    const step = r && store.get().step !== null ? stepForRun(r, store.get().step) : null;
    if (step === null || destroyed) return;
    if (shown && shown.step === step && !anim) return report({pending: null, progress: null});
    const my = ++token;
    clearTimeout(timer);
    const prevStep = previousStep(r, step);
    // The projection and its overview landscape load together; the previous step (for "prediction changed") is
    // only waited for when that filter is on.
    const prevPromise = prevStep === null ? Promise.resolve(null) : api.projection(run, prevStep).catch(() => null);
    const overviewPromise = hasHead() && readySet(r).has(step) ? api.landscape(run, step, OVERVIEW_SIZE).catch(() => null) : null;
    let proj;
    try {
      proj = await api.projection(run, step);
    } catch (e) {
      if (my === token) report({pending: null, progress: null, error: `Could not load step ${step}: ${e.message}`});
      return;
    }
    if (my !== token || destroyed) return;
    if (proj.pending) {
      report({pending: step, progress: proj.progress ?? null, queued: proj.status === 'queued', error: null});
      if (!shown) await showFallback(step, my);
      await new Promise((resolve) => (timer = setTimeout(resolve, PENDING_POLL_MS)));
      return my === token ? load({animate}) : undefined;
    }
    const overview = hasHead() ? await (overviewPromise || api.landscape(run, step, OVERVIEW_SIZE).catch(() => null)) : null;
    const prev = store.get().filter.changed ? await prevPromise : null;
    if (my !== token || destroyed) return;
    const next = {step, data: aligner.align(run, proj), prev: prev && !prev.pending ? aligner.align(run, prev) : null, overview};
    await show(next, animate);
    if (prevStep !== null && !next.prev) attachPrevious(next, prevPromise);
    schedulePrefetch(step);
  }

  /** Adds the previous step's predictions to a shown step when they arrive (for "prediction changed"). */
  function attachPrevious(s, promise) {
    promise.then((p) => {
      if (shown !== s || !p || p.pending) return;
      s.prev = aligner.align(run, p);
      if (store.get().filter.changed) applyFilter();
    });
  }

  // ---------- background prefetch: projected steps near the shown one, so slider moves draw at once ----------
  let prefetchTimer = 0;
  let prefetchSeq = 0;
  function schedulePrefetch(step) {
    clearTimeout(prefetchTimer);
    const seq = ++prefetchSeq;
    prefetchTimer = setTimeout(() => prefetchAround(step, seq), PREFETCH_DELAY_MS);
  }

  async function prefetchAround(step, seq) {
    const r = info();
    if (!r || !prefetchEnabled) return;
    const budget = Math.max(2, Math.floor(PREFETCH_MAX_POINTS / Math.max(1, r.n || 1)));
    const ready = [...readySet(r)].filter((s) => s !== step).sort((a, b) => Math.abs(a - step) - Math.abs(b - step) || b - a);
    for (const s of ready.slice(0, budget)) {
      if (seq !== prefetchSeq || destroyed || store.get().playing) return;
      await Promise.all([api.projection(run, s).catch(() => null), hasHead() ? api.landscape(run, s, OVERVIEW_SIZE).catch(() => null) : null]);
    }
  }

  /** While `step` is projected and nothing is on screen yet, show the newest projected step before it. */
  async function showFallback(step, my) {
    const fb = fallbackStep(info(), step);
    if (fb === null) return;
    try {
      const proj = await api.projection(run, fb);
      const overview = proj.pending || !hasHead() ? null : await api.landscape(run, fb, OVERVIEW_SIZE).catch(() => null);
      if (proj.pending || my !== token || shown) return;
      await show({step: fb, data: aligner.align(run, proj), prev: null, overview}, false, {keepPending: true});
    } catch (_) {
      /* keep the overlay */
    }
  }

  function maskOf(s) {
    const res = computeMask(s.data, store.get().filter, s.prev ? s.prev.pred : null, s.data.flagSets);
    if (res.note && previousStep(info(), s.step) !== null) res.note = 'Loading the previous step to count prediction changes…';
    return res;
  }

  const overviewLayer = (s) => (s && s.overview ? [{image: s.overview, bounds: s.data.bounds}] : []);

  function show(next, animate, {keepPending = false} = {}) {
    const cur = shown;
    const {mask, count, note} = maskOf(next);
    stopAnimation();
    shown = next;
    next.shownAt = performance.now();
    tiles.layers.clear();
    tiles.views.clear();
    tiles.inflight = null;
    tiles.drawn = 0;
    tiles.loadedZ = 0;
    tiles.firstSharp = null;
    const base = {labels: next.data.labels, pred: next.data.pred, highlight: mask};
    const facts = {shown: next.step, accuracy: next.data.accuracy, matched: count, total: next.data.n, note, error: null};
    report(keepPending ? facts : {...facts, pending: null, progress: null});
    applySelection();
    if (!animate || !cur || cur.step === next.step) {
      scatter.set({...base, from: next.data.pos, t: 0, landscapes: {a: overviewLayer(next), b: null}, bounds: {a: next.data.bounds, b: null}, renderScale: 1});
      scatter.draw();
      scheduleTiles();
      scheduleWarm(next);
      return Promise.resolve();
    }
    const from = scatter.positions();
    const fromBounds = scatter.frameBounds() || cur.data.bounds;
    const land = {a: overviewLayer(cur), b: overviewLayer(next)};
    // Many points: animate at a lower canvas resolution (fewer pixels for software GL), sharp again at rest.
    const renderScale = next.data.n >= LOW_RES_POINTS ? ANIMATION_RENDER_SCALE : 1;
    // Moving: a density-aware subsample of the points is drawn (render/lod.js), everything again at rest.
    scatter.set({...base, from, to: next.data.pos, t: 0, landscapes: {...land, fade: 0}, bounds: {a: fromBounds, b: next.data.bounds}, renderScale, moving: true});
    const t0 = performance.now();
    // A newer load does not freeze this animation half-way: only the next show (or destroy) stops it.
    return new Promise((resolve) => {
      animDone = resolve;
      const frame = (now) => {
        if (destroyed) return stopAnimation();
        const k = Math.min(1, (now - t0) / ANIMATION_MS);
        scatter.set({t: ease(k), landscapes: {...land, fade: ease(k)}});
        scatter.draw();
        if (k < 1) {
          anim = requestAnimationFrame(frame);
          return;
        }
        scatter.set({from: next.data.pos, t: 0, landscapes: {a: land.b, b: null}, bounds: {a: next.data.bounds, b: null}, renderScale: 1, moving: false});
        scatter.draw();
        stopAnimation();
        report({});
        scheduleTiles();
        scheduleWarm(next);
      };
      anim = requestAnimationFrame(frame);
    });
  }

  /** Ends the running animation (if any) where it is and resolves whoever waits for it. */
  function stopAnimation() {
    cancelAnimationFrame(anim);
    if (anim) scatter.set({moving: false});
    anim = 0;
    const done = animDone;
    animDone = null;
    if (done) done();
  }

  // ---------- tiles: a sharp landscape at any zoom ----------
  /**
   * Loads the tiles TILE_DEBOUNCE_MS after the camera last moved; at once when nothing was scheduled and the move
   * changes the tile level (a zoom's first wheel event: a cold zoom's viewport image is asked for without delay).
   */
  function scheduleTiles() {
    const pending = tiles.timer !== 0;
    clearTimeout(tiles.timer);
    tiles.timer = 0;
    if (!pending && shown && !anim && tileLevel(shown.data.bounds, scatter.getView().scale, window.devicePixelRatio || 1) !== tiles.loadedZ) {
      loadTiles();
      tiles.timer = setTimeout(() => (tiles.timer = 0), TILE_DEBOUNCE_MS); // later moves within the window wait
      return;
    }
    tiles.timer = setTimeout(() => {
      tiles.timer = 0;
      loadTiles();
    }, TILE_DEBOUNCE_MS);
  }

  /** The step was drawn: once it rests WARM_DELAY_MS (not while playing), the plugin loads its model and head. */
  function scheduleWarm(s) {
    clearTimeout(tiles.warmTimer);
    if (!hasHead() || tiles.warmed.has(s.step)) return;
    tiles.warmTimer = setTimeout(() => {
      if (shown !== s || destroyed || store.get().playing) return;
      tiles.warmed.add(s.step);
      api.warm(run, s.step);
    }, WARM_DELAY_MS);
  }

  function loadTiles() {
    if (!shown || anim || destroyed || !hasHead() || !shown.overview || store.get().playing) return;
    const s = shown;
    const b = s.data.bounds;
    const v = scatter.getView();
    const {w, h} = scatter.size();
    tiles.z = tileLevel(b, v.scale, window.devicePixelRatio || 1);
    const wanted = tiles.z ? visibleTiles(b, v, w, h, tiles.z).slice(0, MAX_TILE_LAYERS) : [];
    tiles.wanted = wanted.length;
    const levelChanged = tiles.z !== tiles.loadedZ;
    tiles.loadedZ = tiles.z;
    if (levelChanged) tiles.firstSharp = null;
    applyTiles();
    const r = info();
    const visible = visibleMap(b, v, w, h);
    // A viewport image still on its way that no longer covers the view (the zoom went on): as a level change.
    const outgrown = !!(tiles.inflight && tiles.inflight.z === tiles.z && visible && !containsBox(tiles.inflight.box, visible, 1e-6));
    const how = firstPaint({z: tiles.z, levelChanged: levelChanged || outgrown, missing: wanted.filter((t) => !tiles.layers.has(tileKey(t))).length,
      ready: pyramidReady(r && r.status && r.status.tiles_ahead, s.step, tiles.z, s.shownAt, store.get().runsAt),
      viewport: tiles.z ? viewportImage(b, v, w, h, tiles.z) : null});
    if (how === 'viewport') {
      // Maybe a cold zoom. First the centre tile, only if the plugin has it rendered (a quick answer either way): if
      // it has, the step's tiles were rendered ahead and come at once; else the visible part first, as one image in
      // two halves (both render workers), then the tiles.
      const seq = ++tiles.viewSeq;
      const vp = viewportImage(b, v, w, h, tiles.z);
      tiles.inflight = vp;
      const tilesNow = () => {
        tiles.inflight = null;
        for (const t of wanted) fetchTile(s, t);
      };
      probeTile(s, wanted[0]).then((rendered) => {
        if (shown !== s || seq !== tiles.viewSeq) return;
        if (rendered) return tilesNow();
        fetchViewport(s, vp, seq).then(() => shown === s && seq === tiles.viewSeq && tilesNow());
      });
    } else {
      tiles.viewSeq++;
      tiles.inflight = null;
      for (const t of wanted) fetchTile(s, t);
    }
    clearTimeout(tiles.aheadTimer);
    if (!tiles.z) tiles.aheadTimer = setTimeout(() => zoomAhead(s), ZOOM_AHEAD_MS);
  }

  const tileKey = (t) => `${t.z}/${t.tx}/${t.ty}`;

  /** Fetches viewport image `vp` (in halves) of shown step `s`; resolves once every part is drawn or failed. */
  function fetchViewport(s, vp, seq) {
    const parts = splitViewport(vp, 2);
    const group = {z: vp.z, box: vp.box, parts: parts.length, loaded: 0, images: []};
    tiles.viewRequests++;
    return Promise.all(parts.map((part) => api.viewport(run, s.step, part.box, part.width, part.height).then((image) => {
      if (!image || shown !== s || destroyed) return;
      group.images.push({image, bounds: part.box, z: part.z, viewport: true});
      group.loaded++;
      if (group.loaded === 1) {
        tiles.views.set(seq, group);
        while (tiles.views.size > MAX_VIEWPORT_GROUPS) tiles.views.delete(tiles.views.keys().next().value);
      }
      applyTiles();
    }, () => null)));
  }

  /** Loads tile `t` of shown step `s` and draws it. */
  function fetchTile(s, t) {
    const k = tileKey(t);
    if (tiles.layers.has(k)) return;
    tiles.requested++;
    api.tile(run, s.step, t.z, t.tx, t.ty, TILE_SIZE).then((image) => {
      if (!image || shown !== s || destroyed) return;
      tiles.layers.set(k, {image, bounds: t.bounds, z: t.z});
      applyTiles();
    }, () => null);
  }

  /** Resolves whether the plugin has tile `t` rendered already (as soon as its answer's status is in); renders nothing. */
  function probeTile(s, t) {
    if (!t) return Promise.resolve(false);
    if (tiles.layers.has(tileKey(t))) return Promise.resolve(true);
    tiles.probes++;
    return api.probeTile(run, s.step, t.z, t.tx, t.ty, TILE_SIZE);
  }

  /**
   * The map rested on step `s` at the overview level: fetch the level-1 tile under the centre. A zoom-in then
   * starts sharp at 2x, and asking for a tile tells the plugin this is the step to render the deeper tiles of first
   * (it renders zoom tiles ahead for the steps a user looks at; the overview alone may come from this tab's cache).
   */
  function zoomAhead(s) {
    if (shown !== s || anim || destroyed || store.get().playing || tiles.z) return;
    tiles.aheadStep = s.step;
    fetchTile(s, zoomAheadTile(s.data.bounds, scatter.getView()));
  }

  /**
   * Draws the overview, then the viewport images and loaded tiles in view from coarse to the wanted level (finer
   * ones are skipped; at a level, its tiles over its viewport images). Once every wanted tile is drawn, that level's
   * viewport images are dropped: the tiles replace them.
   */
  function applyTiles() {
    if (!shown || anim) return;
    const {w, h} = scatter.size();
    const view = scatter.getView();
    const rect = visibleRect(view, w, h);
    const inView = (l) => l.z <= tiles.z && overlaps(l.bounds, rect);
    const tileLayers = [...tiles.layers.values()].filter(inView);
    tiles.drawn = tileLayers.filter((l) => l.z === tiles.z).length;
    const complete = tiles.z > 0 && tiles.wanted > 0 && tiles.drawn >= tiles.wanted;
    if (complete) for (const [k, g] of tiles.views) if (g.z === tiles.z) tiles.views.delete(k);
    const viewLayers = [...tiles.views.values()].flatMap((g) => g.images).filter(inView);
    const layers = [...viewLayers, ...tileLayers].sort((a, b) => a.z - b.z || (a.viewport ? 0 : 1) - (b.viewport ? 0 : 1));
    const kept = layers.slice(-MAX_TILE_LAYERS);
    tiles.viewDrawn = kept.some((l) => l.viewport && l.z === tiles.z);
    const visible = visibleMap(shown.data.bounds, view, w, h);
    const covered = [...tiles.views.values()].some((g) => g.z === tiles.z && g.loaded === g.parts && visible && containsBox(g.box, visible, 1e-6));
    tiles.sharp = tiles.z > 0 && (complete || covered);
    const vl = kept.find((l) => l.viewport && l.z === tiles.z);
    tiles.viewPxPerUnit = vl ? (vl.image.naturalWidth || vl.image.width) / (vl.bounds[2] - vl.bounds[0]) : null;
    // How this level first got sharp (for the tests and the benchmark): by a viewport image, or by its tiles.
    if (tiles.sharp && !tiles.firstSharp) {
      tiles.firstSharp = {z: tiles.z, by: complete ? 'tiles' : 'viewport', tilesDrawn: tiles.drawn, wanted: tiles.wanted,
        pxPerUnit: complete ? pixelsPerUnit(shown.data.bounds, TILE_SIZE, tiles.z) : tiles.viewPxPerUnit};
    }
    scatter.set({landscapes: {a: [...overviewLayer(shown), ...kept], b: null}});
  }

  // ---------- filter, selection, camera ----------
  function applyFilter() {
    if (!shown) return;
    const prevStep = previousStep(info(), shown.step);
    if (store.get().filter.changed && !shown.prev && prevStep !== null) attachPrevious(shown, api.projection(run, prevStep).catch(() => null));
    const {mask, count, note} = maskOf(shown);
    scatter.set({highlight: mask});
    report({matched: count, note});
  }

  function applySelection() {
    const id = store.get().selected;
    scatter.set({selected: id === null ? -1 : aligner.indexOf(run, id)});
    if (trajectorySample && trajectorySample.id === id) {
      setTrajectory(trajectorySample);
    } else {
      // Another sample (or none): its trajectory arrives with its history (selection.js).
      trajectorySample = null;
      scatter.set({trajectory: null});
    }
  }

  /** Draws the sample's path up to the shown step (start marker, a dot per step, direction). */
  function setTrajectory(sample) {
    trajectorySample = sample;
    if (!sample) return scatter.set({trajectory: null});
    const colors = colorsOf(info());
    const upto = shown ? shown.step : Infinity;
    const points = sample.steps.map((step, i) => ({step, x: sample.x[i], y: sample.y[i]}))
      .filter((p) => p.x !== null && p.y !== null && p.step <= upto);
    scatter.set({trajectory: {points, color: colors[sample.label % colors.length], current: shown ? shown.step : null}});
  }

  function setCamera(camera) {
    scatter.set({camera});
    scheduleTiles();
  }

  /** The data position of sample `id` on this map, or null. */
  function positionOf(id) {
    const i = aligner.indexOf(run, id);
    if (i < 0 || !shown) return null;
    const pos = scatter.positions();
    return Number.isFinite(pos[2 * i]) ? [pos[2 * i], pos[2 * i + 1]] : null;
  }

  // ---------- hover readout: the model's prediction under the cursor (throttled) ----------
  const hv = {seq: 0, inflight: false, last: 0, want: null, predicted: null, index: -1, px: 0, py: 0, dot: null, timer: 0};

  function onHover(index, xy, pos, dot) {
    if (!xy) {
      hv.want = null;
      hv.seq++;
      return view.setReadout(null);
    }
    Object.assign(hv, {px: pos.px, py: pos.py, index, want: xy, dot});
    renderReadout();
    if (shown && hasHead()) requestPredict();
  }

  function requestPredict() {
    if (hv.inflight || !hv.want || !shown) return;
    const wait = hv.last + PREDICT_THROTTLE_MS - performance.now();
    if (wait > 0) {
      clearTimeout(hv.timer);
      hv.timer = setTimeout(requestPredict, wait);
      return;
    }
    const xy = hv.want;
    const seq = ++hv.seq;
    hv.inflight = true;
    hv.last = performance.now();
    api.predict(run, shown.step, [xy]).then((res) => {
      if (seq !== hv.seq || !hv.want) return;
      const probs = res.probs && res.probs[0];
      const cls = res.pred ? res.pred[0] : probs.indexOf(Math.max(...probs));
      hv.predicted = {cls, prob: probs ? probs[cls] : null, at: xy};
      renderReadout();
    }, () => {
      hv.predicted = null;
    }).finally(() => {
      hv.inflight = false;
      if (hv.want && hv.want !== xy) requestPredict();
    });
  }

  function renderReadout() {
    if (!hv.want) return view.setReadout(null);
    const r = info();
    const d = shown && shown.data;
    const point = d && hv.index >= 0 ? {id: d.ids[hv.index], label: d.labels[hv.index], pred: d.pred[hv.index], conf: d.conf[hv.index]} : null;
    const dot = hv.dot && trajectorySample ? {id: trajectorySample.id, step: hv.dot.step} : null;
    view.setReadout({px: hv.px, py: hv.py, point, dot, predicted: hasHead() ? hv.predicted : null, pendingPredict: hasHead() && !hv.predicted,
      classes: classesOf(r), colors: colorsOf(r)});
  }

  function destroy() {
    destroyed = true;
    token++;
    clearTimeout(timer);
    clearTimeout(tiles.timer);
    clearTimeout(tiles.aheadTimer);
    clearTimeout(tiles.warmTimer);
    clearTimeout(hv.timer);
    clearTimeout(prefetchTimer);
    stopAnimation();
    scatter.destroy();
    view.el.remove();
  }

  /** Read-only facts for the test hooks. */
  function debugInfo() {
    const b = shown ? shown.data.bounds : null;
    return {
      run, step: shown ? shown.step : null, pointsDrawn: shown ? scatter.count : 0, lastFrameDrawn: scatter.drawn, moving: scatter.moving,
      highlighted: shown ? scatter.highlighted : 0,
      frames: scatter.frames, renderer: scatter.renderer, landscape: !!(shown && shown.overview), animating: !!anim,
      selected: store.get().selected === null ? -1 : aligner.indexOf(run, store.get().selected), trajectory: !!trajectorySample,
      tiles: {z: tiles.z, drawn: tiles.drawn, wanted: tiles.wanted, requested: tiles.requested, aheadStep: tiles.aheadStep,
        sharp: tiles.sharp, probes: tiles.probes, viewRequests: tiles.viewRequests, viewDrawn: tiles.viewDrawn, viewPxPerUnit: tiles.viewPxPerUnit, firstSharp: tiles.firstSharp,
        pxPerUnit: b && tiles.z ? pixelsPerUnit(b, TILE_SIZE, tiles.z) : null, overviewPxPerUnit: b ? pixelsPerUnit(b, OVERVIEW_SIZE) : null},
    };
  }

  return {run, view, scatter, load, applyFilter, refreshTiles: scheduleTiles, applySelection, setTrajectory, setCamera, positionOf, destroy, debugInfo,
    get shown() {
      return shown;
    },
    get animating() {
      return !!anim;
    },
  };
}
