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

// ---------- the viewport image: a cold zoom's first sharp paint ----------

/** A viewport image's edges lie on the level's pixel grid at multiples of this many pixels (the tiles' cell). */
export const VIEWPORT_SNAP = 8;
/** The plugin's limits on a viewport image (see http_api.md): pixels a side and in all. */
export const MAX_VIEWPORT_SIDE = 2048;
export const MAX_VIEWPORT_PIXELS = 2048 * 1024;

/**
 * The visible part of `bounds` at level z as one image of the level's pixels: {z, box, width, height, col, row}
 * (col, row: its top-left pixel in the level's pixel grid, whose column 0 is the map's left edge and row 0 its top),
 * or null when nothing of the map is in view. The box is snapped outward to multiples of `snap` pixels, so its pixel
 * centres are the tiles' own and its cells start where theirs do.
 */
export function viewportImage(bounds, view, w, h, z, tileSize = TILE_SIZE, snap = VIEWPORT_SNAP) {
  const ppu = pixelsPerUnit(bounds, tileSize, z);
  const total = tileSize * 2 ** z;
  const [vx0, vy0, vx1, vy1] = visibleRect(view, w, h);
  const clamp = (v) => Math.max(0, Math.min(total, v));
  const c0 = clamp(Math.floor(((vx0 - bounds[0]) * ppu) / snap) * snap);
  const c1 = clamp(Math.ceil(((vx1 - bounds[0]) * ppu) / snap) * snap);
  const r0 = clamp(Math.floor(((bounds[3] - vy1) * ppu) / snap) * snap);
  const r1 = clamp(Math.ceil(((bounds[3] - vy0) * ppu) / snap) * snap);
  if (c1 <= c0 || r1 <= r0) return null;
  const box = [bounds[0] + c0 / ppu, bounds[3] - r1 / ppu, bounds[0] + c1 / ppu, bounds[3] - r0 / ppu];
  return {z, box, width: c1 - c0, height: r1 - r0, col: c0, row: r0};
}

/**
 * A viewport image cut in `parts` strips across its longer side, each a multiple of `snap` pixels (the plugin renders
 * two at once: one per render worker); an image too small to cut is returned whole.
 */
export function splitViewport(v, parts = 2, snap = VIEWPORT_SNAP) {
  const wide = v.width >= v.height;
  const length = wide ? v.width : v.height;
  const cuts = [0];
  for (let k = 1; k < parts; k++) {
    const at = Math.round((length * k) / parts / snap) * snap;
    if (at > cuts[cuts.length - 1] && at < length) cuts.push(at);
  }
  cuts.push(length);
  const ppu = v.width / (v.box[2] - v.box[0]);
  const out = [];
  for (let k = 0; k + 1 < cuts.length; k++) {
    const a = cuts[k];
    const b = cuts[k + 1];
    if (wide) {
      out.push({z: v.z, width: b - a, height: v.height, col: v.col + a, row: v.row,
        box: [v.box[0] + a / ppu, v.box[1], k + 2 === cuts.length ? v.box[2] : v.box[0] + b / ppu, v.box[3]]});
    } else {
      out.push({z: v.z, width: v.width, height: b - a, col: v.col, row: v.row + a,
        box: [v.box[0], k + 2 === cuts.length ? v.box[1] : v.box[3] - b / ppu, v.box[2], v.box[3] - a / ppu]});
    }
  }
  return out;
}

/**
 * Whether the plugin is known to have rendered `step`'s tiles of level z ahead: its `status.tiles_ahead` (from the
 * `runs` route) reaches level z and, in an answer received after the tab first drew the step (`statusAt` >
 * `shownAt`: the plugin queues a step's pyramid when the tab first asks for its landscape), lists the step as
 * rendered and neither queued nor rendering. A step in none of the lists is not known rendered (the plugin's queue
 * may have been full): the tab then asks for the centre tile first.
 */
export function pyramidReady(ahead, step, z, shownAt, statusAt) {
  if (!ahead || !Number.isFinite(ahead.depth) || z > ahead.depth || !(statusAt > shownAt)) return false;
  if (!(Array.isArray(ahead.rendered) && ahead.rendered.includes(step))) return false;
  return ahead.running !== step && !(Array.isArray(ahead.queued) && ahead.queued.includes(step));
}

/**
 * How a view at level z first gets sharp: 'viewport' (ask for the visible part as one image, then the tiles) when the
 * level just changed, some of its visible tiles are not loaded, the plugin is not known to have them rendered, and
 * the image is within the plugin's limits; else 'tiles'.
 */
export function firstPaint({z, levelChanged, missing, ready, viewport}) {
  if (!z || !levelChanged || !missing || ready || !viewport) return 'tiles';
  const {width, height} = viewport;
  return width <= MAX_VIEWPORT_SIDE && height <= MAX_VIEWPORT_SIDE && width * height <= MAX_VIEWPORT_PIXELS ? 'viewport' : 'tiles';
}

/** Whether data box `a` [x0, y0, x1, y1] contains box `b` (within `eps` of a unit). */
export function containsBox(a, b, eps = 1e-9) {
  return a[0] <= b[0] + eps && a[1] <= b[1] + eps && a[2] >= b[2] - eps && a[3] >= b[3] - eps;
}

/** The visible part of `bounds` (the visible rectangle clipped to it), or null when none of it is in view. */
export function visibleMap(bounds, view, w, h) {
  const r = visibleRect(view, w, h);
  const c = [Math.max(r[0], bounds[0]), Math.max(r[1], bounds[1]), Math.min(r[2], bounds[2]), Math.min(r[3], bounds[3])];
  return c[2] > c[0] && c[3] > c[1] ? c : null;
}
