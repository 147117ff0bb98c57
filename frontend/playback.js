// Playback: steps through the slider positions, waiting for each step to be shown (and animated) before holding
// it for PLAY_HOLD_MS and moving on. Stops at the last step or when the user takes the slider.

import {allSteps} from './state/selectors.js';

export const PLAY_HOLD_MS = 350;

/** `goto(index)` must resolve once the step at `index` is on screen. */
export function createPlayback({store, goto}) {
  let timer = 0;
  const index = () => Math.max(0, allSteps(store.get()).indexOf(store.get().step));

  function stop() {
    clearTimeout(timer);
    if (store.get().playing) store.set({playing: false});
  }

  function next() {
    if (!store.get().playing) return;
    const i = index();
    if (i >= allSteps(store.get()).length - 1) return stop();
    goto(i + 1).then(() => {
      clearTimeout(timer);
      if (store.get().playing) timer = setTimeout(next, PLAY_HOLD_MS);
    });
  }

  function start() {
    const steps = allSteps(store.get());
    if (steps.length < 2) return;
    store.set({playing: true, follow: false});
    if (index() >= steps.length - 1) goto(0).then(() => (timer = setTimeout(next, PLAY_HOLD_MS)));
    else next();
  }

  return {start, stop, toggle: () => (store.get().playing ? stop() : start())};
}
