import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createStore, INITIAL_STATE} from '../state/store.js';
import {createPlayback} from '../playback.js';
import {TWO_RUNS} from './fixtures.js';

function setup(step) {
  const store = createStore({...INITIAL_STATE, runs: TWO_RUNS, loaded: true, run: 'clean', step});
  const visited = [];
  const goto = (i) => {
    const steps = [0, 1, 2, 3];
    store.set({step: steps[i]});
    visited.push(steps[i]);
    return Promise.resolve();
  };
  return {store, visited, playback: createPlayback({store, goto})};
}

test('play walks every step in order, stops at the last one and leaves live mode', async () => {
  const {store, visited, playback} = setup(1);
  playback.start();
  assert.equal(store.get().playing, true);
  assert.equal(store.get().follow, false);
  const t0 = Date.now();
  while (store.get().playing && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(visited, [2, 3]);
  assert.equal(store.get().playing, false);
});

test('play from the last step starts over from the first; stop halts it', async () => {
  const {store, visited, playback} = setup(3);
  playback.start();
  await new Promise((r) => setTimeout(r, 50));
  playback.stop();
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(visited, [0], 'restarted at the first step, then stopped before moving on');
  assert.equal(store.get().playing, false);
});

test('zoomed into a range, play walks that range only, from its start when the step is outside it', async () => {
  const {store, visited, playback} = setup(0);
  store.set({zoom: [1, 2]});
  playback.start();
  const t0 = Date.now();
  while (store.get().playing && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(visited, [1, 2], 'step 0 is outside [1, 2]: play starts at 1 and stops at 2, not 3');
  assert.equal(store.get().playing, false);
});
