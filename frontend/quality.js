// The quality card's data: the metrics of the step each panel shows (never a step still loading), and each
// run's metrics over its projected steps for the trend. Answers are cached per (run, step).

import {runInfo, visibleRuns, readySet, panelModel} from './state/selectors.js';

export const METRICS_RETRY_MS = 2000;
const MAX_TREND_STEPS = 60;

export function createQuality({store, api, render}) {
  const cache = new Map(); // `${run}\0${step}` -> {value, error, done}
  let lastKey = null;
  let retry = 0;

  function get(run, step) {
    const key = `${run}\u0000${step}`;
    if (!cache.has(key)) {
      const rec = {value: null, error: null, done: false};
      cache.set(key, rec);
      api.metrics(run, step).then((m) => {
        // A step still computing is asked again after a pause, not in a loop.
        if (m.pending) setTimeout(() => cache.get(key) === rec && cache.delete(key), METRICS_RETRY_MS);
        else rec.value = m;
      }, (e) => {
        rec.error = e.status === 404 ? 'not computed for this run' : e.message;
      }).finally(() => {
        rec.done = true;
        lastKey = null;
        clearTimeout(retry);
        retry = setTimeout(() => update(store.get()), 50);
      });
    }
    return cache.get(key);
  }

  /** Re-derives the card from the state; fetches what is missing. */
  function update(s) {
    const runs = visibleRuns(s);
    const key = JSON.stringify([runs, runs.map((r) => panelModel(s, r).shown), runs.map((r) => readySet(runInfo(s, r)).size)]);
    if (key === lastKey) return;
    lastKey = key;
    const entries = runs.map((run) => {
      const step = panelModel(s, run).shown;
      if (step === null) return {run, step: null};
      const rec = get(run, step);
      const ready = [...readySet(runInfo(s, run))].sort((a, b) => a - b).slice(-MAX_TREND_STEPS);
      const trend = ready.map((st) => ({step: st, metrics: get(run, st).value}));
      return {run, step, metrics: rec.value, error: rec.error, trend};
    });
    render(entries);
    if (entries.some((e) => e.step !== null && !e.metrics && !e.error)) {
      clearTimeout(retry);
      retry = setTimeout(() => {
        lastKey = null;
        update(store.get());
      }, METRICS_RETRY_MS);
    }
  }

  return {update};
}
