// Alarms view: a long-log time bar (an overview of every step: accuracy, mean separation, neighbour change, with
// alarm marks) that zooms into a range by dragging, and the list of alarms with their reasons. Data from the
// plugin's `stepstats` and `alarms` routes (JSON). Standalone: no imports; the host passes how to fetch and what to
// do when the user picks a step.
//
//   const view = mountAlarms(container, {run, fetchJson, onStep});
//   view.update(otherRun); view.setStep(step); view.destroy();
//
// onStep(step): an alarm or a point of the time bar was clicked.

/** Colour of each alarm kind (marks and list). */
export const KIND_COLORS = {
  forgetting: '#c62828', collapse: '#6a1b9a', early_warning: '#ef6c00', jump: '#1565c0', layer_jump: '#00838f',
};

/** Series drawn on the time bar's overview: key in `stepstats.overview`, colour, and whether it lives in [0, 1]. */
export const SERIES = [
  {key: 'accuracy', color: '#2e7d32', unit: true},
  {key: 'mean_separation', color: '#6a1b9a', unit: false},
  {key: 'neighbour_change', color: '#1565c0', unit: true},
];

/** Index of the step nearest to `step` in the sorted `steps` (-1 when empty). */
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

/** x of `step` on a bar `width` pixels wide showing steps `lo..hi` (both included). */
export function stepX(step, lo, hi, width) {
  return hi === lo ? width / 2 : ((step - lo) / (hi - lo)) * (width - 1);
}

/** Alarm marks: one per step with alarms inside `lo..hi`, `{step, x, kinds, alarms}`, kinds in first-seen order. */
export function alarmMarks(alarms, lo, hi, width) {
  const byStep = new Map();
  for (const a of alarms) {
    if (a.step < lo || a.step > hi) continue;
    if (!byStep.has(a.step)) byStep.set(a.step, []);
    byStep.get(a.step).push(a);
  }
  return [...byStep.entries()].sort((p, q) => p[0] - q[0]).map(([step, list]) => ({
    step, x: stepX(step, lo, hi, width), kinds: [...new Set(list.map((a) => a.kind))], alarms: list,
  }));
}

/**
 * A long series summarised to at most `width` columns: `{x, min, max, mean}` per column over the steps that fall
 * in it (null values skipped; a column with none is left out). 1,000 steps on a 300-pixel bar become 300 columns.
 */
export function overviewColumns(steps, values, lo, hi, width) {
  const cols = Math.max(1, Math.floor(width));
  const acc = new Map();
  for (let i = 0; i < steps.length; i += 1) {
    const v = values[i];
    if (steps[i] < lo || steps[i] > hi || v === null || v === undefined || Number.isNaN(v)) continue;
    const c = Math.min(cols - 1, Math.floor(stepX(steps[i], lo, hi, cols)));
    const cur = acc.get(c) || {min: Infinity, max: -Infinity, sum: 0, n: 0};
    cur.min = Math.min(cur.min, v);
    cur.max = Math.max(cur.max, v);
    cur.sum += v;
    cur.n += 1;
    acc.set(c, cur);
  }
  return [...acc.entries()].sort((p, q) => p[0] - q[0])
    .map(([x, c]) => ({x, min: c.min, max: c.max, mean: c.sum / c.n}));
}

/** The step range `[lo, hi]` a drag from pixel `x0` to `x1` selects on a bar showing `lo..hi`; null for a click. */
export function dragRange(x0, x1, lo, hi, width, minPixels = 4) {
  if (Math.abs(x1 - x0) < minPixels) return null;
  const toStep = (x) => lo + (Math.min(Math.max(x, 0), width - 1) / Math.max(1, width - 1)) * (hi - lo);
  const a = Math.round(toStep(Math.min(x0, x1)));
  const b = Math.round(toStep(Math.max(x0, x1)));
  return b > a ? [a, b] : null;
}

/** `y` of `value` in a plot `height` high, for a series in [0, 1] (`unit`) or scaled to `[0, max]`. */
export function valueY(value, height, unit, max) {
  const top = unit ? 1 : Math.max(max, 1e-9);
  return (1 - Math.min(Math.max(value / top, 0), 1)) * (height - 1);
}

