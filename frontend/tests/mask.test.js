import {test} from 'node:test';
import assert from 'node:assert/strict';
import {computeMask, EMPTY_FILTER, isEmptyFilter} from '../state/mask.js';

const data = {
  n: 5, ids: Int32Array.from([10, 11, 12, 13, 14]), labels: Int32Array.from([0, 1, 1, 2, 1]),
  pred: Int32Array.from([0, 1, 2, 2, 0]), split: Uint8Array.from([1, 1, 0, 0, 1]),
};

test('an empty filter matches everything without a mask', () => {
  assert.ok(isEmptyFilter(EMPTY_FILTER));
  assert.deepEqual(computeMask(data, EMPTY_FILTER, null), {mask: null, count: 5, note: null});
});

test('filters combine', () => {
  const {mask, count} = computeMask(data, {...EMPTY_FILTER, label: 1, mis: true}, null);
  assert.deepEqual(Array.from(mask), [0, 0, 1, 0, 1]);
  assert.equal(count, 2);
  assert.equal(computeMask(data, {...EMPTY_FILTER, split: 'test'}, null).count, 2);
  assert.equal(computeMask(data, {...EMPTY_FILTER, pred: 2, split: 'train'}, null).count, 0);
  assert.equal(computeMask(data, {...EMPTY_FILTER, flags: ['f']}, null, {f: new Set([11, 14])}).count, 2);
  assert.equal(computeMask(data, {...EMPTY_FILTER, flags: ['unknown']}, null, {}).count, 0);
});

test('"prediction changed" compares with the previous step, and explains itself on a first step', () => {
  const prev = Int32Array.from([0, 0, 2, 1, 0]);
  assert.deepEqual(computeMask(data, {...EMPTY_FILTER, changed: true}, prev), {mask: Uint8Array.from([0, 1, 0, 1, 0]), count: 2, note: null});
  const first = computeMask(data, {...EMPTY_FILTER, changed: true}, null);
  assert.equal(first.count, 0);
  assert.match(first.note, /first step/);
});
