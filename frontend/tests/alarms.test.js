// The long-log time bar (state/timeline.js) and the layers view's pure helpers (views/layers.js).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  KIND_COLORS, nearestIndex, indexX, xIndex, zoomedSteps, alarmMarks, overviewColumns, dragRange, valueY, alarmLine,
  tickSegments, overviewData, MAX_TICK_DOTS, seriesMax,
} from '../state/timeline.js';
import {
  groupByBlock, column, finiteMax, changeColor, heatmapRgba, sparkline, heatmapCell, LOW_RGB, HIGH_RGB,
} from '../views/layers.js';

const ALARMS = [
  {step: 8, kind: 'early_warning', reason: 'separation is falling'},
  {step: 72, kind: 'jump', reason: 'the representation jumped'},
  {step: 72, kind: 'forgetting', reason: "accuracy of '0' fell sharply"},
  {step: 80, kind: 'collapse', reason: "separation of '2' collapsed"},
];
const range = (n, from = 0, by = 1) => Array.from({length: n}, (_, i) => from + i * by);

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

test('the x axis is the slider\'s: position i of n at i / (n - 1) of the bar, and back', () => {
  assert.equal(indexX(0, 11, 101), 0);
  assert.equal(indexX(10, 11, 101), 100);
  assert.equal(indexX(5, 11, 101), 50);
  assert.equal(indexX(0, 1, 101), 50);
  assert.equal(xIndex(49, 11, 101), 5);
  assert.equal(xIndex(-20, 11, 101), 0);
  assert.equal(xIndex(500, 11, 101), 10);
});

test('alarm marks: one per slider position, kinds by severity, at the x of that position', () => {
  const steps = range(12, 0, 8); // 0, 8, ..., 88
  const marks = alarmMarks(ALARMS, steps, 111);
  assert.deepEqual(marks.map((m) => [m.step, m.kinds]), [[8, ['early_warning']], [72, ['forgetting', 'jump']], [80, ['collapse']]]);
  assert.equal(marks[1].x, 90, 'position 9 of 12 on 111 pixels');
  assert.equal(marks[1].alarms.length, 2);
  // Zoomed into 64..88: the early warning is outside; an alarm between two logged steps goes to the nearest one.
  const zoomed = alarmMarks([...ALARMS, {step: 85, kind: 'layer_jump', reason: 'x'}], [64, 72, 80, 88], 100);
  assert.deepEqual(zoomed.map((m) => [m.step, m.x]), [[72, 33], [80, 66], [88, 99]]);
  assert.deepEqual(alarmMarks(ALARMS, [], 100), []);
});

test('a 1,000-step overview becomes at most one column per pixel, with min, max and mean, in well under 100 ms', () => {
  const steps = range(1000);
  const values = steps.map((s) => (s === 500 ? null : s % 10));
  const cols = overviewColumns(steps, values, steps, 100);
  assert.ok(cols.length <= 100 && cols.length >= 99, `${cols.length} columns`);
  assert.deepEqual([cols[0].x, cols[0].min, cols[0].max], [0, 0, 5]);
  const all = cols.reduce((a, c) => a + c.mean, 0) / cols.length;
  assert.ok(Math.abs(all - 4.5) < 0.3, `mean of means ${all}`);
  const zoomed = overviewColumns(steps, values, range(10, 100), 100);
  assert.deepEqual(zoomed.map((c) => c.mean), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(zoomed.map((c) => c.x), [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]);
  const started = performance.now();
  for (let k = 0; k < 4; k += 1) overviewColumns(steps, values, steps, 1200);
  assert.ok(performance.now() - started < 100, 'four series over 1,000 steps');
});

test('zoom keeps the slider\'s steps inside the range, unless fewer than two are left', () => {
  const steps = [0, 8, 16, 24, 32];
  assert.deepEqual(zoomedSteps(steps, [8, 24]), [8, 16, 24]);
  assert.equal(zoomedSteps(steps, null), steps);
  assert.equal(zoomedSteps(steps, [9, 15]), steps);
});

test('dragging selects a step range over the slider positions; a click selects none', () => {
  const steps = range(1001);
  assert.deepEqual(dragRange(50, 10, steps, 101), [100, 500]);
  assert.equal(dragRange(10, 12, steps, 101), null);
  assert.deepEqual(dragRange(-20, 500, range(101), 101), [0, 100]);
  assert.equal(dragRange(0, 50, [3], 101), null);
});

test('values map into the plot, unit series on [0, 1], others on [0, max]', () => {
  assert.equal(valueY(1, 101, true, 0), 0);
  assert.equal(valueY(0, 101, true, 0), 100);
  assert.equal(valueY(2, 101, false, 4), 50);
  assert.equal(valueY(9, 101, true, 0), 0);
  assert.equal(seriesMax([null, 3, NaN, 2]), 3);
});

test('an alarm line says the step, the kind and the reason', () => {
  assert.equal(alarmLine(ALARMS[0]), 'step 8 · early warning · separation is falling');
});

test('readiness ticks: a dot per step on short runs, merged segments on a 1,000-step run', () => {
  const short = tickSegments([0, 1, 2], new Set([0, 2]));
  assert.deepEqual(short.map((t) => [t.from, t.ready, t.left, t.dot]), [[0, true, 0, true], [1, false, 50, true], [2, true, 100, true]]);
  const steps = range(1000);
  const ready = new Set(steps.filter((s) => s < 400 || s >= 600));
  const segs = tickSegments(steps, ready);
  assert.deepEqual(segs.map((t) => [t.from, t.to, t.ready]), [[0, 399, true], [400, 599, false], [600, 999, true]]);
  assert.ok(Math.abs(segs[1].left - (100 * 400) / 999) < 1e-9);
  assert.equal(tickSegments(range(MAX_TICK_DOTS), new Set()).length, MAX_TICK_DOTS);
});

test('overviewData keeps the series that have values (displacement only once steps are projected)', () => {
  const timeline = {steps: [0, 1], overview: {accuracy: [0.5, 0.6], mean_separation: [1, 2], neighbour_change: [null, 0.1],
    displacement: [null, null]}, alarms: ALARMS};
  const d = overviewData(timeline, [0, 1]);
  assert.deepEqual(d.series.map((s) => s.key), ['accuracy', 'mean_separation', 'neighbour_change']);
  assert.equal(d.series[1].max, 2);
  assert.equal(d.alarms, ALARMS);
  assert.equal(overviewData(null, [0, 1]), null);
  assert.equal(overviewData(timeline, []), null);
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
