// Pure logic of the long-log time bar: the overview strip above the step slider (accuracy, mean separation,
// neighbour change and map displacement per step, summarised to one column per pixel), its alarm marks, drag-to-zoom
// ranges, and the readiness ticks of the slider merged into segments. The x axis is the slider's: position i of the
// slider's steps, so a mark sits exactly above the slider position it moves to.

/** Colour of each alarm kind (marks and list). */
export const KIND_COLORS = {
  forgetting: '#c62828', collapse: '#6a1b9a', early_warning: '#ef6c00', jump: '#1565c0', layer_jump: '#00838f',
};

/** Kinds by severity: a mark with several kinds takes the colour of the first one found here. */
export const KIND_ORDER = ['forgetting', 'collapse', 'early_warning', 'jump', 'layer_jump'];

/** Series of the overview: key in `stepstats.overview`, colour, label, and whether it lives in [0, 1]. */
export const SERIES = [
  {key: 'accuracy', color: '#2e7d32', label: 'accuracy', unit: true},
  {key: 'mean_separation', color: '#6a1b9a', label: 'separation', unit: false},
  {key: 'neighbour_change', color: '#1565c0', label: 'neighbour change', unit: true},
  {key: 'displacement', color: '#ef6c00', label: 'map displacement', unit: false},
];

/** Above this many slider steps the readiness ticks are drawn as merged segments, not one dot per step. */
export const MAX_TICK_DOTS = 150;

/** Index of the step nearest to `step` in the sorted `steps` (-1 when empty; ties to the earlier one). */
export function nearestIndex(steps, step) {
  if (!steps.length) return -1;
  let lo = 0;
  let hi = steps.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] < step) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && step - steps[lo - 1] <= steps[lo] - step ? lo - 1 : lo;
}

/** x of position `i` of `n` slider positions on a bar `width` pixels wide (one position: the middle). */
export function indexX(i, n, width) {
  return n > 1 ? (i / (n - 1)) * (width - 1) : (width - 1) / 2;
}

/** The slider position nearest to pixel `x` on a bar `width` wide with `n` positions. */
export function xIndex(x, n, width) {
  if (n <= 1) return 0;
  return Math.min(n - 1, Math.max(0, Math.round((x / Math.max(1, width - 1)) * (n - 1))));
}

/** The slider's steps: all steps, or those inside `zoom` ([lo, hi] in steps) when it keeps at least two. */
export function zoomedSteps(steps, zoom) {
  if (!zoom) return steps;
  const inside = steps.filter((s) => s >= zoom[0] && s <= zoom[1]);
  return inside.length >= 2 ? inside : steps;
}

/**
 * A series summarised to at most one column per pixel: `{x, min, max, mean}` per pixel column over the steps that
 * fall in it. `stepsOfValues` are the steps of `values`; only those inside the slider's range count, each at the x of
 * its nearest slider position. Null / NaN values are skipped; a column with none is left out.
 */
export function overviewColumns(stepsOfValues, values, sliderSteps, width) {
  const n = sliderSteps.length;
  const cols = Math.max(1, Math.floor(width));
  if (!n) return [];
  const lo = sliderSteps[0];
  const hi = sliderSteps[n - 1];
  const acc = new Map();
  for (let i = 0; i < stepsOfValues.length; i += 1) {
    const v = values[i];
    const s = stepsOfValues[i];
    if (s < lo || s > hi || v === null || v === undefined || Number.isNaN(v)) continue;
    const c = Math.min(cols - 1, Math.round(indexX(nearestIndex(sliderSteps, s), n, cols)));
    const cur = acc.get(c);
    if (cur) {
      cur.min = Math.min(cur.min, v);
      cur.max = Math.max(cur.max, v);
      cur.sum += v;
      cur.n += 1;
    } else {
      acc.set(c, {min: v, max: v, sum: v, n: 1});
    }
  }
  return [...acc.entries()].sort((p, q) => p[0] - q[0]).map(([x, c]) => ({x, min: c.min, max: c.max, mean: c.sum / c.n}));
}

