import {test} from 'node:test';
import assert from 'node:assert/strict';
import {tileLevel, tileBounds, visibleTiles, pixelsPerUnit, zoomAheadTile, TILE_SIZE, OVERVIEW_SIZE} from '../state/tiles.js';

const pick = ({z, tx, ty}) => ({z, tx, ty});

const B = [0, 0, 100, 100];

test('tile bounds: column 0 at the left edge, row 0 at the top', () => {
  assert.deepEqual(tileBounds(B, 0, 0, 0), B);
  assert.deepEqual(tileBounds(B, 1, 0, 0), [0, 50, 50, 100]);
  assert.deepEqual(tileBounds(B, 1, 1, 1), [50, 0, 100, 50]);
  assert.deepEqual(tileBounds(B, 2, 3, 0), [75, 75, 100, 100]);
});

test('the overview is enough until the view needs more pixels than it has', () => {
  assert.equal(tileLevel(B, 10, 1), 0, 'a 1000-pixel map showing the whole bounds: the 512 overview, twice magnified');
  assert.equal(tileLevel(B, 11, 1), 2, '1100 pixels across: level 2 (1024 pixels across, magnified 1.07x)');
  assert.equal(tileLevel(B, 16, 1), 3, '1600 pixels across: level 3 (level 2 would be magnified 1.56x)');
  assert.equal(tileLevel(B, 7, 2), 2, 'device pixel ratio 2 doubles the need');
});

test('zooming 4x from a fitted view asks for tiles with at least 4x the overview\'s pixels per unit', () => {
  for (const side of [500, 600, 800, 1000]) {
    const scale = (side / 100) * 4;
    const z = tileLevel(B, scale, 1);
    assert.ok(pixelsPerUnit(B, TILE_SIZE, z) >= 4 * pixelsPerUnit(B, OVERVIEW_SIZE), `${side}px: z=${z}`);
    assert.ok(pixelsPerUnit(B, TILE_SIZE, z) * 1.5 >= scale, `${side}px: tiles magnified at most 1.5x`);
  }
  assert.equal(tileLevel(B, 1e9, 1), 8, 'clamped to level 8');
});

test('visible tiles cover the view and nothing outside the bounds', () => {
  // View centred at (30, 70), 20 units wide and 12 high (scale 10 px/unit on a 200 × 120 box), level 3 (12.5-unit tiles).
  const tiles = visibleTiles(B, {cx: 30, cy: 70, scale: 10}, 200, 120, 3);
  const cols = [...new Set(tiles.map((t) => t.tx))].sort();
  const rows = [...new Set(tiles.map((t) => t.ty))].sort();
  assert.deepEqual(cols, [1, 2, 3]); // x 20..40
  assert.deepEqual(rows, [1, 2]); // y 64..76: rows counted from the top (row 1 is y 75..87.5, row 2 is 62.5..75)
  assert.equal(tiles.length, 6);
  const first = tiles[0];
  assert.ok(first.bounds[0] <= 30 && first.bounds[2] >= 30 && first.bounds[1] <= 70 && first.bounds[3] >= 70, 'the centre tile first');
  assert.deepEqual(visibleTiles(B, {cx: 500, cy: 500, scale: 10}, 200, 100, 3), [], 'a view off the map needs no tiles');
  const edge = visibleTiles(B, {cx: 0, cy: 0, scale: 1}, 1000, 1000, 1);
  assert.equal(edge.length, 4, 'clamped to the 2 × 2 tiles that exist');
});

test('zoomAheadTile is the level-1 tile under the view centre, clamped into the map', () => {
  const b = [0, 0, 10, 10];
  assert.deepEqual(pick(zoomAheadTile(b, {cx: 2, cy: 8, scale: 1})), {z: 1, tx: 0, ty: 0});
  assert.deepEqual(pick(zoomAheadTile(b, {cx: 7, cy: 2, scale: 1})), {z: 1, tx: 1, ty: 1});
  assert.deepEqual(pick(zoomAheadTile(b, {cx: -50, cy: 50, scale: 1})), {z: 1, tx: 0, ty: 0});
  assert.deepEqual(pick(zoomAheadTile(b, {cx: 50, cy: -50, scale: 1})), {z: 1, tx: 1, ty: 1});
  assert.deepEqual(zoomAheadTile(b, {cx: 7, cy: 2, scale: 1}).bounds, [5, 0, 10, 5]);
});
