// Level of detail: which points to draw while the map moves (an animation between steps, a drag, a zoom), so a
// 100,000-point map keeps its frame rate in software rendering; every point is drawn again once it rests.
//
// The subsample is density-aware: the map is cut into a grid of cells and each cell keeps at most `cap` of its
// points, `cap` the largest for which the total stays within the budget. Sparse regions (outliers, small classes,
// stragglers between clusters) keep every point; only dense clusters are thinned, and they still look dense.

export const LOD_BUDGET = 25000;
export const LOD_GRID = 96;

/** A fixed pseudo-random visiting order step: coprime with `n`, so `(i * step) % n` visits every index once. */
function coprimeStride(n) {
  const gcd = (a, b) => (b ? gcd(b, a % b) : a);
  let step = Math.max(1, Math.floor(n * 0.6180339887)) | 1;
  while (gcd(step, n) !== 1) step += 2;
  return step;
}

/**
 * Indices (Uint32Array) of at most `budget` of the `n` points of `pos` (interleaved x, y) chosen cell by cell on a
 * `grid` x `grid` grid over the points' extent; null when every point fits the budget. Points with non-finite
 * coordinates are never chosen. Deterministic: the same positions give the same subsample.
 */
export function lodSubset(pos, n, budget = LOD_BUDGET, grid = LOD_GRID) {
  if (!(n > budget) || budget < 1) return null;
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = pos[2 * i];
    const y = pos[2 * i + 1];
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (!(x1 >= x0)) return new Uint32Array(0);
  const sx = grid / (x1 - x0 || 1);
  const sy = grid / (y1 - y0 || 1);
  const cellOf = new Int32Array(n);
  const counts = new Uint32Array(grid * grid);
  for (let i = 0; i < n; i++) {
    const x = pos[2 * i];
    const y = pos[2 * i + 1];
    if (!Number.isFinite(x) || !Number.isFinite(y)) {
      cellOf[i] = -1;
      continue;
    }
    const cx = Math.min(grid - 1, Math.floor((x - x0) * sx));
    const cy = Math.min(grid - 1, Math.floor((y - y0) * sy));
    const c = cy * grid + cx;
    cellOf[i] = c;
    counts[c]++;
  }
  // the largest cap whose total fits the budget
  let lo = 0;
  let hi = 0;
  for (const c of counts) if (c > hi) hi = c;
  const total = (cap) => {
    let sum = 0;
    for (const c of counts) sum += c < cap ? c : cap;
    return sum;
  };
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (total(mid) <= budget) lo = mid;
    else hi = mid - 1;
  }
  const cap = Math.max(lo, 1);
  const taken = new Uint32Array(grid * grid);
  const out = new Uint32Array(Math.min(budget, total(cap)));
  const stride = coprimeStride(n);
  let k = 0;
  for (let j = 0, i = 0; j < n && k < out.length; j++, i = (i + stride) % n) {
    const c = cellOf[i];
    if (c < 0 || taken[c] >= cap) continue;
    taken[c]++;
    out[k++] = i;
  }
  return k === out.length ? out : out.slice(0, k);
}
