// Read-only test hooks (`window.__dvi`): what the tab shows, for the browser tests and the benchmark. Nothing here
// changes the tab.

import {allSteps, visibleRuns, allShown} from './state/selectors.js';

/** Installs `window.__dvi` over the app's store and panels (`panels()` returns the panel objects in order). */
export function installDebug({store, panels, api, overview = null}) {
  const st = () => store.get();
  const list = () => panels().map((p) => p.debugInfo());
  const first = () => list()[0] || null;
  const debug = {};
  const props = {
    run: () => st().run,
    step: () => st().step,
    steps: () => allSteps(st()),
    runs: () => visibleRuns(st()),
    compare: () => st().compare,
    compareRuns: () => st().compareRuns.slice(),
    playing: () => st().playing,
    follow: () => st().follow,
    linked: () => st().linked,
    camera: () => ({...st().camera}),
    selected: () => st().selected,
    filter: () => JSON.parse(JSON.stringify(st().filter)),
    pointsDrawn: () => (first() ? first().pointsDrawn : 0),
    highlighted: () => (first() ? first().highlighted : 0),
    matched: () => {
      const p = st().panels[visibleRuns(st())[0]];
      return p && p.matched !== null ? p.matched : 0;
    },
    frames: () => list().reduce((a, p) => a + p.frames, 0),
    renderer: () => (first() ? first().renderer : null),
    ready: () => allShown(st()) && list().every((p) => !p.animating),
    panels: list,
    store: () => JSON.parse(JSON.stringify({...st(), runs: undefined})),
    fetches: () => ({...api.stats}),
    zoom: () => (st().zoom ? st().zoom.slice() : null),
    view: () => st().view,
    timeline: () => {
      const t = st().timeline;
      return t ? {run: t.run, steps: t.steps.length, alarms: t.alarms.length, pending: t.pending, error: t.error} : null;
    },
    overview: () => (overview ? {...overview.stats} : null),
  };
  for (const [k, get] of Object.entries(props)) Object.defineProperty(debug, k, {get, enumerable: true});
  /** Redraws the time bar's overview strip as a resize would (same data, same state); returns the time it took (ms). */
  debug.renderOverview = () => (overview ? overview.render() : 0);
  debug.positions = (i = 0) => (panels()[i] ? Array.from(panels()[i].scatter.positions()) : []);
  /** Panel i's geometry: view centre/scale (CSS px per data unit), canvas rect, the shown step's bounds. */
  debug.geometry = (i = 0) => {
    const p = panels()[i];
    if (!p) return null;
    const v = p.scatter.getView();
    const rect = p.view.canvas.getBoundingClientRect();
    return {cx: v.cx, cy: v.cy, scale: v.scale, left: rect.left, top: rect.top, width: rect.width, height: rect.height,
      bounds: p.shown ? Array.from(p.shown.data.bounds) : null};
  };
  debug.screenPosition = (id, i = 0) => {
    const p = panels()[i];
    const xy = p ? p.positionOf(id) : null;
    if (!xy) return null;
    const [x, y] = p.scatter.toScreen(xy[0], xy[1]);
    const rect = p.view.canvas.getBoundingClientRect();
    return {x: rect.left + x, y: rect.top + y};
  };
  Object.freeze(debug);
  try {
    Object.defineProperty(window, '__dvi', {value: debug, configurable: true, writable: false});
  } catch (_) {
    /* already defined */
  }
}
