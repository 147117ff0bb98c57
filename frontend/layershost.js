// Hosts the layers view (views/layers.js: small multiples by block and the layer x step heatmap) in the main area
// when the store's `view` is 'layers', for the first visible run. A step picked there (an outlier, a heatmap cell,
// a point of a small multiple) moves the time bar, which stays under the view; the time bar's step is drawn back
// onto the view as a cursor.

import {mountLayers} from './views/layers.js';
import {visibleRuns, runInfo} from './state/selectors.js';

/** `actions`: gotoStep(step) (the nearest logged step). */
export function createLayersHost({container, api, actions}) {
  let view = null;
  let key = null;

  /** Shows or hides the view; (re)loads it when the run or its number of steps changes; moves its cursor. */
  function update(s) {
    const show = s.view === 'layers';
    container.classList.toggle('dvi-hidden', !show);
    if (!show) return;
    const run = visibleRuns(s)[0] || null;
    const info = run ? runInfo(s, run) : null;
    const k = JSON.stringify([run, info ? info.steps.length : 0]);
    if (run && k !== key) {
      key = k;
      if (!view) view = mountLayers(container, {run, fetchJson: (path, params) => api.json(path, params), onStep: (step) => actions.gotoStep(step)});
      else view.update(run);
    }
    if (view) view.setStep(s.step);
  }

  return {update, destroy: () => view && view.destroy()};
}
