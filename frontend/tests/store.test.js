import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createStore, withPanel, INITIAL_STATE, EMPTY_PANEL} from '../state/store.js';

test('set merges a patch and notifies listeners with the new and previous state', () => {
  const store = createStore(INITIAL_STATE);
  const seen = [];
  store.subscribe((s, prev) => seen.push([s.step, prev.step]));
  store.set({step: 3});
  store.set((s) => ({...s, step: s.step + 1}));
  assert.deepEqual(seen, [[3, null], [4, 3]]);
  assert.equal(store.get().step, 4);
  assert.equal(INITIAL_STATE.step, null, 'the initial state is never mutated');
});

test('a function returning the same state notifies nobody', () => {
  const store = createStore(INITIAL_STATE);
  let calls = 0;
  store.subscribe(() => calls++);
  store.set((s) => s);
  assert.equal(calls, 0);
});

test('unsubscribe stops notifications', () => {
  const store = createStore(INITIAL_STATE);
  let calls = 0;
  const off = store.subscribe(() => calls++);
  store.set({step: 1});
  off();
  store.set({step: 2});
  assert.equal(calls, 1);
});

test('withPanel merges one panel\'s facts without touching the others', () => {
  let s = withPanel(INITIAL_STATE, 'a', {shown: 2});
  s = withPanel(s, 'b', {pending: 5});
  s = withPanel(s, 'a', {pending: 3});
  assert.deepEqual(s.panels.a, {...EMPTY_PANEL, shown: 2, pending: 3});
  assert.deepEqual(s.panels.b, {...EMPTY_PANEL, pending: 5});
  assert.deepEqual(INITIAL_STATE.panels, {});
});
