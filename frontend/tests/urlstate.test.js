import {test} from 'node:test';
import assert from 'node:assert/strict';
import {INITIAL_STATE} from '../state/store.js';
import {encodeState, decodeState} from '../state/urlstate.js';
import {TWO_RUNS} from './fixtures.js';

const strip = (d) => Object.fromEntries(Object.entries(d).filter(([, v]) => v !== null && v !== undefined));

test('filters, selection, compare and camera survive a round trip through the URL', () => {
  const state = {...INITIAL_STATE, run: 'noisy', step: 2, follow: false, selected: 17, compare: true, compareRuns: ['noisy', 'clean'],
    filter: {label: 1, pred: 2, split: 'test', mis: true, changed: true, flags: ['flipped']}, camera: {x: 0.25, y: 0.6, zoom: 3}, view: 'dynamics'};
  const saved = strip(encodeState(state));
  assert.equal(saved.label, '1');
  assert.equal(saved.cam, '0.25,0.6,3');
  assert.equal(saved.live, undefined, 'not following');
  const back = {...INITIAL_STATE, ...decodeState(saved, TWO_RUNS)};
  for (const k of ['run', 'step', 'follow', 'selected', 'compare', 'compareRuns', 'filter', 'camera', 'linked', 'view']) assert.deepEqual(back[k], state[k], k);
});

test('an unlinked camera per run round-trips too', () => {
  const state = {...INITIAL_STATE, run: 'clean', step: 1, linked: false, cameras: {clean: {x: 0.1, y: 0.2, zoom: 2}, noisy: {x: 0.5, y: 0.5, zoom: 1}}};
  const back = decodeState(strip(encodeState(state)), TWO_RUNS);
  assert.equal(back.linked, false);
  assert.deepEqual(back.cameras, {clean: {x: 0.1, y: 0.2, zoom: 2}}, 'default cameras are not written');
});

test('the default state writes only run, step and live', () => {
  const saved = strip(encodeState({...INITIAL_STATE, run: 'clean', step: 3}));
  assert.deepEqual(saved, {run: 'clean', step: '3', live: '1'});
  const back = decodeState(saved, TWO_RUNS);
  assert.equal(back.follow, true);
});

test('unknown runs and malformed values are dropped', () => {
  const back = decodeState({run: 'gone', step: 'x', sel: '-3', compare: 'clean,gone', label: '1.5', split: 'both', cam: 'nope', cams: 'gone:0.5,0.5,2;bad'}, TWO_RUNS);
  assert.equal(back.run, undefined);
  assert.equal(back.step, undefined);
  assert.equal(back.selected, undefined);
  assert.equal(back.compare, undefined, 'compare needs two known runs');
  assert.equal(back.filter.label, null);
  assert.equal(back.filter.split, 'all');
  assert.deepEqual(back.camera, INITIAL_STATE.camera);
  assert.deepEqual(back.cameras, {});
});

test('the main view and the time bar zoom round-trip; bad ones are dropped', () => {
  const state = {...INITIAL_STATE, run: 'clean', step: 2, view: 'layers', zoom: [100, 300]};
  const saved = strip(encodeState(state));
  assert.deepEqual([saved.view, saved.zoom], ['layers', '100,300']);
  const back = decodeState(saved, TWO_RUNS);
  assert.deepEqual([back.view, back.zoom], ['layers', [100, 300]]);
  assert.equal(strip(encodeState({...INITIAL_STATE, run: 'clean'})).view, undefined);
  const bad = decodeState({view: 'nope', zoom: '5,1'}, TWO_RUNS);
  assert.deepEqual([bad.view, bad.zoom], ['map', null]);
  assert.equal(decodeState({zoom: 'a,b'}, TWO_RUNS).zoom, null);
});
