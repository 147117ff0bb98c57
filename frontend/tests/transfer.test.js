// The projection answers' decoders (api.js): the compact form written by the server (fixtures in data/, rewritten
// by `python tests/test_transfer.py` and checked against the server's encoder by the Python tests), the binary
// form, and hostile answers (truncated, wrong lengths, wrong base) that must throw, never return garbage.

import {test} from 'node:test';
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {parseCompactProjection, parseBinaryProjection, parseProjection, readContainer, ApiError} from '../api.js';
import {dviContainer} from './fixtures.js';

const here = new URL('./data/', import.meta.url);
const load = (name) => {
  const b = readFileSync(new URL(name, here));
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
};
const expected = JSON.parse(readFileSync(new URL('compact_expected.json', here), 'utf8'));
const close = (got, want, tol) => want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) <= tol, `${i}: ${got[i]} vs ${v}`));

const container = dviContainer;

test('a full compact answer decodes to what the server decodes', () => {
  const p = parseCompactProjection(load('compact_full.bin'));
  const want = expected.full;
  assert.equal(p.step, 3);
  assert.equal(p.n, 5);
  assert.deepEqual(p.bounds, [-3, 2, 4, 9]);
  assert.deepEqual(p.flags, {flipped: [1]});
  assert.deepEqual([...p.ids], want.ids);
  assert.deepEqual([...p.labels], want.labels);
  assert.deepEqual([...p.split], want.split);
  assert.deepEqual([...p.pred], want.pred);
  close(p.x, want.x, 1e-5);
  close(p.y, want.y, 1e-5);
  close(p.conf, want.conf, 1e-6);
  assert.equal(p.box, undefined, 'the quantisation box is not a projection field');
});

test('an answer against a base step shares the base arrays and applies the changed predictions', () => {
  const base = parseCompactProjection(load('compact_full.bin'));
  const basePred = [...base.pred];
  const p = parseCompactProjection(load('compact_step4_base3.bin'), base);
  assert.equal(p.step, 4);
  assert.equal(p.ids, base.ids, 'ids are shared, not copied');
  assert.equal(p.labels, base.labels);
  assert.equal(p.flags, base.flags);
  assert.deepEqual([...p.pred], expected.step4.pred);
  assert.deepEqual([...base.pred], basePred, 'the base is not modified');
  close(p.x, expected.step4.x, 1e-5);
  assert.deepEqual(parseProjection(load('compact_step4_base3.bin'), base).pred, p.pred);
});

test('an answer against a base needs that base', () => {
  const other = {...parseCompactProjection(load('compact_full.bin')), step: 2};
  assert.throws(() => parseCompactProjection(load('compact_step4_base3.bin')), ApiError);
  assert.throws(() => parseCompactProjection(load('compact_step4_base3.bin'), other), /not the base given/);
  const short = {...other, step: 3, ids: new Int32Array(4)};
  assert.throws(() => parseCompactProjection(load('compact_step4_base3.bin'), short), /not the base given/);
});

test('truncated answers throw at every cut', () => {
  const buf = load('compact_full.bin');
  // (the last 3 bytes are padding after the last 5-byte array: cutting them loses nothing)
  for (const cut of [0, 3, 7, 8, 20, buf.byteLength - 200, buf.byteLength - 4]) {
    assert.throws(() => parseCompactProjection(buf.slice(0, cut)), ApiError, `cut at ${cut}`);
  }
});

test('wrong lengths, unknown types, foreign encodings and bad changed rows throw', () => {
  const n = 3;
  const good = {xq: new Uint16Array(n), yq: new Uint16Array(n), confq: new Uint8Array(n), labels: new Uint8Array(n), split: new Uint8Array(n), pred: new Uint8Array(n)};
  const header = {step: 1, n, box: [0, 0, 1, 1], encoding: 'compact1', base: null, ids_range: true};
  assert.equal(parseCompactProjection(container(header, good)).n, 3);
  assert.throws(() => parseCompactProjection(container(header, {...good, labels: new Uint8Array(2)})), /labels has 2 values/);
  assert.throws(() => parseCompactProjection(container(header, {xq: good.xq})), /no yq/);
  assert.throws(() => parseCompactProjection(container({...header, ids_range: false}, good)), /no ids/);
  assert.throws(() => parseCompactProjection(container({...header, box: [0, 0, 'x', 1]}, good)), /bad box/);
  assert.throws(() => parseCompactProjection(container({...header, n: -1}, good)), /bad sample count/);
  assert.throws(() => parseCompactProjection(container({...header, encoding: 'other'}, good)), /not compact1/);
  const base = parseCompactProjection(container(header, good));
  const rel = {xq: good.xq, yq: good.yq, confq: good.confq, changed: new Int32Array([7]), changed_pred: new Uint8Array([1])};
  assert.throws(() => parseCompactProjection(container({...header, base: 1}, rel), base), /outside the step/);
  const uneven = {...rel, changed: new Int32Array([0, 1])};
  assert.throws(() => parseCompactProjection(container({...header, base: 1}, uneven), base), /differ in length/);
  // the container itself: a header longer than the answer, a table entry past the end, an unknown dtype
  const buf = new Uint8Array(container(header, good));
  new DataView(buf.buffer).setUint32(4, 1 << 30, true);
  assert.throws(() => readContainer(buf.buffer), /header longer/);
  const past = JSON.stringify({arrays: [{name: 'x', dtype: 'float32', offset: 0, length: 1000}]});
  const bytes = new TextEncoder().encode(past);
  const blob = new Uint8Array(8 + bytes.length);
  blob.set([68, 86, 73, 49]);
  new DataView(blob.buffer).setUint32(4, bytes.length, true);
  blob.set(bytes, 8);
  assert.throws(() => readContainer(blob.buffer), /runs past the end/);
  const odd = new TextEncoder().encode(JSON.stringify({arrays: [{name: 'x', dtype: 'int64', offset: 0, length: 0}]}));
  const blob2 = new Uint8Array(8 + odd.length);
  blob2.set([68, 86, 73, 49]);
  new DataView(blob2.buffer).setUint32(4, odd.length, true);
  blob2.set(odd, 8);
  assert.throws(() => readContainer(blob2.buffer), /unknown type/);
  assert.throws(() => readContainer(new Uint8Array([68, 86, 73, 49, 2, 0, 0, 0, 123, 125]).buffer), /no array table/);
  assert.throws(() => readContainer('DVI1'), ApiError);
});

test('the binary form still parses, and parseProjection tells the forms apart', () => {
  const arrays = {ids: new Int32Array([4, 5]), x: new Float32Array([1, 2]), y: new Float32Array([3, 4]), labels: new Uint8Array([0, 1]),
    pred: new Uint8Array([1, 1]), conf: new Float32Array([0.5, 0.25]), split: new Uint8Array([1, 0])};
  const buf = container({step: 2, n: 2, bounds: [0, 0, 1, 1]}, arrays);
  const p = parseBinaryProjection(buf);
  assert.deepEqual([...p.ids], [4, 5]);
  assert.deepEqual([...p.x], [1, 2]);
  assert.equal(p.arrays, undefined);
  assert.deepEqual([...parseProjection(buf).pred], [1, 1]);
});
