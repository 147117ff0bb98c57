// Dynamics view: DeepTracker's correctness cube (samples x steps in class bands, one canvas), per-class accuracy
// curves and the suspects table, from the plugin's `cube` (binary) and `suspects` (JSON) routes. Standalone: no
// imports; the host passes how to fetch and what to do when the user picks samples, a step or a class.
//
//   const view = mountDynamics(container, {run, fetchJson, onSelectSample, onStep, onFilterClass, onSuspects});
//
// onSelectSample(ids): a cube cell or a table row was clicked; onStep(step): the cell's first step;
// onFilterClass(cls, split): a class band was clicked; onSuspects(ids): the top-k suspect ids, once loaded (for a
// "top-k suspects" map filter).
//   view.update(otherRun); view.destroy();

const DTYPES = {uint8: Uint8Array, int8: Int8Array, int32: Int32Array, float32: Float32Array, float64: Float64Array};

/** Colours of a cube cell: all predictions correct, all wrong (fractions in between are blended). */
export const CORRECT_RGB = [236, 239, 241];
export const WRONG_RGB = [183, 28, 28];

/** `a=1&b=x` from an object, skipping null and undefined values. */
export function queryString(params) {
  return Object.entries(params || {})
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

/** Parses the plugin's `DVI1` binary answers: {header, arrays} with one typed array per named array. */
export function parseDviBinary(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.subarray(0, 4));
  if (magic !== 'DVI1') throw new Error(`not a DVI binary answer (magic ${JSON.stringify(magic)})`);
  const headerLength = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const base = 8 + headerLength;
  const arrays = {};
  for (const a of header.arrays) {
    const Ctor = DTYPES[a.dtype];
    if (!Ctor) throw new Error(`unsupported dtype ${a.dtype} for ${a.name}`);
    const start = base + a.offset;
    arrays[a.name] = new Ctor(buffer.slice(start, start + a.length * Ctor.BYTES_PER_ELEMENT));
  }
  return {header, arrays};
}

/** RGBA of a cell value: `v / scale` correct blends WRONG_RGB into CORRECT_RGB; `empty` is transparent. */
export function cellColor(value, scale = 200, empty = 255) {
  if (value === empty) return [0, 0, 0, 0];
  const f = Math.min(1, Math.max(0, value / scale));
  return [0, 1, 2].map((i) => Math.round(WRONG_RGB[i] + f * (CORRECT_RGB[i] - WRONG_RGB[i]))).concat(255);
}

/** The cube's pixels as RGBA bytes, row-major, one pixel per cell (for ImageData). */
export function cubeRgba(cells, rows, cols, scale = 200, empty = 255) {
  const lut = Array.from({length: 256}, (_, v) => cellColor(v, scale, empty));
  const out = new Uint8ClampedArray(rows * cols * 4);
  for (let i = 0; i < rows * cols; i += 1) out.set(lut[cells[i]], 4 * i);
  return out;
}

/** The band holding pixel row `row`, or null. */
export function bandAtRow(bands, row) {
  return bands.find((b) => row >= b.row && row < b.row + b.rows) || null;
}

/** What a click at (x, y) on a cube drawn `width` x `height` covers: pixel row/col, sample ids, steps, band. */
export function cellAt(cube, x, y, width, height) {
  const {header, arrays} = cube;
  if (x < 0 || y < 0 || x >= width || y >= height || !header.rows || !header.cols) return null;
  const row = Math.min(header.rows - 1, Math.floor((y / height) * header.rows));
  const col = Math.min(header.cols - 1, Math.floor((x / width) * header.cols));
  const ids = Array.from(arrays.ids.subarray(arrays.row_start[row], arrays.row_start[row + 1]));
  const steps = header.steps.slice(arrays.col_start[col], arrays.col_start[col + 1]);
  return {row, col, ids, steps, band: bandAtRow(header.bands, row)};
}

/** Per-class accuracy over steps from the cube's flattened curves [T, 2, C]: split 1 train, 0 test. */
export function classCurve(cube, split, cls) {
  const [t, , c] = cube.header.curve_shape;
  const values = [];
  for (let i = 0; i < t; i += 1) {
    const v = cube.arrays.curves[(i * 2 + split) * c + cls];
    values.push(Number.isNaN(v) ? null : v);
  }
  return values;
}

