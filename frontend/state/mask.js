// The query filter and its match mask: pure functions over a step's aligned arrays.

export const EMPTY_FILTER = Object.freeze({label: null, pred: null, split: 'all', mis: false, changed: false, flags: []});

/** True when the filter matches every sample. */
export function isEmptyFilter(f) {
  return f.label === null && f.pred === null && f.split === 'all' && !f.mis && !f.changed && !(f.flags && f.flags.length);
}

/**
 * The match mask of one step's aligned arrays under `filter`.
 * `prevPred` is the previous step's predictions (null on a run's first step); `flagSets` maps flag name → Set of ids.
 * Returns {mask: Uint8Array | null (everything matches), count, note}: `note` says why nothing can match
 * ("prediction changed" on a first step), else null.
 */
export function computeMask(data, filter, prevPred, flagSets = {}) {
  const n = data.n;
  if (isEmptyFilter(filter)) return {mask: null, count: n, note: null};
  const note = filter.changed && !prevPred ? 'No previous step to compare predictions with: this is the run\'s first step.' : null;
  const mask = new Uint8Array(n);
  const {labels, pred, split, ids} = data;
  const wantSplit = filter.split === 'train' ? 1 : filter.split === 'test' ? 0 : -1;
  const sets = (filter.flags || []).map((f) => flagSets[f] || new Set());
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (filter.label !== null && labels[i] !== filter.label) continue;
    if (filter.pred !== null && pred[i] !== filter.pred) continue;
    if (wantSplit >= 0 && split[i] !== wantSplit) continue;
    if (filter.mis && labels[i] === pred[i]) continue;
    if (filter.changed && (!prevPred || prevPred[i] === pred[i])) continue;
    if (!sets.every((set) => set.has(ids[i]))) continue;
    mask[i] = 1;
    count++;
  }
  return {mask, count, note};
}
