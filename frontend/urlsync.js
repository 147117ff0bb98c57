// Mirrors the store into the URL (`p.dvi.*` keys of TensorBoard's hash, see host.js) after each change, debounced,
// and reads it back at start.

import {encodeState} from './state/urlstate.js';
import {writeUrlState} from './host.js';

export const URL_DEBOUNCE_MS = 150;

/** Starts writing the store's URL keys whenever they change; returns a function that stops it. */
export function syncUrl(store) {
  let timer = 0;
  let last = null;
  const unsubscribe = store.subscribe((state) => {
    if (!state.loaded) return;
    const enc = encodeState(state);
    const key = JSON.stringify(enc);
    if (key === last) return;
    last = key;
    clearTimeout(timer);
    timer = setTimeout(() => writeUrlState(enc), URL_DEBOUNCE_MS);
  });
  return () => {
    clearTimeout(timer);
    unsubscribe();
  };
}
