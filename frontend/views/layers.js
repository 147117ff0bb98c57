// Layers view (DeepTracker): one small multiple per layer, grouped by block, of its relative weight change per
// logged step, and a layer x step heatmap of the relative change with the outliers marked. Data from the plugin's
// `layers` route (JSON). Standalone: no imports; the host passes how to fetch and what to do when the user picks a
// step.
//
//   const view = mountLayers(container, {run, fetchJson, onStep});
//   view.update(otherRun); view.destroy();
//
// onStep(step): a heatmap cell or a point of a small multiple was clicked (outliers link to the time bar).

/** Heatmap colours: no change (light) to the largest change shown (dark blue); outliers get an orange frame. */
export const LOW_RGB = [236, 239, 241];
export const HIGH_RGB = [13, 71, 161];
export const OUTLIER = '#ef6c00';

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

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'testid') node.dataset.testid = v;
    else if (k === 'style') node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function drawSparkline(canvas, values, max, outliers) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#1565c0';
  ctx.beginPath();
  sparkline(values, canvas.width, canvas.height, max).forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.stroke();
  ctx.fillStyle = OUTLIER;
  const n = values.length;
  for (const t of outliers) ctx.fillRect((n > 1 ? (t / (n - 1)) * (canvas.width - 1) : canvas.width / 2) - 1, 0, 3, 3);
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
  ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = OUTLIER;
  for (const [s, k] of body.outliers) {
    ctx.strokeRect((s / t) * canvas.width, (k / l) * canvas.height, canvas.width / t, canvas.height / l);
  }
}

/** Mounts the view; see the module comment. */
export function mountLayers(container, options) {
  const {fetchJson, onStep} = options;
  const root = el('div', {class: 'dvi-layers', testid: 'layers-view'});
  container.append(root);
  let token = 0;

  function render(body) {
    const max = finiteMax(body.rel_change);
    const byLayer = new Map();
    for (const [s, k] of body.outliers) byLayer.set(k, [...(byLayer.get(k) || []), s]);
    const groups = groupByBlock(body.layers).map(({block, layers}) => el('div', {class: 'dvi-layer-block'},
      el('h4', {}, block), ...layers.map((k) => {
        const canvas = el('canvas', {width: 120, height: 32, testid: 'layer-multiple'});
        drawSparkline(canvas, column(body.rel_change, k), max, byLayer.get(k) || []);
        canvas.addEventListener('click', (e) => {
          const i = Math.round((e.offsetX / Math.max(1, canvas.width - 1)) * (body.steps.length - 1));
          if (onStep && body.steps[i] !== undefined) onStep(body.steps[i]);
        });
        return el('figure', {title: `${body.layers[k].name}: ${body.layers[k].params} parameters`}, canvas,
          el('figcaption', {}, body.layers[k].name));
      })));
    const heat = el('canvas', {width: Math.max(200, root.clientWidth || 600),
      height: Math.max(60, Math.min(400, 8 * body.layers.length)), testid: 'layers-heatmap'});
    drawHeatmap(heat, body);
    heat.addEventListener('click', (e) => {
      const cell = heatmapCell(e.offsetX, e.offsetY, heat.width, heat.height, body.steps.length, body.layers.length);
      if (cell && onStep) onStep(body.steps[cell[0]]);
    });
    root.replaceChildren(el('div', {class: 'dvi-layer-multiples'}, ...groups), heat);
  }

  async function update(run) {
    const mine = ++token;
    root.replaceChildren(el('p', {}, 'Loading layer statistics…'));
    try {
      const body = await fetchJson('layers', {run});
      if (mine === token) render(body);
    } catch (err) {
      if (mine === token) root.replaceChildren(el('p', {class: 'dvi-error'}, `Layer statistics unavailable: ${err.message}`));
    }
  }

  update(options.run);
  return {
    update,
    destroy() {
      token += 1;
      root.remove();
    },
  };
}
