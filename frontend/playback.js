// Playback: steps through the time bar's positions (every step, or the zoomed range of a long log), waiting for
// each step to be shown (and animated) before holding it for PLAY_HOLD_MS and moving on. Stops at the last position
// or when the user takes the slider.

import {allSteps} from './state/selectors.js';
import {zoomedSteps} from './state/timeline.js';

export const PLAY_HOLD_MS = 350;

/** `goto(index)` (an index into every step, selectors.allSteps) must resolve once that step is on screen. */
export function createPlayback({store, goto}) {
  let timer = 0;
  const all = () => allSteps(store.get());
  const range = () => zoomedSteps(all(), store.get().zoom);
  const at = () => range().indexOf(store.get().step);
  const gotoStep = (step) => goto(all().indexOf(step));

  function stop() {
    clearTimeout(timer);
    if (store.get().playing) store.set({playing: false});
  }

  function next() {
    if (!store.get().playing) return;
    const steps = range();
    const i = at();
    if (i >= steps.length - 1) return stop();
    gotoStep(steps[i + 1]).then(() => {
      clearTimeout(timer);
      if (store.get().playing) timer = setTimeout(next, PLAY_HOLD_MS);
    });
  }

  function start() {
    const steps = range();
    if (steps.length < 2) return;
    store.set({playing: true, follow: false});
    // From the range's first position when at its end or outside it (a step picked before zooming).
    const i = at();
    if (i < 0 || i >= steps.length - 1) gotoStep(steps[0]).then(() => (timer = setTimeout(next, PLAY_HOLD_MS)));
    else next();
  }

  return {start, stop, toggle: () => (store.get().playing ? stop() : start())};
}
