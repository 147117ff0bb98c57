// Loads the primary run's step statistics (`stepstats`, the per-step overview only) and alarms (`alarms`) into the
// store's `timeline`, for the time bar's overview strip and the alarm list. Reloads when the run changes, when it
// logs or projects more steps (the map displacement appears as steps are projected), and every PENDING_POLL_MS while
// the plugin says steps are still being folded in (a long log's first answer covers a prefix: `pending_steps`).

import {primaryRun, runInfo, readySet} from './state/selectors.js';

export const PENDING_POLL_MS = 1500;

export function createAlarmsHost({store, api}) {
  let key = null;
  let token = 0;
  let timer = 0;

  async function load(run, mine) {
    clearTimeout(timer);
    try {
      // The empty range start=1, end=0: no per-class detail (the time bar needs the per-step overview only).
      const [stats, alarms] = await Promise.all([api.json('stepstats', {run, start: 1, end: 0}), api.json('alarms', {run})]);
      if (mine !== token) return;
      const pending = Math.max(stats.pending_steps || 0, alarms.pending_steps || 0);
      store.set({timeline: {run, steps: stats.steps, overview: stats.overview, alarms: alarms.alarms, classes: alarms.classes,
        pending, error: null}});
      if (pending) timer = setTimeout(() => mine === token && load(run, mine), PENDING_POLL_MS);
    } catch (e) {
      if (mine === token) store.set({timeline: {run, steps: [], overview: {}, alarms: [], pending: 0, error: e.message}});
    }
  }

  /** Called after each store change: (re)loads when the primary run or its logged / projected steps change. */
  function update(s) {
    const run = primaryRun(s);
    const info = run ? runInfo(s, run) : null;
    const k = info ? JSON.stringify([run, info.steps.length, info.steps[info.steps.length - 1], readySet(info).size]) : null;
    if (k === key) return;
    key = k;
    const mine = ++token;
    if (!run) return store.set({timeline: null});
    if (s.timeline && s.timeline.run !== run) store.set({timeline: null});
    load(run, mine);
  }

  return {update, destroy: () => { token += 1; clearTimeout(timer); }};
}
