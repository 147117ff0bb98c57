// The time bar's data loader (alarmshost.js): one load per run and step count, polling while the plugin still folds
// steps in (`pending_steps`), errors kept as the run's timeline error.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createStore, INITIAL_STATE} from '../state/store.js';
import {createAlarmsHost, PENDING_POLL_MS} from '../alarmshost.js';
import {runInfo} from './fixtures.js';

function fakeApi(answers) {
  const calls = [];
  return {
    calls,
    json(path, params) {
      calls.push([path, params]);
      const next = answers[path].length > 1 ? answers[path].shift() : answers[path][0];
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
  };
}

const stats = (steps, pending) => ({steps, overview: {accuracy: steps.map(() => 0.5)}, pending_steps: pending});
const alarms = (list, pending) => ({alarms: list, classes: ['a'], pending_steps: pending});
const settle = (ms = 0) => new Promise((r) => setTimeout(r, ms));

test('the primary run\'s overview and alarms land in the store; a pending long log is polled until complete', async () => {
  const api = fakeApi({
    stepstats: [stats([0, 1], 2), stats([0, 1, 2, 3], 0)],
    alarms: [alarms([], 2), alarms([{step: 3, kind: 'jump', reason: 'r'}], 0)],
  });
  const store = createStore({...INITIAL_STATE, runs: [runInfo('long', [0, 1, 2, 3])], run: 'long'});
  const host = createAlarmsHost({store, api});
  host.update(store.get());
  await settle();
  assert.deepEqual(store.get().timeline.steps, [0, 1]);
  assert.equal(store.get().timeline.pending, 2);
  assert.deepEqual(api.calls[0], ['stepstats', {run: 'long', start: 1, end: 0}], 'the overview only: no per-class detail');
  host.update(store.get()); // nothing changed: no new request
  assert.equal(api.calls.length, 2);
  await settle(PENDING_POLL_MS + 100);
  assert.deepEqual(store.get().timeline.steps, [0, 1, 2, 3]);
  assert.equal(store.get().timeline.pending, 0);
  assert.equal(store.get().timeline.alarms.length, 1);
  await settle(PENDING_POLL_MS + 100);
  assert.equal(api.calls.length, 4, 'no more polling once every step is folded in');
  host.destroy();
});

test('a new logged step reloads; a run without logits keeps the error', async () => {
  const err = Object.assign(new Error('run has no logits'), {status: 404});
  const api = fakeApi({stepstats: [err], alarms: [alarms([], 0)]});
  const store = createStore({...INITIAL_STATE, runs: [runInfo('plain', [0, 1])], run: 'plain'});
  const host = createAlarmsHost({store, api});
  host.update(store.get());
  await settle();
  assert.equal(store.get().timeline.error, 'run has no logits');
  assert.deepEqual(store.get().timeline.alarms, []);
  store.set({runs: [runInfo('plain', [0, 1, 2])]});
  host.update(store.get());
  await settle();
  assert.equal(api.calls.filter(([p]) => p === 'stepstats').length, 2, 'reloaded for the new step');
  host.destroy();
});
