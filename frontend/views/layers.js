// Layers view (DeepTracker): one small multiple per layer, grouped by block, of its relative weight change per
// logged step, and a layer x step heatmap of the relative change with the outliers marked. Data from the plugin's
// `layers` route (JSON). The host (layershost.js) passes how to fetch and what to do when the user picks a step.
//
//   const view = mountLayers(container, {run, fetchJson, onStep});
//   view.update(otherRun); view.setStep(step); view.destroy();
//
// onStep(step): a heatmap cell, an outlier mark or a point of a small multiple was clicked: the time bar moves
// there. setStep(step): the time bar's step, drawn as a cursor on the heatmap and the small multiples.
import {h, fill} from './dom.js';

/** Heatmap colours: no change (light) to the largest change shown (dark blue); outliers get an orange frame. */
export const LOW_RGB = [236, 239, 241];
export const HIGH_RGB = [13, 71, 161];
export const OUTLIER = '#ef6c00';
/** At most this many outliers get their own clickable mark (more are still framed on the heatmap). */
export const MAX_OUTLIER_MARKS = 400;

/** Layers grouped by block, blocks in first-seen order: `[{block, layers: [index]}]` (top level named "(top)"). */
export function groupByBlock(layers) {
  const groups = new Map();
  layers.forEach((layer, i) => {
    const name = layer.block || '(top)';
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(i);
  });
  return [...groups.entries()].map(([block, idx]) => ({block, layers: idx}));
}

/** A column of a [T][L] matrix (nulls kept). */
export function column(matrix, l) {
  return matrix.map((row) => row[l]);
}

/** The largest finite value of a matrix or list (0 when none), for a shared colour or y scale. */
export function finiteMax(values) {
  let best = 0;
  for (const v of values.flat()) if (v !== null && Number.isFinite(v) && v > best) best = v;
  return best;
}

/** RGBA of a relative change on a log scale from `max / 1000` to `max`; null (unknown) is transparent. */
export function changeColor(value, max) {
  if (value === null || !Number.isFinite(value) || max <= 0) return [0, 0, 0, 0];
  const f = Math.min(1, Math.max(0, 1 + Math.log10(Math.max(value, 1e-12) / max) / 3));
  return [0, 1, 2].map((i) => Math.round(LOW_RGB[i] + f * (HIGH_RGB[i] - LOW_RGB[i]))).concat(255);
}

/** Heatmap pixels (RGBA, row-major, one row per layer, one column per step) of `rel_change` [T][L]. */
export function heatmapRgba(relChange) {
  const t = relChange.length;
  const l = t ? relChange[0].length : 0;
  const max = finiteMax(relChange);
  const out = new Uint8ClampedArray(t * l * 4);
  for (let s = 0; s < t; s += 1) {
    for (let k = 0; k < l; k += 1) out.set(changeColor(relChange[s][k], max), 4 * (k * t + s));
  }
  return out;
}

/** Points `[x, y]` of a sparkline of `values` (nulls skipped) in a `width` x `height` box scaled to `[0, max]`. */
export function sparkline(values, width, height, max) {
  const top = max > 0 ? max : finiteMax(values) || 1;
  const n = values.length;
  const out = [];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) return;
    const x = n > 1 ? (i / (n - 1)) * (width - 1) : width / 2;
    out.push([x, (1 - Math.min(v / top, 1)) * (height - 1)]);
  });
  return out;
}

/** The (step index, layer index) of a click at (x, y) on a heatmap drawn `width` x `height` for T steps, L layers. */
export function heatmapCell(x, y, width, height, t, l) {
  if (x < 0 || y < 0 || x >= width || y >= height || !t || !l) return null;
  return [Math.min(t - 1, Math.floor((x / width) * t)), Math.min(l - 1, Math.floor((y / height) * l))];
}

