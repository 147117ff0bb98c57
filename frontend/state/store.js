// The tab's single state store. Everything the screen shows is derived from one plain object by the pure
// selectors in selectors.js; views subscribe and re-render from it. Big typed arrays (positions, labels)
// live in the map panels, never in the store: the store holds the small facts about them (which step a
// panel shows, which one it is waiting for), so every label is computed from what is actually on screen.

import {EMPTY_FILTER} from './mask.js';
import {DEFAULT_CAMERA} from './camera.js';

/** The state before anything is loaded. */
export const INITIAL_STATE = Object.freeze({
  runs: [], // the `runs` route's list
  loaded: false, // the runs list was fetched at least once
  runsAt: 0, // when (performance.now()) the runs list was last received
  error: null, // last error reaching the plugin (string) or null
  run: null, // the run shown when not comparing
  compare: false,
  compareRuns: [], // runs shown side by side, in panel order
  step: null, // the step the user asked for (shared by all panels)
  follow: true, // live mode: jump to the newest step when one is logged (off once the user moves the slider)
  playing: false,
  filter: EMPTY_FILTER,
  selected: null, // selected sample id (shared by all panels)
  camera: DEFAULT_CAMERA, // the shared camera
  linked: true, // compare panels share one camera
  cameras: {}, // run -> camera, used when unlinked
  panels: {}, // run -> {shown, pending, progress, queued, error, accuracy, matched, total}
  sideOpen: false, // narrow windows: side bar expanded
  view: 'map', // the main area: 'map' (the maps), 'dynamics' (training dynamics) or 'layers' (layer weights), of the first run
  zoom: null, // the time bar's step range [lo, hi] when zoomed into a long log, else null (every step)
  timeline: null, // the primary run's step statistics and alarms for the time bar: {run, steps, overview, alarms, pending, error}
});

/**
 * A minimal store: `get()` the state, `set(patch | fn)` to replace it (shallow merge or a function of the old
 * state), `subscribe(fn)` to hear `(state, previous)` after each change. Returns an unsubscribe function.
 */
export function createStore(initial = INITIAL_STATE) {
  let state = initial;
  const listeners = new Set();
  return {
    get: () => state,
    set(patch) {
      const next = typeof patch === 'function' ? patch(state) : {...state, ...patch};
      if (!next || next === state) return;
      const prev = state;
      state = next;
      for (const fn of [...listeners]) fn(state, prev);
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}

/** A new state with `patch` merged into panel `run`'s facts. */
export function withPanel(state, run, patch) {
  const cur = state.panels[run] || EMPTY_PANEL;
  return {...state, panels: {...state.panels, [run]: {...cur, ...patch}}};
}

/** What a panel shows before it loads anything. */
export const EMPTY_PANEL = Object.freeze({shown: null, pending: null, progress: null, queued: false, error: null, accuracy: null,
  matched: null, total: null, note: null});