/** The largest finite value of a list (0 when none): the scale of a series that is not in [0, 1]. */
export function seriesMax(values) {
  let best = 0;
  for (const v of values || []) if (v !== null && Number.isFinite(v) && v > best) best = v;
  return best;
}

/** `y` of `value` in a plot `height` high, for a series in [0, 1] (`unit`) or scaled to `[0, max]`. */
export function valueY(value, height, unit, max) {
  const top = unit ? 1 : Math.max(max, 1e-9);
  return (1 - Math.min(Math.max(value / top, 0), 1)) * (height - 1);
}

/**
 * Alarm marks on the bar: the alarms inside the slider's range, grouped by the pixel their step falls on, as
 * `{step, index, x, kinds, alarms}` (the step of a mark is the slider step it moves to; kinds by severity).
 * Alarms at a step the slider does not have (a step logged between two slider steps) go to the nearest one.
 */
export function alarmMarks(alarms, sliderSteps, width) {
  const n = sliderSteps.length;
  if (!n) return [];
  const lo = sliderSteps[0];
  const hi = sliderSteps[n - 1];
  const byX = new Map();
  for (const a of alarms || []) {
    if (a.step < lo || a.step > hi) continue;
    const index = nearestIndex(sliderSteps, a.step);
    const x = Math.round(indexX(index, n, width));
    if (!byX.has(x)) byX.set(x, {step: sliderSteps[index], index, x, alarms: []});
    byX.get(x).alarms.push(a);
  }
  return [...byX.values()].sort((p, q) => p.x - q.x).map((m) => {
    const seen = new Set(m.alarms.map((a) => a.kind));
    const kinds = [...KIND_ORDER.filter((k) => seen.has(k)), ...[...seen].filter((k) => !KIND_ORDER.includes(k))];
    return {...m, kinds};
  });
}

/** The step range `[lo, hi]` a drag from pixel `x0` to `x1` selects over the slider's steps; null for a click. */
export function dragRange(x0, x1, sliderSteps, width, minPixels = 4) {
  if (Math.abs(x1 - x0) < minPixels || sliderSteps.length < 2) return null;
  const n = sliderSteps.length;
  const a = sliderSteps[xIndex(Math.min(x0, x1), n, width)];
  const b = sliderSteps[xIndex(Math.max(x0, x1), n, width)];
  return b > a ? [a, b] : null;
}

/** One line per alarm for the list: `step N · kind · reason`. */
export function alarmLine(alarm) {
  return `step ${alarm.step} · ${kindName(alarm.kind)} · ${alarm.reason}`;
}

/** `early_warning` -> `early warning`. */
export function kindName(kind) {
  return String(kind).replace(/_/g, ' ');
}

/**
 * The slider's readiness ticks: one dot per step up to MAX_TICK_DOTS steps, else runs of consecutive steps with the
 * same readiness merged into segments `{from, to, ready, left, width}` (percent of the bar), so a 1,000-step run
 * needs a handful of elements instead of a thousand.
 */
export function tickSegments(steps, ready) {
  const n = steps.length;
  const pct = (i) => (n > 1 ? (100 * i) / (n - 1) : 0);
  if (n <= MAX_TICK_DOTS) return steps.map((s, i) => ({from: s, to: s, ready: ready.has(s), left: pct(i), width: 0, dot: true}));
  const out = [];
  let start = 0;
  for (let i = 1; i <= n; i += 1) {
    if (i < n && ready.has(steps[i]) === ready.has(steps[start])) continue;
    out.push({from: steps[start], to: steps[i - 1], ready: ready.has(steps[start]), left: pct(start), width: pct(i - 1) - pct(start), dot: false});
    start = i;
  }
  return out;
}

/** The model of the overview strip from the store's `timeline` facts and the slider's steps; null when none. */
export function overviewData(timeline, sliderSteps) {
  if (!timeline || !timeline.steps || !sliderSteps.length) return null;
  return {
    steps: timeline.steps,
    series: SERIES.map((s) => {
      const values = (timeline.overview && timeline.overview[s.key]) || [];
      return {...s, values, max: seriesMax(values)};
    }).filter((s) => s.values.some((v) => v !== null && v !== undefined)),
    alarms: timeline.alarms || [],
  };
}
