import {test} from 'node:test';
import assert from 'node:assert/strict';
import {lodSubset} from '../render/lod.js';

/** Interleaved positions: `dense` points in a tight cluster, then `sparse` points spread over a wide square. */
function scene(dense, sparse, seed = 1) {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pos = new Float32Array(2 * (dense + sparse));
  for (let i = 0; i < dense; i++) {
    pos[2 * i] = 50 + rand();
    pos[2 * i + 1] = 50 + rand();
  }
  for (let i = dense; i < dense + sparse; i++) {
    pos[2 * i] = rand() * 100;
    pos[2 * i + 1] = rand() * 100;
  }
  return pos;
}

test('maps within the budget draw every point', () => {
  assert.equal(lodSubset(scene(10, 10), 20, 20), null);
  assert.equal(lodSubset(new Float32Array(0), 0, 5), null);
});

test('the subsample stays within the budget, holds distinct valid indices and is deterministic', () => {
  const n = 60000;
  const pos = scene(50000, 10000);
  const sub = lodSubset(pos, n, 5000);
  assert.ok(sub.length <= 5000 && sub.length > 3500, `${sub.length}`); // caps are whole numbers per cell
  assert.equal(new Set(sub).size, sub.length);
  assert.ok(sub.every((i) => i >= 0 && i < n));
  assert.deepEqual(lodSubset(pos, n, 5000), sub);
});

test('sparse regions keep their points while the dense cluster is thinned', () => {
  const dense = 50000;
  const sparse = 300;
  const sub = lodSubset(scene(dense, sparse), dense + sparse, 3000, 64);
  const keptSparse = [...sub].filter((i) => i >= dense).length;
  assert.ok(keptSparse >= 0.95 * sparse, `only ${keptSparse} of ${sparse} outlying points kept`);
  assert.ok(sub.length - keptSparse < 3000, 'the cluster is thinned');
});

test('points without finite coordinates are never chosen', () => {
  const pos = scene(2000, 0);
  for (let i = 0; i < 2000; i += 2) pos[2 * i] = NaN;
  const sub = lodSubset(pos, 2000, 500);
  assert.ok(sub.length > 0 && [...sub].every((i) => i % 2 === 1));
  assert.equal(lodSubset(new Float32Array(20).fill(NaN), 10, 5).length, 0);
});
