// Aligns each projection of a run to one sample order (the first projection seen), so positions of the same
// sample can be interpolated between steps and a selection (by id) finds the same sample at every step.

/** A per-run registry of canonical sample orders: {align(run, proj), indexOf(run, id), ids(run)}. */
export function createAligner() {
  const canon = new Map(); // run -> {ids, index: Map(id -> i) | null}
  const cache = new WeakMap(); // proj -> aligned

  function indexMap(c) {
    if (!c.index) c.index = new Map(Array.from(c.ids, (id, i) => [id, i]));
    return c.index;
  }

  /** The projection's arrays in the run's canonical order, positions interleaved ({n, ids, pos, labels, ...}). */
  function align(run, proj) {
    if (cache.has(proj)) return cache.get(proj);
    if (!canon.has(run)) canon.set(run, {ids: proj.ids, index: null});
    const c = canon.get(run);
    const out = alignTo(c.ids, proj, () => indexMap(c));
    cache.set(proj, out);
    return out;
  }

  function indexOf(run, id) {
    const c = canon.get(run);
    if (!c) return -1;
    const i = indexMap(c).get(id);
    return i === undefined ? -1 : i;
  }

  const ids = (run) => (canon.has(run) ? canon.get(run).ids : null);
  return {align, indexOf, ids};
}

function sameOrder(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Pure: `proj` rearranged onto the order `ids` (samples it lacks get NaN positions and label −1). */
export function alignTo(ids, proj, getIndex = () => new Map(Array.from(ids, (id, i) => [id, i]))) {
  const n = ids.length;
  const pos = new Float32Array(2 * n);
  let {labels, pred, conf, split} = proj;
  if (sameOrder(proj.ids, ids)) {
    for (let i = 0; i < n; i++) {
      pos[2 * i] = proj.x[i];
      pos[2 * i + 1] = proj.y[i];
    }
  } else {
    const index = getIndex();
    pos.fill(NaN);
    labels = new Int32Array(n).fill(-1);
    pred = new Int32Array(n).fill(-1);
    conf = new Float32Array(n);
    split = new Uint8Array(n);
    for (let j = 0; j < proj.ids.length; j++) {
      const i = index.get(proj.ids[j]);
      if (i === undefined) continue;
      pos[2 * i] = proj.x[j];
      pos[2 * i + 1] = proj.y[j];
      labels[i] = proj.labels[j];
      pred[i] = proj.pred[j];
      conf[i] = proj.conf[j];
      split[i] = proj.split[j];
    }
  }
  const flagSets = {};
  for (const [k, list] of Object.entries(proj.flags || {})) flagSets[k] = new Set(list);
  return {n, ids, pos, labels, pred, conf, split, flagSets, bounds: proj.bounds, accuracy: proj.accuracy || null, step: proj.step};
}