/** SVG polyline points of values in [0, 1] (nulls skipped), across `width` x `height`. */
export function curvePoints(values, width, height) {
  const n = values.length;
  return values
    .map((v, i) => (v === null ? null : `${(n > 1 ? (width * i) / (n - 1) : 0).toFixed(1)},${(height * (1 - v)).toFixed(1)}`))
    .filter(Boolean)
    .join(' ');
}

/** A sorted copy of suspect rows by `key` (numbers numerically, text alphabetically), `dir` 1 or -1. */
export function sortRows(rows, key, dir = 1) {
  return [...rows].sort((a, b) => {
    const x = a[key];
    const y = b[key];
    const order = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
    return dir * order || a.id - b.id;
  });
}

/** Relative URLs of the CSV downloads. */
export function csvUrls(run, k) {
  return {
    suspects: `./suspects?${queryString({run, k, format: 'csv'})}`,
    dynamics: `./dynamics?${queryString({run, format: 'csv'})}`,
  };
}

// -- DOM ---------------------------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'style') Object.assign(node.style, v);
    else if (k === 'testid') node.dataset.testid = v;
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function defaultFetchBuffer(path, params) {
  const resp = await fetch(`./${path}?${queryString(params)}`, {credentials: 'same-origin'});
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.arrayBuffer();
}