/** One line per alarm for the list: `step N · kind · reason`. */
export function alarmLine(alarm) {
  return `step ${alarm.step} · ${alarm.kind.replace('_', ' ')} · ${alarm.reason}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'testid') node.dataset.testid = v;
    else if (k === 'style') node.style.cssText = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function draw(canvas, data, range, current) {
  const ctx = canvas.getContext('2d');
  const {width, height} = canvas;
  const [lo, hi] = range;
  ctx.clearRect(0, 0, width, height);
  const steps = data.stats.steps;
  for (const s of SERIES) {
    const values = data.stats.overview[s.key] || [];
    const max = Math.max(...values.filter((v) => v !== null), 0);
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    overviewColumns(steps, values, lo, hi, width).forEach((c, i) => {
      const y = valueY(c.mean, height - 10, s.unit, max) + 5;
      if (i === 0) ctx.moveTo(c.x, y);
      else ctx.lineTo(c.x, y);
    });
    ctx.stroke();
  }
  for (const mark of alarmMarks(data.alarms.alarms, lo, hi, width)) {
    ctx.fillStyle = KIND_COLORS[mark.kinds[0]] || '#000';
    ctx.fillRect(Math.round(mark.x) - 1, 0, 3, height);
  }
  if (current !== null && current >= lo && current <= hi) {
    ctx.strokeStyle = '#000';
    ctx.strokeRect(Math.round(stepX(current, lo, hi, width)) - 0.5, 0, 1, height);
  }
}

/** Mounts the view; see the module comment. */
export function mountAlarms(container, options) {
  const {fetchJson, onStep} = options;
  const root = el('div', {class: 'dvi-alarms', testid: 'alarms-view'});
  container.append(root);
  let token = 0;
  let data = null;
  let range = [0, 0];
  let current = null;
  let canvas = null;

  function redraw() {
    if (data && canvas) draw(canvas, data, range, current);
  }

  function render() {
    const steps = data.stats.steps;
    canvas = el('canvas', {width: Math.max(200, root.clientWidth || 600), height: 64, testid: 'alarms-timebar'});
    let downX = null;
    canvas.addEventListener('mousedown', (e) => { downX = e.offsetX; });
    canvas.addEventListener('mouseup', (e) => {
      const picked = dragRange(downX ?? e.offsetX, e.offsetX, range[0], range[1], canvas.width);
      downX = null;
      if (picked) {
        range = picked;
        redraw();
        return;
      }
      const step = range[0] + (e.offsetX / Math.max(1, canvas.width - 1)) * (range[1] - range[0]);
      const i = nearestIndex(steps, step);
      if (i >= 0 && onStep) onStep(steps[i]);
    });
    canvas.addEventListener('dblclick', () => {
      range = [steps[0], steps[steps.length - 1]];
      redraw();
    });
    const list = el('ol', {class: 'dvi-alarm-list', testid: 'alarms-list'});
    for (const a of data.alarms.alarms) {
      list.append(el('li', {style: `border-left: 4px solid ${KIND_COLORS[a.kind] || '#000'}; cursor: pointer`,
        onclick: () => onStep && onStep(a.step)}, alarmLine(a)));
    }
    const empty = data.alarms.alarms.length ? '' : 'No alarm so far.';
    root.replaceChildren(canvas, el('p', {}, empty || `${data.alarms.alarms.length} alarms (drag to zoom, ` +
      'double-click for every step)'), list);
    redraw();
  }

  async function update(run) {
    const mine = ++token;
    root.replaceChildren(el('p', {}, 'Loading alarms…'));
    try {
      const [stats, alarms] = await Promise.all([fetchJson('stepstats', {run, start: 0, end: 0}),
        fetchJson('alarms', {run})]);
      if (mine !== token) return;
      data = {stats, alarms};
      range = stats.steps.length ? [stats.steps[0], stats.steps[stats.steps.length - 1]] : [0, 0];
      render();
    } catch (err) {
      if (mine === token) root.replaceChildren(el('p', {class: 'dvi-error'}, `Alarms unavailable: ${err.message}`));
    }
  }

  update(options.run);
  return {
    update,
    setStep(step) {
      current = step;
      redraw();
    },
    destroy() {
      token += 1;
      root.remove();
    },
  };
}
