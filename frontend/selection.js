// The shared selection: fetches the selected sample's history once per run (again when more steps are projected),
// hands each panel its trajectory, and builds the inspect card's model (one entry per panel, in panel order)
// from what each panel shows.

import {runInfo, visibleRuns, readySet, classesOf, colorsOf, panelModel} from './state/selectors.js';

export function createSelection({store, api, aligner, panels, render}) {
  const samples = new Map(); // `${run}\0${id}\0${ready}` -> {promise, value, error}
  let lastKey = null;

  function entryOf(s, run, id) {
    const key = `${run}\u0000${id}\u0000${readySet(runInfo(s, run)).size}`;
    if (!samples.has(key)) {
      const rec = {value: null, error: null, done: false};
      rec.promise = api.sample(run, id).then((v) => (rec.value = v), (e) => (rec.error = e)).finally(() => {
        rec.done = true;
        lastKey = null;
        update(store.get());
      });
      samples.set(key, rec);
    }
    return samples.get(key);
  }

  function nowOf(panel, id) {
    const d = panel.shown && panel.shown.data;
    const idx = aligner.indexOf(panel.run, id);
    if (!d || idx < 0 || d.labels[idx] < 0) return null;
    return {label: d.labels[idx], pred: d.pred[idx], conf: d.conf[idx], split: d.split[idx]};
  }

  /** Re-derives the inspect card and the trajectories from the state (cheap when nothing changed). */
  function update(s) {
    const id = s.selected;
    const runs = visibleRuns(s);
    const key = JSON.stringify([id, runs, runs.map((r) => panelModel(s, r).shown), runs.map((r) => readySet(runInfo(s, r)).size)]);
    if (key === lastKey) return;
    lastKey = key;
    if (id === null || !runs.length) return render(null);
    const entries = panels().map((p) => {
      const rec = entryOf(s, p.run, id);
      const shown = panelModel(s, p.run).shown;
      const now = nowOf(p, id);
      if (rec.value) p.setTrajectory(rec.value);
      const error = rec.error ? (rec.error.status === 404 ? `Sample ${id} is not in run ${p.run}.` : rec.error.message) : null;
      return {run: p.run, step: shown, sample: rec.value, now, loading: !rec.done, missing: !!(p.shown && !now), error};
    });
    const r0 = runInfo(s, runs[0]);
    const withInputs = runs.find((r) => runInfo(s, r).has_inputs !== false);
    render({id, classes: classesOf(r0), colors: colorsOf(r0), entries,
      thumbnailUrl: withInputs ? api.thumbnailUrl(withInputs, id) : null});
  }

  return {update};
}
