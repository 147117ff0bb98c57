import {test, beforeEach} from 'node:test';
import assert from 'node:assert/strict';

// A minimal page for the map on its canvas-2D back end: canvases whose contexts record nothing, and frames that run
// only when the test flushes them (so it can count the frames a change asks for).
let frameQueue = [];
function fakeCanvas() {
  const ctx = new Proxy({}, {get: (target, k) => (k in target ? target[k] : () => {}), set: (target, k, v) => ((target[k] = v), true)});
  return {
    clientWidth: 300, clientHeight: 200, width: 0, height: 0, style: {}, className: '',
    getContext: (kind) => (kind === '2d' ? ctx : null),
    insertAdjacentElement: () => {}, addEventListener: () => {}, remove: () => {},
    getBoundingClientRect: () => ({left: 0, top: 0, width: 300, height: 200}),
  };
}
globalThis.window = {devicePixelRatio: 1};
globalThis.document = {createElement: () => fakeCanvas()};
globalThis.requestAnimationFrame = (cb) => frameQueue.push(cb);
globalThis.cancelAnimationFrame = () => {};
const flush = () => {
  const due = frameQueue;
  frameQueue = [];
  for (const cb of due) cb(0);
};

const {createScatter} = await import('../render/scatter.js');

let map;
const image = {width: 4, height: 4};
beforeEach(() => {
  frameQueue = [];
  map = createScatter(fakeCanvas(), {renderer: 'canvas2d'});
  map.set({palette: ['#ff0000', '#00ff00'], from: new Float32Array([0, 0, 1, 1]), labels: [0, 1], pred: [0, 0],
    landscapes: {a: [{image, bounds: [0, 0, 1, 1]}], b: null}, bounds: {a: [0, 0, 1, 1], b: null}});
  flush();
});

test('setting what the map already shows draws no new frame', () => {
  assert.equal(map.frames, 1);
  // as the panel does once its tiles are looked at: the same overview again, in new objects
  map.set({landscapes: {a: [{image, bounds: [0, 0, 1, 1]}], b: null}, selected: -1, trajectory: null, bounds: {a: [0, 0, 1, 1]}});
  flush();
  assert.equal(map.frames, 1);
});

test('a new landscape, a selection or new positions draw a frame', () => {
  map.set({landscapes: {a: [{image: {width: 8, height: 8}, bounds: [0, 0, 1, 1]}], b: null}});
  flush();
  assert.equal(map.frames, 2);
  map.set({selected: 1});
  flush();
  assert.equal(map.frames, 3);
  map.set({landscapes: {a: [{image, bounds: [0, 0, 2, 1]}]}});
  flush();
  assert.equal(map.frames, 4);
  map.set({from: new Float32Array([0, 0, 2, 2])});
  flush();
  assert.equal(map.frames, 5);
});
