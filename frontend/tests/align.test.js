import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createAligner, alignTo} from '../state/align.js';

const proj = (ids, step) => ({
  step, ids: Int32Array.from(ids), x: Float32Array.from(ids.map((i) => i + 0.5)), y: Float32Array.from(ids.map((i) => -i)),
  labels: Int32Array.from(ids.map((i) => i % 3)), pred: Int32Array.from(ids.map((i) => i % 2)), conf: Float32Array.from(ids.map(() => 0.5)),
  split: Uint8Array.from(ids.map(() => 1)), bounds: [0, 0, 1, 1], flags: {f: [2]},
});

test('the first projection of a run fixes the sample order', () => {
  const a = createAligner();
  const first = a.align('r', proj([3, 1, 2], 0));
  assert.deepEqual(Array.from(first.pos), [3.5, -3, 1.5, -1, 2.5, -2]);
  assert.equal(a.indexOf('r', 2), 2);
  assert.equal(a.indexOf('r', 9), -1);
  assert.equal(a.indexOf('other', 2), -1);
  assert.ok(first.flagSets.f.has(2));
});

test('a later projection in another order or with missing samples is rearranged onto it', () => {
  const a = createAligner();
  a.align('r', proj([3, 1, 2], 0));
  const later = a.align('r', proj([2, 3], 1));
  assert.deepEqual(Array.from(later.pos).map((v) => (Number.isNaN(v) ? 'nan' : v)), [3.5, -3, 'nan', 'nan', 2.5, -2]);
  assert.deepEqual(Array.from(later.labels), [0, -1, 2]);
  assert.equal(later.step, 1);
  const p = proj([1, 2], 2);
  assert.equal(a.align('r', p), a.align('r', p), 'aligned once per projection');
});

test('alignTo works alone (pure)', () => {
  const out = alignTo(Int32Array.from([1, 2]), proj([2, 1], 0));
  assert.deepEqual(Array.from(out.pos), [1.5, -1, 2.5, -2]);
  assert.equal(out.n, 2);
});
