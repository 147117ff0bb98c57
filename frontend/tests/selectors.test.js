import {test} from 'node:test';
import assert from 'node:assert/strict';
import {INITIAL_STATE, withPanel} from '../state/store.js';
import * as sel from '../state/selectors.js';
import {TWO_RUNS, runInfo} from './fixtures.js';

const single = {...INITIAL_STATE, runs: TWO_RUNS, loaded: true, run: 'clean', step: 2};
const compare = {...single, compare: true, compareRuns: ['noisy', 'clean']};

test('visible runs follow compare mode and panel order, and drop unknown runs', () => {
  assert.deepEqual(sel.visibleRuns(single), ['clean']);
  assert.deepEqual(sel.visibleRuns(compare), ['noisy', 'clean']);
  assert.deepEqual(sel.visibleRuns({...compare, compareRuns: ['gone', 'clean']}), ['clean']);
  assert.deepEqual(sel.visibleRuns({...single, run: 'gone'}), []);
});

test('allSteps is the sorted union of the visible runs\' steps', () => {
  assert.deepEqual(sel.allSteps(single), [0, 1, 2, 3]);
  assert.deepEqual(sel.allSteps(compare), [0, 1, 2, 3, 4]);
});

test('readyAll keeps steps every run having them has projected', () => {
  assert.deepEqual([...sel.readyAll(compare)].sort(), [0, 1, 2, 3]);
  assert.deepEqual([...sel.readyAll(single)].sort(), [0, 1, 2, 3]);
});

test('stepForRun picks the largest step at or before, else the first', () => {
  const noisy = TWO_RUNS[1];
  assert.equal(sel.stepForRun(noisy, 3), 2);
  assert.equal(sel.stepForRun(noisy, 4), 4);
  assert.equal(sel.stepForRun(runInfo('late', [5, 6]), 1), 5);
  assert.equal(sel.stepForRun(runInfo('none', []), 1), null);
});

test('fallbackStep is the newest projected step before a pending one', () => {
  const r = runInfo('r', [0, 1, 2, 3], [0, 1]);
  assert.equal(sel.fallbackStep(r, 3), 1);
  assert.equal(sel.fallbackStep(r, 0), null);
  assert.equal(sel.previousStep(r, 2), 1);
  assert.equal(sel.previousStep(r, 0), null);
});

test('the time bar labels the shown step, not the requested one, while a step loads', () => {
  let s = withPanel({...single, step: 3}, 'clean', {shown: 1, pending: 3, accuracy: {train: 0.5, test: 0.4}});
  const m = sel.timebarModel(s);
  assert.equal(m.index, 3, 'the slider stays where the user put it');
  assert.equal(m.label, '1');
  assert.equal(m.shownStep, 1);
  assert.equal(m.loading, 3);
  assert.deepEqual(m.accuracy, {train: 0.5, test: 0.4});
  s = withPanel(s, 'clean', {shown: 3, pending: null});
  assert.equal(sel.timebarModel(s).label, '3');
  assert.equal(sel.timebarModel(s).loading, null);
});

test('in compare mode the time bar names each run\'s step when they differ, and shows no accuracy', () => {
  let s = withPanel(withPanel(compare, 'noisy', {shown: 2}), 'clean', {shown: 2, accuracy: {train: 1, test: 1}});
  assert.equal(sel.timebarModel(s).label, '2');
  assert.equal(sel.timebarModel(s).accuracy, null);
  s = withPanel({...s, step: 3}, 'clean', {shown: 3});
  assert.equal(sel.timebarModel(s).label, 'noisy 2 · clean 3');
  assert.equal(sel.timebarModel(s).shownStep, null);
});

test('panelModel says a panel is waiting while its wanted step is not the shown one', () => {
  const s = withPanel({...compare, step: 4}, 'noisy', {shown: 2, pending: 4});
  assert.equal(sel.panelModel(s, 'noisy').want, 4);
  assert.equal(sel.panelModel(s, 'noisy').waiting, true);
  assert.equal(sel.panelModel(s, 'clean').want, 3, 'clean has no step 4: it shows its step 3');
  assert.equal(sel.allShown(s), false);
  const done = withPanel(withPanel(s, 'noisy', {shown: 4, pending: null}), 'clean', {shown: 3});
  assert.equal(sel.allShown(done), true);
});

