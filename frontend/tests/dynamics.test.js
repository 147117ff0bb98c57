import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  parseDviBinary, cellColor, cubeRgba, cellAt, bandAtRow, classCurve, curvePoints, sortRows, csvUrls, queryString,
  CORRECT_RGB, WRONG_RGB,
} from '../views/dynamics.js';
import {dviContainer} from './fixtures.js';

const encode = dviContainer;

// 3 pixel rows x 2 columns over 4 steps; band "train 0" has rows 0-1 (samples 7, 3 | 9), band "test 1" row 2.
const CUBE_HEADER = {
  rows: 3, cols: 2, scale: 200, empty: 255, steps: [0, 5, 10, 15], classes: ['cat', 'dog'], curve_shape: [4, 2, 2],
  bands: [{split: 'train', class: 0, row: 0, rows: 2, samples: 3}, {split: 'test', class: 1, row: 2, rows: 1, samples: 1}],
};
const CUBE_ARRAYS = {
  cells: new Uint8Array([200, 100, 0, 255, 50, 200]),
  row_start: new Int32Array([0, 2, 3, 4]),
  ids: new Int32Array([7, 3, 9, 11]),
  col_start: new Int32Array([0, 2, 4]),
  curves: new Float32Array([
    NaN, 1, 0.5, 0.25, // step 0: test (cat, dog), train (cat, dog)
    NaN, 1, 0.75, 0.5,
    NaN, 0, 1, 0.5,
    NaN, 1, 1, 1,
  ]),
};

test('the binary answer parses into its header and typed arrays', () => {
  const cube = parseDviBinary(encode(CUBE_HEADER, CUBE_ARRAYS));
  assert.equal(cube.header.rows, 3);
  assert.deepEqual(Array.from(cube.arrays.cells), [200, 100, 0, 255, 50, 200]);
  assert.deepEqual(Array.from(cube.arrays.ids), [7, 3, 9, 11]);
  assert.ok(cube.arrays.curves instanceof Float32Array && Number.isNaN(cube.arrays.curves[0]));
  assert.throws(() => parseDviBinary(new TextEncoder().encode('NOPE0000').buffer), /not a DVI binary/);
});

test('cell colours run from wrong to correct, with empty cells transparent', () => {
  assert.deepEqual(cellColor(200), [...CORRECT_RGB, 255]);
  assert.deepEqual(cellColor(0), [...WRONG_RGB, 255]);
  assert.deepEqual(cellColor(255), [0, 0, 0, 0]);
  const half = cellColor(100);
  for (let i = 0; i < 3; i += 1) assert.equal(half[i], Math.round((CORRECT_RGB[i] + WRONG_RGB[i]) / 2));
  const rgba = cubeRgba(CUBE_ARRAYS.cells, 3, 2);
  assert.equal(rgba.length, 24);
  assert.deepEqual(Array.from(rgba.subarray(12, 16)), [0, 0, 0, 0], 'the 4th cell (row 1, col 1) is empty');
});

test('a click maps to the samples of its pixel row and the steps of its column', () => {
  const cube = parseDviBinary(encode(CUBE_HEADER, CUBE_ARRAYS));
  const hit = cellAt(cube, 150, 10, 200, 300); // right column, top row
  assert.deepEqual(hit.ids, [7, 3]);
  assert.deepEqual(hit.steps, [10, 15]);
  assert.equal(hit.band.class, 0);
  const bottom = cellAt(cube, 0, 299, 200, 300);
  assert.deepEqual([bottom.row, bottom.col, bottom.ids, bottom.steps], [2, 0, [11], [0, 5]]);
  assert.equal(bottom.band.split, 'test');
  assert.equal(cellAt(cube, 200, 10, 200, 300), null, 'outside the canvas');
  assert.equal(bandAtRow(CUBE_HEADER.bands, 5), null);
});

test('per-class curves read the [T, 2, C] layout and skip missing values', () => {
  const cube = parseDviBinary(encode(CUBE_HEADER, CUBE_ARRAYS));
  assert.deepEqual(classCurve(cube, 1, 0), [0.5, 0.75, 1, 1]);
  assert.deepEqual(classCurve(cube, 0, 0), [null, null, null, null]);
  assert.equal(curvePoints([0, null, 1], 10, 20), '0.0,20.0 10.0,0.0');
});

test('suspects sort by number or text, ties by id, both directions', () => {
  const rows = [{id: 2, score: 0.5, category: 'forgotten'}, {id: 1, score: 0.9, category: 'ambiguous'},
    {id: 3, score: 0.5, category: 'ambiguous'}];
  assert.deepEqual(sortRows(rows, 'score', -1).map((r) => r.id), [1, 2, 3]);
  assert.deepEqual(sortRows(rows, 'score', 1).map((r) => r.id), [2, 3, 1]);
  assert.deepEqual(sortRows(rows, 'category', 1).map((r) => r.id), [1, 3, 2]);
  assert.equal(rows[0].id, 2, 'the input is not reordered');
});

test('CSV download links are relative and escape the run name', () => {
  const urls = csvUrls('runs/a b', 50);
  assert.equal(urls.suspects, './suspects?run=runs%2Fa%20b&k=50&format=csv');
  assert.equal(urls.dynamics, './dynamics?run=runs%2Fa%20b&format=csv');
  assert.equal(queryString({a: 1, b: null, c: undefined, d: 'x'}), 'a=1&d=x');
});
