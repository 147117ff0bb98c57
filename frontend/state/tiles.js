// Landscape tiles, web-map style: the step's square `bounds` [x0, y0, x1, y1] is the zoom-0 tile; zoom level z
// cuts it into 2^z × 2^z tiles; column tx = 0 is the left (x0) edge and row ty = 0 the top row (largest y).
// Pure geometry: which level a view needs and which tiles cover it.

export const TILE_SIZE = 256;
export const OVERVIEW_SIZE = 512;
export const MAX_TILE_ZOOM = 8;

/** Image pixels per data unit of a `size`-pixel image covering `bounds` at level z (z = 0: the whole map). */
export function pixelsPerUnit(bounds, size, z = 0) {
  return (size * 2 ** z) / (bounds[2] - bounds[0]);
}

/** The overview is used as long as it is magnified at most this much (tiles cost the server a render each). */
export const OVERVIEW_MAX_MAGNIFICATION = 2;

/** Tiles are magnified at most this much: the coarsest such level (each finer level costs 4x the tiles). */
export const TILE_MAX_MAGNIFICATION = 1.5;

/**
 * The tile level for a view of `scale` CSS pixels per data unit: the coarsest whose tiles are magnified at most
 * TILE_MAX_MAGNIFICATION times on screen, or 0 while the overview image (OVERVIEW_SIZE) is magnified at most
 * OVERVIEW_MAX_MAGNIFICATION times.
 */
export function tileLevel(bounds, scale, dpr = 1, tileSize = TILE_SIZE, overviewSize = OVERVIEW_SIZE) {
  const want = scale * dpr;
  if (want <= pixelsPerUnit(bounds, overviewSize) * OVERVIEW_MAX_MAGNIFICATION) return 0;
  const z = Math.ceil(Math.log2(want / (TILE_MAX_MAGNIFICATION * pixelsPerUnit(bounds, tileSize))) - 1e-9);
  return Math.max(0, Math.min(MAX_TILE_ZOOM, z));
}

/** Data bounds [x0, y0, x1, y1] of tile (z, tx, ty). */
export function tileBounds(bounds, z, tx, ty) {
  const n = 2 ** z;
  const w = (bounds[2] - bounds[0]) / n;
  const h = (bounds[3] - bounds[1]) / n;
  return [bounds[0] + tx * w, bounds[3] - (ty + 1) * h, bounds[0] + (tx + 1) * w, bounds[3] - ty * h];
}

/** The data rectangle [x0, y0, x1, y1] on screen for view {cx, cy, scale} in a w × h CSS-pixel box. */
export function visibleRect(view, w, h) {
  return [view.cx - w / 2 / view.scale, view.cy - h / 2 / view.scale, view.cx + w / 2 / view.scale, view.cy + h / 2 / view.scale];
}

/** The tiles of level z that intersect the visible part of `bounds`, nearest the centre first. */
export function visibleTiles(bounds, view, w, h, z) {
  const n = 2 ** z;
  const [vx0, vy0, vx1, vy1] = visibleRect(view, w, h);
  const tw = (bounds[2] - bounds[0]) / n;
  const th = (bounds[3] - bounds[1]) / n;
  const clamp = (v) => Math.max(0, Math.min(n - 1, v));
  if (vx1 <= bounds[0] || vx0 >= bounds[2] || vy1 <= bounds[1] || vy0 >= bounds[3]) return [];
  const c0 = clamp(Math.floor((vx0 - bounds[0]) / tw));
  const c1 = clamp(Math.ceil((vx1 - bounds[0]) / tw) - 1);
  const r0 = clamp(Math.floor((bounds[3] - vy1) / th));
  const r1 = clamp(Math.ceil((bounds[3] - vy0) / th) - 1);
  const out = [];
  for (let ty = r0; ty <= r1; ty++) for (let tx = c0; tx <= c1; tx++) out.push({z, tx, ty, bounds: tileBounds(bounds, z, tx, ty)});
  const mid = (t) => ((t.bounds[0] + t.bounds[2]) / 2 - view.cx) ** 2 + ((t.bounds[1] + t.bounds[3]) / 2 - view.cy) ** 2;
  return out.sort((a, b) => mid(a) - mid(b));
}

/**
 * The level-1 tile under the view's centre (clamped into the map): fetched ahead while the map rests at the overview
 * level, so a zoom-in draws at once at 2x and the plugin learns which step to render the deeper tiles of first.
 */
export function zoomAheadTile(bounds, view) {
  const n = 2;
  const tw = (bounds[2] - bounds[0]) / n;
  const th = (bounds[3] - bounds[1]) / n;
  const clamp = (v) => Math.max(0, Math.min(n - 1, v));
  const tx = clamp(Math.floor((view.cx - bounds[0]) / tw));
  const ty = clamp(Math.floor((bounds[3] - view.cy) / th));
  return {z: 1, tx, ty, bounds: tileBounds(bounds, 1, tx, ty)};
}