test('compare chips list the shown runs first, in panel order', () => {
  const runs = [...TWO_RUNS, runInfo('third', [0])];
  assert.deepEqual(sel.compareChips({...compare, runs}), [{run: 'noisy', on: true}, {run: 'clean', on: true}, {run: 'third', on: false}]);
});

test('the status line counts steps in words that agree in number', () => {
  const one = {...INITIAL_STATE, loaded: true, run: 'r', runs: [runInfo('r', [0], [0], {n: 1})]};
  assert.equal(sel.statusLine(one).text, '1 step · 1 sample · live');
  const busy = {...single, runs: [runInfo('clean', [0, 1, 2], [0], {status: {state: 'running', ready: [0], running: 1, progress: 0.5}})]};
  assert.deepEqual(sel.statusLine(busy), {text: 'Projecting step 1 · 50% · 1 of 3 steps ready', kind: 'busy'});
  assert.equal(sel.statusLine({...single, error: 'boom'}).kind, 'error');
});

test('empty states: nothing before the first answer, a clear message for an empty logdir or an error', () => {
  assert.equal(sel.emptyMessage(INITIAL_STATE), null);
  assert.match(sel.emptyMessage({...INITIAL_STATE, loaded: true}), /No DVI data in this logdir/);
  assert.match(sel.emptyMessage({...INITIAL_STATE, loaded: true, error: 'refused'}), /Could not reach the DVI plugin: refused/);
  assert.equal(sel.emptyMessage(single), null);
});

test('plural and class helpers', () => {
  assert.equal(sel.plural(1, 'step'), '1 step');
  assert.equal(sel.plural(12000, 'sample'), '12,000 samples');
  assert.deepEqual(sel.classesOf({n_classes: 2}), ['0', '1']);
  assert.equal(sel.colorsOf(null), sel.DEFAULT_COLORS);
});

test('a zoomed time bar: the slider covers the range, the position counts over every step', () => {
  const runs = [runInfo('long', Array.from({length: 1000}, (_, i) => i))];
  let s = {...INITIAL_STATE, runs, run: 'long', step: 250, zoom: [200, 299]};
  let m = sel.timebarModel(s);
  assert.equal(m.steps.length, 100);
  assert.deepEqual([m.index, m.sliderIndex, m.position, m.total, m.zoomed], [50, 50, 250, 1000, true]);
  assert.equal(m.first, false);
  s = {...s, step: 999};
  m = sel.timebarModel(s);
  assert.deepEqual([m.index, m.sliderIndex, m.last], [-1, 99, true], 'a step after the range: the thumb waits at its end');
  m = sel.timebarModel({...s, step: 3});
  assert.deepEqual([m.index, m.sliderIndex], [-1, 0]);
  m = sel.timebarModel({...s, zoom: null});
  assert.deepEqual([m.steps.length, m.zoomed], [1000, false]);
});

test('the estimated time left of a run being projected, in the status line and the panel model', () => {
  assert.equal(sel.fmtDuration(null), null);
  assert.equal(sel.fmtDuration(0.2), '1 s');
  assert.equal(sel.fmtDuration(42), '42 s');
  assert.equal(sel.fmtDuration(150), '3 min');
  assert.equal(sel.fmtDuration(4800), '1 h 20 min');
  assert.equal(sel.fmtDuration(7200), '2 h');
  const status = {state: 'running', ready: [0], running: 1, progress: 0.5, eta_s: 150};
  const s = {...INITIAL_STATE, run: 'clean', runs: [runInfo('clean', [0, 1, 2], [0], {status})]};
  assert.equal(sel.statusLine(s).text, 'Projecting step 1 · 50% · 1 of 3 steps ready · about 3 min left');
  assert.equal(sel.panelModel(s, 'clean').eta, 'about 3 min left');
  const unknown = {...s, runs: [runInfo('clean', [0, 1, 2], [0], {status: {...status, eta_s: null}})]};
  assert.equal(sel.statusLine(unknown).text, 'Projecting step 1 · 50% · 1 of 3 steps ready');
  assert.equal(sel.panelModel(unknown, 'clean').eta, null);
  const done = {...s, runs: [runInfo('clean', [0, 1, 2], [0, 1, 2], {status: {state: 'ready', ready: [0, 1, 2], eta_s: 0}})]};
  assert.equal(sel.panelModel(done, 'clean').eta, null, 'no estimate once every step is projected');
});
