// The camera: one description of "what part of the map is on screen" that every panel can share.
//
// A camera is {x, y, zoom}: the view centre as a fraction of the shown step's square `bounds` (0 = left/bottom,
// 1 = right/top) and the zoom relative to fitting the bounds. Runs have different coordinates, so compare panels
// share this relative camera, and each turns it into its own view {cx, cy, scale} (data units and CSS pixels
// per data unit) with `viewOf`.

export const DEFAULT_CAMERA = Object.freeze({x: 0.5, y: 0.5, zoom: 1});
export const MIN_ZOOM = 0.25;
export const MAX_ZOOM = 200;
const FIT_MARGIN = 0.97;

/** CSS pixels per data unit that fit `bounds` into a w × h box. */
export function fitScale(bounds, w, h) {
  const bw = bounds[2] - bounds[0] || 1;
  const bh = bounds[3] - bounds[1] || 1;
  return Math.min(w / bw, h / bh) * FIT_MARGIN;
}

/** The view {cx, cy, scale} of `camera` over `bounds` in a w × h box. */
export function viewOf(camera, bounds, w, h) {
  return {
    cx: bounds[0] + camera.x * (bounds[2] - bounds[0]),
    cy: bounds[1] + camera.y * (bounds[3] - bounds[1]),
    scale: fitScale(bounds, w, h) * camera.zoom,
  };
}

/** The camera of view {cx, cy, scale} (inverse of viewOf). */
export function cameraOf(view, bounds, w, h) {
  return {
    x: (view.cx - bounds[0]) / (bounds[2] - bounds[0] || 1),
    y: (view.cy - bounds[1]) / (bounds[3] - bounds[1] || 1),
    zoom: view.scale / fitScale(bounds, w, h),
  };
}

const clampZoom = (z) => Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z));

/** Zooms by `factor` about CSS pixel (px, py) of the w × h box: the data point under it stays put. */
export function zoomAt(camera, bounds, w, h, px, py, factor) {
  const v = viewOf(camera, bounds, w, h);
  const x0 = v.cx + (px - w / 2) / v.scale;
  const y0 = v.cy - (py - h / 2) / v.scale;
  const zoom = clampZoom(camera.zoom * factor);
  const scale = fitScale(bounds, w, h) * zoom;
  return cameraOf({cx: x0 - (px - w / 2) / scale, cy: y0 + (py - h / 2) / scale, scale}, bounds, w, h);
}

/** Moves the camera by (dx, dy) CSS pixels (a drag: the map follows the pointer). */
export function panBy(camera, bounds, w, h, dx, dy) {
  const v = viewOf(camera, bounds, w, h);
  return cameraOf({cx: v.cx - dx / v.scale, cy: v.cy + dy / v.scale, scale: v.scale}, bounds, w, h);
}

/** A camera centred on data point (x, y), at least at `minZoom`. */
export function centreOn(camera, bounds, x, y, minZoom = 1) {
  return {x: (x - bounds[0]) / (bounds[2] - bounds[0] || 1), y: (y - bounds[1]) / (bounds[3] - bounds[1] || 1), zoom: Math.max(camera.zoom, minZoom)};
}

export function isDefaultCamera(c) {
  return Math.abs(c.x - 0.5) < 1e-6 && Math.abs(c.y - 0.5) < 1e-6 && Math.abs(c.zoom - 1) < 1e-6;
}

/** "x,y,zoom" with enough digits to restore the view to well under a pixel. */
export function encodeCamera(c) {
  return [c.x.toFixed(5), c.y.toFixed(5), c.zoom.toFixed(4)].map((s) => String(Number(s))).join(',');
}

/** Parses `encodeCamera`'s text; null when it is not three finite numbers with a zoom in range. */
export function decodeCamera(text) {
  const parts = String(text || '').split(',').map(Number);
  if (parts.length !== 3 || !parts.every(Number.isFinite)) return null;
  const [x, y, zoom] = parts;
  if (zoom < MIN_ZOOM || zoom > MAX_ZOOM) return null;
  return {x, y, zoom};
}
