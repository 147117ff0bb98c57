import {test} from 'node:test';
import assert from 'node:assert/strict';
import {viewportImage, splitViewport, pyramidReady, firstPaint, containsBox, visibleMap, visibleRect, tileBounds, pixelsPerUnit,
  MAX_VIEWPORT_PIXELS, TILE_SIZE} from '../state/tiles.js';

const B = [0, 0, 256, 256]; // level z has 2^z pixels per unit at 256-pixel tiles
const close = (a, b, eps = 1e-9) => a.every((v, i) => Math.abs(v - b[i]) < eps);

test('the viewport image covers the visible part of the map on the level\'s pixel grid, snapped to 8 pixels', () => {
  // 4 px per unit on screen, 400 x 200 CSS px centred at (100, 120): x 50..150, y 95..145; level 3: 8 px per unit.
  const v = viewportImage(B, {cx: 100, cy: 120, scale: 4}, 400, 200, 3);
  assert.equal(v.z, 3);
  assert.deepEqual([v.col, v.row, v.width, v.height], [400, 888, 800, 400]); // rows from the top: (256 - 145) * 8 = 888
  assert.ok(close(v.box, [50, 95, 150, 145]));
  assert.ok(containsBox(v.box, visibleRect({cx: 100, cy: 120, scale: 4}, 400, 200)));
  assert.equal(v.width / (v.box[2] - v.box[0]), pixelsPerUnit(B, TILE_SIZE, 3), 'the tiles\' own pixel density');
});

test('an off-grid view is widened to the next 8-pixel step, never beyond the map', () => {
  const v = viewportImage(B, {cx: 100.3, cy: 120.7, scale: 4.1}, 401, 203, 3);
  for (const n of [v.col, v.row, v.width, v.height]) assert.equal(n % 8, 0);
  assert.ok(containsBox(v.box, visibleRect({cx: 100.3, cy: 120.7, scale: 4.1}, 401, 203), 1e-9));
  assert.ok(v.width - 401 / 4.1 * 8 < 16 && v.height - 203 / 4.1 * 8 < 16, 'at most one step wider on each side');
  // The view's left part lies outside the map: the image starts at the map's edge.
  const edge = viewportImage(B, {cx: 10, cy: 250, scale: 4}, 400, 200, 2);
  assert.equal(edge.col, 0);
  assert.equal(edge.row, 0);
  assert.ok(close(edge.box, [0, 224, 60, 256]), 'y 225 widened to the 8-pixel step below: 224');
  assert.equal(viewportImage(B, {cx: -500, cy: 0, scale: 4}, 400, 200, 3), null, 'nothing of the map in view');
});

test('the box of a viewport on a tile\'s pixels is the tile\'s box', () => {
  // A view showing exactly tile (3, 4, 3) (32 units square) at 1 screen pixel per level pixel.
  const t = tileBounds(B, 3, 4, 3);
  const v = viewportImage(B, {cx: (t[0] + t[2]) / 2, cy: (t[1] + t[3]) / 2, scale: 8}, 256, 256, 3);
  assert.ok(close(v.box, t));
  assert.deepEqual([v.width, v.height], [256, 256]);
});

test('split in two along the longer side at a multiple of 8 pixels; the halves tile the whole', () => {
  const v = viewportImage(B, {cx: 100, cy: 120, scale: 4}, 404, 200, 3);
  const [a, b] = splitViewport(v, 2);
  assert.equal(a.height, v.height);
  assert.equal(a.width % 8, 0);
  assert.equal(a.width + b.width, v.width);
  assert.equal(b.col, a.col + a.width);
  assert.ok(close([a.box[0], a.box[1], b.box[2], b.box[3]], v.box), 'outer edges are the whole\'s');
  assert.ok(Math.abs(a.box[2] - b.box[0]) < 1e-9, 'the halves meet');
  assert.equal(a.width / (a.box[2] - a.box[0]), 8, 'each half at the level\'s density');
  const tall = splitViewport({...v, width: 160, height: 400, box: [0, 0, 20, 50]}, 2);
  assert.deepEqual(tall.map((p) => p.height), [200, 200]);
  assert.ok(close(tall[0].box, [0, 25, 20, 50]) && close(tall[1].box, [0, 0, 20, 25]), 'top half first');
  assert.equal(splitViewport({...v, width: 8, height: 8, box: [0, 0, 1, 1]}, 2).length, 1, 'too small to cut');
});

test('a step\'s tiles count as rendered only when a status received after the step was drawn says so', () => {
  const ahead = {depth: 3, queued: [4, 2], running: 7, rendered: [1, 5]};
  assert.equal(pyramidReady(ahead, 5, 3, 100, 200), true, 'rendered, status newer than the draw');
  assert.equal(pyramidReady(ahead, 6, 3, 100, 200), false, 'in no list: not known rendered (the queue was full)');
  assert.equal(pyramidReady({depth: 3, queued: [], running: null}, 5, 3, 100, 200), false, 'a status without the list');
  assert.equal(pyramidReady({...ahead, queued: [5]}, 5, 3, 100, 200), false, 'queued again since');
  assert.equal(pyramidReady(ahead, 5, 3, 300, 200), false, 'the status predates the draw: the step may be queued since');
  assert.equal(pyramidReady(ahead, 2, 3, 100, 200), false, 'queued');
  assert.equal(pyramidReady(ahead, 7, 3, 100, 200), false, 'rendering');
  assert.equal(pyramidReady(ahead, 5, 4, 100, 200), false, 'deeper than the pyramid rendered ahead');
  assert.equal(pyramidReady(undefined, 5, 3, 100, 200), false, 'no status');
  assert.equal(pyramidReady({depth: 0, queued: [], running: null}, 5, 1, 100, 200), false, 'rendering ahead is off');
});

test('a viewport image first only on a cold level change within the plugin\'s limits', () => {
  const viewport = {width: 800, height: 600};
  const cold = {z: 3, levelChanged: true, missing: 16, ready: false, viewport};
  assert.equal(firstPaint(cold), 'viewport');
  assert.equal(firstPaint({...cold, ready: true}), 'tiles', 'the plugin rendered the tiles ahead: they come at once');
  assert.equal(firstPaint({...cold, missing: 0}), 'tiles', 'every tile already loaded in the tab');
  assert.equal(firstPaint({...cold, levelChanged: false}), 'tiles', 'a pan at the same level: the missing tiles only');
  assert.equal(firstPaint({...cold, z: 0}), 'tiles', 'the overview level');
  assert.equal(firstPaint({...cold, viewport: null}), 'tiles', 'nothing of the map in view');
  assert.equal(firstPaint({...cold, viewport: {width: 2048, height: MAX_VIEWPORT_PIXELS / 2048 + 8}}), 'tiles', 'too many pixels');
  assert.equal(firstPaint({...cold, viewport: {width: 4096, height: 8}}), 'tiles', 'too wide');
});

test('the visible part of the map is the view clipped to the bounds', () => {
  assert.deepEqual(visibleMap(B, {cx: 10, cy: 250, scale: 4}, 400, 200), [0, 225, 60, 256]);
  assert.equal(visibleMap(B, {cx: -500, cy: 0, scale: 4}, 400, 200), null);
  assert.ok(containsBox([0, 0, 10, 10], [1, 1, 10, 10]));
  assert.ok(!containsBox([0, 0, 10, 10], [1, 1, 10.1, 10]));
});
