import {test} from 'node:test';
import assert from 'node:assert/strict';
import {DEFAULT_CAMERA, viewOf, cameraOf, zoomAt, panBy, centreOn, fitScale, encodeCamera, decodeCamera, isDefaultCamera, MAX_ZOOM} from '../state/camera.js';

const B = [-10, -5, 10, 15]; // 20 × 20 data units
const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test('the default camera fits the bounds, centred', () => {
  const v = viewOf(DEFAULT_CAMERA, B, 400, 200);
  close(v.cx, 0);
  close(v.cy, 5);
  close(v.scale, (200 / 20) * 0.97);
  close(fitScale(B, 400, 200), v.scale);
});

test('cameraOf inverts viewOf', () => {
  const cam = {x: 0.3, y: 0.8, zoom: 3.5};
  const back = cameraOf(viewOf(cam, B, 640, 480), B, 640, 480);
  for (const k of ['x', 'y', 'zoom']) close(back[k], cam[k]);
});

test('zooming keeps the data point under the cursor fixed', () => {
  const w = 500;
  const h = 300;
  const [px, py] = [120, 40];
  const under = (cam) => {
    const v = viewOf(cam, B, w, h);
    return [v.cx + (px - w / 2) / v.scale, v.cy - (py - h / 2) / v.scale];
  };
  const before = under(DEFAULT_CAMERA);
  const cam = zoomAt(DEFAULT_CAMERA, B, w, h, px, py, 4);
  close(cam.zoom, 4);
  const after = under(cam);
  close(after[0], before[0], 1e-9);
  close(after[1], before[1], 1e-9);
  close(zoomAt(DEFAULT_CAMERA, B, w, h, px, py, 1e9).zoom, MAX_ZOOM, 1e-9);
});

test('a drag moves the map with the pointer', () => {
  const cam = panBy(DEFAULT_CAMERA, B, 400, 400, 40, -20);
  const v0 = viewOf(DEFAULT_CAMERA, B, 400, 400);
  const v1 = viewOf(cam, B, 400, 400);
  close(v1.cx, v0.cx - 40 / v0.scale);
  close(v1.cy, v0.cy - 20 / v0.scale);
  close(cam.zoom, 1);
});

test('one camera gives the same framing of different runs\' bounds', () => {
  const cam = {x: 0.25, y: 0.75, zoom: 2};
  const other = [100, 100, 300, 300];
  const a = viewOf(cam, B, 400, 400);
  const b = viewOf(cam, other, 400, 400);
  close((a.cx - B[0]) / 20, (b.cx - other[0]) / 200);
  close(a.scale * 20, b.scale * 200);
});

test('centreOn puts a point in the middle, never zooming out', () => {
  const cam = centreOn({x: 0.5, y: 0.5, zoom: 6}, B, 0, 10, 4);
  close(cam.x, 0.5);
  close(cam.y, 0.75);
  assert.equal(cam.zoom, 6);
});

test('cameras round-trip through the URL text; bad text is refused', () => {
  const cam = {x: 0.123456, y: -0.5, zoom: 12.5};
  const back = decodeCamera(encodeCamera(cam));
  close(back.x, 0.12346, 1e-9);
  close(back.zoom, 12.5);
  assert.equal(decodeCamera('1,2'), null);
  assert.equal(decodeCamera('a,b,c'), null);
  assert.equal(decodeCamera('0.5,0.5,0'), null);
  assert.equal(decodeCamera(''), null);
  assert.ok(isDefaultCamera(decodeCamera(encodeCamera(DEFAULT_CAMERA))));
});