function drawCube(canvas, cube) {
  const {rows, cols, scale, empty} = cube.header;
  const image = new ImageData(cubeRgba(cube.arrays.cells, rows, cols, scale, empty), cols, rows);
  const scratch = document.createElement('canvas');
  scratch.width = cols;
  scratch.height = rows;
  scratch.getContext('2d').putImageData(image, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
  ctx.strokeStyle = '#455a64';
  for (const band of cube.header.bands) {
    const y = Math.round((band.row / rows) * canvas.height) + 0.5;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(canvas.width, y);
    ctx.stroke();
  }
}

function bandLabels(cube, height, classes, onFilterClass) {
  const {rows} = cube.header;
  const box = el('div', {style: {position: 'relative', width: '64px', height: `${height}px`, fontSize: '11px'}});
  for (const band of cube.header.bands) {
    const name = classes[band.class] ?? String(band.class);
    const tall = (band.rows / rows) * height >= 10; // a label only where it fits; the tooltip always
    box.append(el('div', {
      testid: 'dyn-band', title: `${band.split} · ${name}: ${band.samples} samples (click to filter the map)`,
      style: {position: 'absolute', top: `${(band.row / rows) * height}px`, height: `${(band.rows / rows) * height}px`,
        overflow: 'hidden', cursor: 'pointer'},
      onclick: () => onFilterClass && onFilterClass(band.class, band.split),
    }, tall ? `${band.split === 'test' ? 'test ' : ''}${name}` : ''));
  }
  return box;
}

function curvesPanel(cube, classes) {
  const [, , c] = cube.header.curve_shape;
  const panel = el('div', {testid: 'dyn-curves', style: {display: 'flex', flexWrap: 'wrap', gap: '4px'}});
  for (let k = 0; k < c; k += 1) {
    const box = svg('svg', {width: 72, height: 44, viewBox: '-2 -2 76 48'});
    box.append(svg('rect', {x: 0, y: 0, width: 72, height: 44, fill: 'none', stroke: '#cfd8dc'}));
    box.append(svg('polyline', {points: curvePoints(classCurve(cube, 1, k), 72, 44), fill: 'none', stroke: '#1565c0'}));
    box.append(svg('polyline', {points: curvePoints(classCurve(cube, 0, k), 72, 44), fill: 'none', stroke: '#ef6c00',
      'stroke-dasharray': '3 2'}));
    panel.append(el('figure', {style: {margin: 0}, title: 'accuracy per step: train (solid), test (dashed)'}, box,
      el('figcaption', {style: {fontSize: '11px'}}, classes[k] ?? String(k))));
  }
  return panel;
}

const COLUMNS = [['id', 'id'], ['label', 'label'], ['pred', 'prediction'], ['category', 'category'],
  ['reason', 'reason'], ['score', 'score']];

function suspectsTable(rows, classes, run, onSelectSample) {
  const name = (c) => classes[c] ?? String(c);
  const table = el('table', {testid: 'dyn-suspects', class: 'dvi-dyn-suspects'});
  const body = el('tbody');
  let sort = {key: 'score', dir: -1};
  const render = () => {
    body.replaceChildren(...sortRows(rows, sort.key, sort.dir).map((r) => el('tr', {
      testid: 'dyn-suspect', style: {cursor: 'pointer'}, onclick: () => onSelectSample && onSelectSample([r.id]),
    }, el('td', {}, el('img', {src: `./thumbnail?${queryString({run, id: r.id})}`, alt: '', width: 28, height: 28,
      onerror: (e) => { e.target.style.visibility = 'hidden'; }})),
    el('td', {}, r.id), el('td', {}, name(r.label)), el('td', {}, name(r.pred)), el('td', {}, r.category),
    el('td', {}, r.reason), el('td', {}, r.score.toFixed(3)))));
  };
  const head = el('tr', {}, el('th', {}, ''), COLUMNS.map(([key, label]) => el('th', {
    style: {cursor: 'pointer'}, title: 'sort',
    onclick: () => { sort = {key, dir: sort.key === key ? -sort.dir : (key === 'score' ? -1 : 1)}; render(); },
  }, label)));
  table.append(el('thead', {}, head), body);
  render();
  return table;
}

/** Mounts the Dynamics view in `container`; returns {update(run), destroy()}. */
export function mountDynamics(container, options) {
  const {fetchJson, fetchBuffer = defaultFetchBuffer, onSelectSample, onStep, onFilterClass, onSuspects,
    k = 100} = options;
  const root = el('div', {class: 'dvi-dynamics', testid: 'dynamics-view'});
  container.append(root);
  let token = 0;

  async function update(run) {
    const mine = ++token;
    root.replaceChildren(el('p', {}, 'Loading training dynamics…'));
    const width = Math.max(200, Math.min(1024, root.clientWidth - 80 || 600));
    const height = 360;
    try {
      const [buffer, suspects] = await Promise.all([
        fetchBuffer('cube', {run, rows: height, cols: Math.min(width, 1024)}),
        fetchJson('suspects', {run, k}),
      ]);
      if (mine !== token) return;
      if (onSuspects) onSuspects(suspects.suspects.map((r) => r.id));
      const cube = parseDviBinary(buffer);
      const classes = cube.header.classes || [];
      const canvas = el('canvas', {testid: 'dyn-cube', width, height, style: {cursor: 'crosshair'},
        title: 'rows: samples in class bands (train, then test), columns: steps; red = predicted wrong'});
      canvas.addEventListener('click', (event) => {
        const rect = canvas.getBoundingClientRect();
        const hit = cellAt(cube, event.clientX - rect.left, event.clientY - rect.top, rect.width, rect.height);
        if (!hit) return;
        if (onSelectSample) onSelectSample(hit.ids);
        if (onStep && hit.steps.length) onStep(hit.steps[0]);
      });
      drawCube(canvas, cube);
      const urls = csvUrls(run, k);
      root.replaceChildren(
        el('div', {style: {display: 'flex', gap: '8px', alignItems: 'center'}},
          el('strong', {}, `${suspects.total} suspects`),
          el('a', {href: urls.suspects, download: `${run}-suspects.csv`, testid: 'dyn-suspects-csv'}, 'suspects CSV'),
          el('a', {href: urls.dynamics, download: `${run}-dynamics.csv`, testid: 'dyn-dynamics-csv'}, 'per-sample CSV')),
        el('div', {style: {display: 'flex'}}, bandLabels(cube, height, classes, onFilterClass), canvas),
        curvesPanel(cube, classes),
        suspectsTable(suspects.suspects, classes, run, onSelectSample));
    } catch (err) {
      if (mine === token) root.replaceChildren(el('p', {class: 'dvi-error'}, `Training dynamics unavailable: ${err.message}`));
    }
  }

  if (options.run) update(options.run);
  return {update, destroy: () => { token += 1; root.remove(); }};
}
