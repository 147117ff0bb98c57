// Hosts the training-dynamics view (views/dynamics.js: correctness cube, per-class curves, suspects) in the main
// area when the store's `view` is 'dynamics', for the first visible run, and wires its picks into the tab:
// a sample picked there is selected and shown on the map, a class band becomes the label filter.

import {mountDynamics} from './views/dynamics.js';
import {EMPTY_FILTER} from './state/mask.js';
import {visibleRuns, readySet, runInfo} from './state/selectors.js';

/** `actions`: select(id), gotoStep(step), setFilter(filter), setView(view). */
export function createDynamicsHost({container, api, actions}) {
  let view = null;
  let key = null;

  function mount(run) {
    view = mountDynamics(container, {
      run,
      fetchJson: (path, params) => api.json(path, params),
      onSelectSample: (ids) => {
        if (!ids.length) return;
        actions.select(ids[0]);
        actions.setView('map');
      },
      onStep: (step) => actions.gotoStep(step),
      onFilterClass: (cls, split) => {
        actions.setFilter({...EMPTY_FILTER, label: cls, split: split === 'train' || split === 'test' ? split : 'all'});
        actions.setView('map');
      },
    });
  }

  /** Shows or hides the view; (re)loads it when the run or its number of steps changes. */
  function update(s) {
    const show = s.view === 'dynamics';
    container.classList.toggle('dvi-hidden', !show);
    if (!show) return;
    const run = visibleRuns(s)[0] || null;
    const info = run ? runInfo(s, run) : null;
    const k = JSON.stringify([run, info ? info.steps.length : 0, readySet(info).size]);
    if (!run || k === key) return;
    key = k;
    if (!view) mount(run);
    else view.update(run);
  }

  return {update, destroy: () => view && view.destroy()};
}
