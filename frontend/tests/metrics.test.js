import {test} from 'node:test';
import assert from 'node:assert/strict';
import {metricKeys, versus, METRIC_INFO} from '../views/metrics.js';
import {REFERENCE} from '../reference.js';

test('known metrics come first in a fixed order, unknown ones after, alphabetically', () => {
  const keys = metricKeys({train: {zeta: 1, ppr: 0.9, nn: 0.3}, test: {alpha: 2, speckle: 0.01}});
  assert.deepEqual(keys, ['nn', 'ppr', 'speckle', 'alpha', 'zeta']);
});

test('comparison with the reference respects which way is better', () => {
  assert.equal(versus('nn', 0.4, 0.35).symbol, '▲');
  assert.equal(versus('nn', 0.3, 0.35).symbol, '▼');
  assert.equal(versus('ccr', 0.01, 0.05).symbol, '▲', 'lower confidence change is better');
  assert.equal(versus('nn', 0.351, 0.35).symbol, '=');
  assert.equal(versus('nn', 0.4, null), null, 'no reference, no verdict');
  assert.equal(versus('unknown_metric', 0.4, 0.3), null, 'unknown direction, no verdict');
});

test('the generated reference names umap-learn and has train and test values for known metrics', () => {
  assert.equal(REFERENCE.method, 'umap-learn');
  for (const split of ['train', 'test']) {
    assert.ok(Object.keys(REFERENCE.metrics[split]).length > 0);
    for (const [k, v] of Object.entries(REFERENCE.metrics[split])) {
      assert.ok(k in METRIC_INFO, `${k} is described`);
      assert.ok(Number.isFinite(v));
    }
  }
});