function drawSparkline(canvas, values, max, outliers) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#1565c0';
  ctx.lineWidth = 1.25;
  ctx.beginPath();
  sparkline(values, canvas.width, canvas.height - 4, max).forEach(([x, y], i) => (i ? ctx.lineTo(x, y + 4) : ctx.moveTo(x, y + 4)));
  ctx.stroke();
  ctx.fillStyle = OUTLIER;
  const n = values.length;
  for (const t of outliers) ctx.fillRect((n > 1 ? (t / (n - 1)) * (canvas.width - 1) : canvas.width / 2) - 1.5, 0, 3, 4);
}

function drawHeatmap(canvas, body) {
  const t = body.steps.length;
  const l = body.layers.length;
  const image = document.createElement('canvas');
  image.width = t;
  image.height = l;
  image.getContext('2d').putImageData(new ImageData(heatmapRgba(body.rel_change), t, l), 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = OUTLIER;
  ctx.lineWidth = 2;
  for (const [s, k] of body.outliers) {
    ctx.strokeRect((s / t) * canvas.width + 1, (k / l) * canvas.height + 1, canvas.width / t - 2, canvas.height / l - 2);
  }
}

/** The small multiples: one block per group, one figure per layer (its relative change per step). */
function multiples(body, pick) {
  const max = finiteMax(body.rel_change);
  const byLayer = new Map();
  for (const [s, k] of body.outliers) byLayer.set(k, [...(byLayer.get(k) || []), s]);
  return groupByBlock(body.layers).map(({block, layers}) => h('div', {class: 'dvi-layer-block', testid: 'layer-block', dataset: {block}},
    h('h4', {class: 'dvi-layer-block-name'}, block, h('span', {class: 'dvi-muted'}, ` · ${layers.length} layer${layers.length === 1 ? '' : 's'}`)),
    h('div', {class: 'dvi-layer-row'}, layers.map((k) => {
      const layer = body.layers[k];
      const canvas = h('canvas', {width: 132, height: 40, class: 'dvi-layer-canvas'});
      drawSparkline(canvas, column(body.rel_change, k), max, byLayer.get(k) || []);
      canvas.addEventListener('click', (e) => {
        const i = Math.round((e.offsetX / Math.max(1, canvas.clientWidth - 1)) * (body.steps.length - 1));
        if (body.steps[i] !== undefined) pick(body.steps[i]);
      });
      const n = (byLayer.get(k) || []).length;
      return h('figure', {class: 'dvi-layer', testid: 'layer-multiple', dataset: {layer: layer.name, outliers: String(n)},
        title: `${layer.name}: ${Number(layer.params).toLocaleString('en-US')} parameters; relative weight change per logged step (shared scale)${n ? `; ${n} outlier step${n === 1 ? '' : 's'} (orange)` : ''}`},
      h('div', {class: 'dvi-layer-plot'}, canvas, h('div', {class: 'dvi-layer-cursor'})),
      h('figcaption', {}, layer.name.slice(block === '(top)' ? 0 : block.length + 1) || layer.name));
    }))));
}

/** Mounts the view; see the module comment. */
export function mountLayers(container, options) {
  const {fetchJson, onStep} = options;
  const root = h('div', {class: 'dvi-layers', testid: 'layers-view'});
  container.append(root);
  let token = 0;
  let body = null;
  let step = null;
  const pick = (s) => onStep && onStep(s);

  function placeCursor() {
    if (!body) return;
    const t = body.steps.length;
    const i = step === null ? -1 : body.steps.indexOf(step);
    root.style.setProperty('--dvi-layer-cursor', i < 0 ? '-1' : String(t > 1 ? i / (t - 1) : 0.5));
    root.style.setProperty('--dvi-heat-cursor', i < 0 ? '-1' : String((i + 0.5) / t));
    root.dataset.step = i < 0 ? '' : String(step);
    root.classList.toggle('dvi-no-step', i < 0);
  }

  function render() {
    const t = body.steps.length;
    const l = body.layers.length;
    const heat = h('canvas', {class: 'dvi-heatmap', testid: 'layers-heatmap', width: Math.max(200, Math.min(1600, root.clientWidth - 140 || 600)),
      height: Math.max(60, Math.min(420, 14 * l))});
    drawHeatmap(heat, body);
    heat.addEventListener('click', (e) => {
      const cell = heatmapCell(e.offsetX, e.offsetY, heat.clientWidth, heat.clientHeight, t, l);
      if (cell) pick(body.steps[cell[0]]);
    });
    const marks = body.outliers.slice(0, MAX_OUTLIER_MARKS).map(([s, k]) => h('button', {
      type: 'button', class: 'dvi-layer-outlier', testid: 'layer-outlier', dataset: {step: String(body.steps[s]), layer: body.layers[k].name},
      style: {left: `${(100 * s) / t}%`, top: `${(100 * k) / l}%`, width: `${100 / t}%`, height: `${100 / l}%`},
      title: `${body.layers[k].name} at step ${body.steps[s]}: relative change ${body.rel_change[s][k]} (an outlier for this layer); click to go to the step`,
      onclick: () => pick(body.steps[s]),
    }));
    const names = h('div', {class: 'dvi-heat-names', style: {height: `${heat.height}px`}},
      body.layers.map((layer) => h('div', {class: 'dvi-heat-name', title: layer.name}, layer.name)));
    const alarms = (body.alarms || []).length;
    fill(root,
      h('div', {class: 'dvi-layers-head'},
        h('strong', {}, `${l} layers in ${groupByBlock(body.layers).length} blocks · ${t} logged steps`),
        h('span', {class: 'dvi-muted', testid: 'layers-outliers'}, ` · ${body.outliers.length} outlier${body.outliers.length === 1 ? '' : 's'} (orange)` +
          `${alarms ? ` · ${alarms} layer jump alarm${alarms === 1 ? '' : 's'}` : ''} · click a step to move the time bar there`),
        h('a', {href: `./layers?run=${encodeURIComponent(body.run)}&format=csv`, download: `${body.run}-layers.csv`, testid: 'layers-csv'}, 'CSV')),
      h('h3', {class: 'dvi-card-title'}, 'Relative weight change per layer (small multiples, grouped by block)'),
      h('div', {class: 'dvi-layer-multiples', testid: 'layer-multiples'}, multiples(body, pick)),
      h('h3', {class: 'dvi-card-title'}, 'Layer × step heatmap of the relative change (log colour scale; outliers framed in orange)'),
      h('div', {class: 'dvi-heat-wrap'}, names,
        h('div', {class: 'dvi-heat-stage', style: {width: `${heat.width}px`, height: `${heat.height}px`}}, heat, ...marks, h('div', {class: 'dvi-heat-cursor'}))),
      h('div', {class: 'dvi-heat-axis', style: {width: `${heat.width}px`}}, h('span', {}, `step ${body.steps[0]}`),
        h('span', {}, 'logged steps →'), h('span', {}, `step ${body.steps[t - 1]}`)));
    placeCursor();
  }

  async function update(run) {
    const mine = ++token;
    body = null;
    fill(root, h('p', {}, 'Loading layer statistics…'));
    try {
      const answer = await fetchJson('layers', {run});
      if (mine !== token) return;
      body = answer;
      render();
    } catch (err) {
      if (mine !== token) return;
      const none = err.status === 404;
      fill(root, h('p', {class: none ? 'dvi-muted' : 'dvi-error', testid: 'layers-message'}, none
        ? `No layer statistics for ${run}: ${err.message}. Log them with dvi.layers.log_layers(writer, step, model) or snapshot(..., model=model).`
        : `Layer statistics unavailable: ${err.message}`));
    }
  }

  if (options.run) update(options.run);
  return {
    update,
    setStep(s) {
      step = s;
      placeCursor();
    },
    destroy() {
      token += 1;
      root.remove();
    },
  };
}
