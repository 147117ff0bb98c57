import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  KIND_COLORS, nearestIndex, stepX, alarmMarks, overviewColumns, dragRange, valueY, alarmLine,
} from '../views/alarms.js';
import {
  groupByBlock, column, finiteMax, changeColor, heatmapRgba, sparkline, heatmapCell, LOW_RGB, HIGH_RGB,
} from '../views/layers.js';

const ALARMS = [
  {step: 72, kind: 'forgetting', reason: "accuracy of '0' fell sharply"},
  {step: 72, kind: 'jump', reason: 'the representation jumped'},
  {step: 80, kind: 'collapse', reason: "separation of '2' collapsed"},
  {step: 8, kind: 'early_warning', reason: 'separation is falling'},
];

test('every alarm kind has a colour', () => {
  for (const kind of ['forgetting', 'collapse', 'early_warning', 'jump', 'layer_jump']) assert.ok(KIND_COLORS[kind]);
});

test('nearestIndex finds the closest logged step (ties to the earlier one)', () => {
  const steps = [0, 8, 16, 64, 65];
  assert.equal(nearestIndex(steps, 9), 1);
  assert.equal(nearestIndex(steps, 12), 1);
  assert.equal(nearestIndex(steps, 13), 2);
  assert.equal(nearestIndex(steps, 1000), 4);
  assert.equal(nearestIndex(steps, -5), 0);
  assert.equal(nearestIndex([], 3), -1);
});

test('alarm marks: one per step inside the range, kinds in order, x on the bar', () => {
  const marks = alarmMarks(ALARMS, 10, 90, 81);
  assert.deepEqual(marks.map((m) => [m.step, m.kinds]), [[72, ['forgetting', 'jump']], [80, ['collapse']]]);
  assert.equal(marks[0].x, 62);
  assert.equal(marks[1].alarms.length, 1);
  assert.equal(stepX(5, 5, 5, 100), 50);
});

test('a 1,000-step overview becomes at most one column per pixel, with min, max and mean', () => {
  const steps = Array.from({length: 1000}, (_, i) => i);
  const values = steps.map((s) => (s === 500 ? null : s % 10));
  const cols = overviewColumns(steps, values, 0, 999, 100);
  assert.ok(cols.length <= 100 && cols.length >= 99, `${cols.length} columns`);
  assert.deepEqual([cols[0].x, cols[0].min, cols[0].max], [0, 0, 9]);
  assert.ok(Math.abs(cols[0].mean - 4.5) < 0.6);
  const zoomed = overviewColumns(steps, values, 100, 109, 100);
  assert.deepEqual(zoomed.map((c) => c.mean), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const started = performance.now();
  overviewColumns(steps, values, 0, 999, 1200);
  assert.ok(performance.now() - started < 100);
});

test('dragging selects a step range; a click selects none', () => {
  assert.deepEqual(dragRange(50, 10, 0, 1000, 101), [100, 500]);
  assert.equal(dragRange(10, 12, 0, 1000, 101), null);
  assert.deepEqual(dragRange(-20, 500, 0, 100, 101), [0, 100]);
});

test('values map into the plot, unit series on [0, 1]', () => {
  assert.equal(valueY(1, 101, true, 0), 0);
  assert.equal(valueY(0, 101, true, 0), 100);
  assert.equal(valueY(2, 101, false, 4), 50);
  assert.equal(valueY(9, 101, true, 0), 0);
});

test('an alarm line says the step, the kind and the reason', () => {
  assert.equal(alarmLine(ALARMS[3]), 'step 8 · early warning · separation is falling');
});

const LAYERS = [
  {name: 'conv1', block: '', params: 100}, {name: 'layer1.0.conv1', block: 'layer1.0', params: 10},
  {name: 'layer1.0.bn1', block: 'layer1.0', params: 2}, {name: 'fc', block: '', params: 5},
];

test('layers group by block in first-seen order', () => {
  assert.deepEqual(groupByBlock(LAYERS), [{block: '(top)', layers: [0, 3]}, {block: 'layer1.0', layers: [1, 2]}]);
});

test('heatmap colours: log scale from max/1000 to max, null transparent', () => {
  assert.deepEqual(changeColor(1, 1), [...HIGH_RGB, 255]);
  assert.deepEqual(changeColor(0.001, 1), [...LOW_RGB, 255]);
  assert.deepEqual(changeColor(null, 1), [0, 0, 0, 0]);
  const mid = changeColor(Math.sqrt(0.001), 1);
  assert.ok(mid[2] < LOW_RGB[2] && mid[2] > HIGH_RGB[2]);
  const rel = [[null, null], [0.5, 0.01], [0.25, 0.02]];
  assert.equal(finiteMax(rel), 0.5);
  const rgba = heatmapRgba(rel);
  assert.equal(rgba.length, 3 * 2 * 4);
  assert.deepEqual([...rgba.slice(4, 8)], [...HIGH_RGB, 255], 'layer 0 at step 1 is the largest change');
  assert.equal(rgba[3], 0, 'the first step has no change yet');
  assert.deepEqual(column(rel, 1), [null, 0.01, 0.02]);
});

test('sparklines skip unknown values and clicks map to cells', () => {
  assert.deepEqual(sparkline([null, 1, 0.5], 11, 11, 1), [[5, 0], [10, 5]]);
  assert.deepEqual(heatmapCell(99, 0, 100, 40, 10, 4), [9, 0]);
  assert.deepEqual(heatmapCell(0, 39, 100, 40, 10, 4), [0, 3]);
  assert.equal(heatmapCell(100, 0, 100, 40, 10, 4), null);
});
