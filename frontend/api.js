// Data access for the DVI tab. Every URL is relative (resolved against the iframe's <base href="plugin/dvi/">),
// so the tab works under --path_prefix and /experiment/<id>/. Projections are fetched once per (run, step) in
// the compact form (quantised coordinates, and only what changed since a step already loaded) and cached; answers
// that arrive after a newer request for the same slot are ignored.

const DTYPES = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint16: Uint16Array,
  uint8: Uint8Array,
  float16: null,
};

/** Error carrying the HTTP status and the server's JSON message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A binary answer that is not what it says (truncated, wrong lengths, unknown types): status 0. */
const malformed = (why) => new ApiError(0, `malformed projection: ${why}`);

function query(params) {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

async function failure(resp) {
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && body.error) message = body.error;
  } catch (_) {
    /* not JSON */
  }
  return new ApiError(resp.status, message);
}

/** GETs a JSON route; `init` adds fetch options (e.g. a priority). */
async function getJson(path, params, init = {}) {
  const resp = await fetch(`./${path}?${query(params || {})}`, {credentials: 'same-origin', ...init});
  if (resp.status === 202) return {pending: true, ...(await resp.json())};
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

/**
 * Reads the plugin's binary container (`DVI1`, uint32 header length, JSON header with an `arrays` table, arrays;
 * see http_api.md): `{header, arrays}` with every array copied into its typed array. Throws ApiError (status 0) for
 * anything that does not fit: a short buffer, a header that is not JSON, an array outside the buffer.
 */
export function readContainer(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < 8) throw malformed('shorter than its 8-byte preamble');
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== 'DVI1') throw malformed(`bad magic ${JSON.stringify(magic)}`);
  const headerLength = new DataView(buffer).getUint32(4, true);
  if (headerLength > buffer.byteLength - 8) throw malformed('header longer than the answer');
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw malformed(`header is not JSON (${e.message})`);
  }
  if (!header || typeof header !== 'object' || !Array.isArray(header.arrays)) throw malformed('header has no array table');
  const base = 8 + headerLength;
  const arrays = {};
  for (const a of header.arrays) {
    if (!a || typeof a.name !== 'string' || !(a.dtype in DTYPES)) throw malformed(`array ${a && a.name} of unknown type ${a && a.dtype}`);
    if (!Number.isSafeInteger(a.offset) || !Number.isSafeInteger(a.length) || a.offset < 0 || a.length < 0) throw malformed(`array ${a.name} has a bad place`);
    const size = a.dtype === 'float16' ? 2 : DTYPES[a.dtype].BYTES_PER_ELEMENT;
    const start = base + a.offset;
    if (start + a.length * size > buffer.byteLength) throw malformed(`array ${a.name} runs past the end`);
    // Copy: the array section is not guaranteed to be aligned to the element size within the buffer.
    const copy = buffer.slice(start, start + a.length * size);
    arrays[a.name] = a.dtype === 'float16' ? halfToFloat(new Uint16Array(copy)) : new DTYPES[a.dtype](copy);
  }
  return {header, arrays};
}

/** Parses the `DVI1` binary projection (see http_api.md) into typed arrays. */
export function parseBinaryProjection(buffer) {
  const {header, arrays} = readContainer(buffer);
  const out = {...header, ...arrays};
  delete out.arrays;
  return out;
}

const QMAX = 65535;

/**
 * Parses the compact projection (`format=compact`, header `encoding: "compact1"`; see http_api.md) into the same
 * object as parseBinaryProjection. Coordinates are uint16 steps over the header's `box`, confidence uint8 steps of
 * 1/255. An answer relative to a base step (`header.base` not null) needs that step's parsed projection as `base`:
 * ids, labels, splits and flags are the base's (shared, not copied) and only the changed predictions travel.
 */
export function parseCompactProjection(buffer, base = null) {
  const {header, arrays} = readContainer(buffer);
  if (header.encoding !== 'compact1') throw malformed(`encoding ${JSON.stringify(header.encoding)} is not compact1`);
  const n = header.n;
  const box = header.box;
  if (!Number.isSafeInteger(n) || n < 0) throw malformed('bad sample count');
  if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) throw malformed('bad box');
  const relative = header.base !== null && header.base !== undefined;
  const need = ['xq', 'yq', 'confq', ...(relative ? ['changed', 'changed_pred'] : ['labels', 'split', 'pred'])];
  if (!relative && !header.ids_range) need.push('ids');
  for (const k of need) if (!arrays[k]) throw malformed(`no ${k} array`);
  for (const [k, v] of Object.entries(arrays)) if (k !== 'changed' && k !== 'changed_pred' && v.length !== n) throw malformed(`${k} has ${v.length} values, not ${n}`);
  const [x0, y0, x1, y1] = box;
  const sx = (x1 - x0) / QMAX;
  const sy = (y1 - y0) / QMAX;
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  const conf = new Float32Array(n);
  const {xq, yq, confq} = arrays;
  for (let i = 0; i < n; i++) {
    x[i] = x0 + xq[i] * sx;
    y[i] = y0 + yq[i] * sy;
    conf[i] = confq[i] / 255;
  }
  const out = {...header, x, y, conf};
  delete out.arrays;
  delete out.box;
  if (!relative) {
    let ids = arrays.ids;
    if (header.ids_range) {
      ids = new Int32Array(n);
      for (let i = 0; i < n; i++) ids[i] = i;
    }
    return {...out, ids, labels: arrays.labels, split: arrays.split, pred: arrays.pred};
  }
  if (!base || base.step !== header.base || !base.ids || base.ids.length !== n) throw malformed(`relative to step ${header.base}, which is not the base given`);
  const {changed, changed_pred: changedPred} = arrays;
  if (changed.length !== changedPred.length) throw malformed('changed rows and predictions differ in length');
  const pred = new base.pred.constructor(base.pred);
  for (let j = 0; j < changed.length; j++) {
    const i = changed[j];
    if (!(i >= 0 && i < n)) throw malformed(`changed row ${i} outside the step`);
    pred[i] = changedPred[j];
  }
  return {...out, ids: base.ids, labels: base.labels, split: base.split, flags: base.flags, pred};
}

/** Either binary projection form, told apart by its header. */
export function parseProjection(buffer, base = null) {
  const {header} = readContainer(buffer);
  return header.encoding === 'compact1' ? parseCompactProjection(buffer, base) : parseBinaryProjection(buffer);
}

function halfToFloat(h) {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) {
    const v = h[i];
    const s = v & 0x8000 ? -1 : 1;
    const e = (v >> 10) & 0x1f;
    const f = v & 0x3ff;
    out[i] = e === 0 ? s * 2 ** -14 * (f / 1024) : e === 31 ? (f ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + f / 1024);
  }
  return out;
}

function fromJsonProjection(p) {
  const out = {...p};
  out.ids = Int32Array.from(p.ids);
  out.x = Float32Array.from(p.x);
  out.y = Float32Array.from(p.y);
  out.labels = Int32Array.from(p.labels);
  out.pred = Int32Array.from(p.pred);
  out.conf = Float32Array.from(p.conf);
  out.split = Uint8Array.from(p.split);
  return out;
}

/** Fetches a PNG and decodes it; null for 202 (not ready) or an error status. */
async function fetchImage(url) {
  return imageOf(await fetch(url, {credentials: 'same-origin'}));
}

/** Whether an answer is an image (not a 202 "still computing", an error, or JSON). */
const isImage = (resp) => resp.ok && resp.status !== 202 && (resp.headers.get('Content-Type') || '').startsWith('image/');

/** The decoded image of an answer, or null when it is not an image. */
async function imageOf(resp) {
  if (!isImage(resp)) return null;
  const blob = await resp.blob();
  const img = new Image();
  const objectUrl = URL.createObjectURL(blob);
  try {
    img.src = objectUrl;
    await img.decode();
  } finally {
    URL.revokeObjectURL(objectUrl);
  }
  return img;
}

/**
 * The client: caches projections and landscapes per (run, step), tracks the latest request per slot so stale
 * answers are dropped, and reports 202 "still computing" answers as `{pending: true, progress}`.
 */
export function createApi({landscapeSize = 512, maxTiles = 600} = {}) {
  const projections = new Map(); // key -> Promise<projection>
  const landscapes = new Map(); // key -> Promise<HTMLImageElement>
  const tiles = new Map(); // key -> {p: Promise<HTMLImageElement | null>, cachedOnly}, least recently used first
  const latest = new Map(); // slot -> token
  const loaded = new Map(); // run -> parsed projections (bases for compact answers)
  const stats = {projectionFetches: 0, projectionBytes: 0, lastProjectionBytes: 0, landscapeFetches: 0, tileFetches: 0, viewportFetches: 0};

  const key = (run, step) => `${run}\u0000${step}`;

  /** Marks a new request for `slot`; returns a function telling whether it is still the newest. */
  function claim(slot) {
    const token = (latest.get(slot) || 0) + 1;
    latest.set(slot, token);
    return () => latest.get(slot) === token;
  }

  async function runs() {
    const body = await getJson('runs');
    return body.runs || [];
  }

  /** The loaded projection of `run` nearest to `step` (the base a compact answer is relative to), or null. */
  function nearestLoaded(run, step) {
    let best = null;
    for (const p of loaded.get(run) || []) if (p.step !== step && (!best || Math.abs(p.step - step) < Math.abs(best.step - step))) best = p;
    return best;
  }

  /**
   * Resolves to a projection, or `{pending: true, progress}` while the step is being computed (not cached). Asks for
   * the compact form relative to the nearest step already loaded (only what changed travels); parses whichever form
   * the server answers with.
   */
  function projection(run, step) {
    const k = key(run, step);
    if (projections.has(k)) return projections.get(k);
    stats.projectionFetches++;
    const base = nearestLoaded(run, step);
    const p = (async () => {
      const params = {run, step, format: 'compact', base: base ? base.step : null};
      const resp = await fetch(`./projection?${query(params)}`, {credentials: 'same-origin'});
      if (resp.status === 202) return {pending: true, ...(await resp.json())};
      if (!resp.ok) throw await failure(resp);
      const type = resp.headers.get('Content-Type') || '';
      if (type.includes('json')) return fromJsonProjection(await resp.json());
      const buffer = await resp.arrayBuffer();
      stats.projectionBytes += buffer.byteLength;
      stats.lastProjectionBytes = buffer.byteLength;
      const parsed = parseProjection(buffer, base);
      if (!loaded.has(run)) loaded.set(run, []);
      loaded.get(run).push(parsed);
      return parsed;
    })();
    projections.set(k, p);
    // Only finished projections stay cached; pending or failed ones are asked again next time.
    p.then((r) => r.pending && projections.get(k) === p && projections.delete(k), () => projections.get(k) === p && projections.delete(k));
    return p;
  }

  function cachedProjection(run, step) {
    return projections.get(key(run, step)) || null;
  }

  function landscapeUrl(run, step, size = landscapeSize) {
    return `./landscape?${query({run, step, size})}`;
  }

  /** Resolves to a decoded image, or null when the run has no landscape / the step is not ready. */
  function landscape(run, step, size = landscapeSize) {
    const k = `${key(run, step)}\u0000${size}`;
    if (landscapes.has(k)) return landscapes.get(k);
    stats.landscapeFetches++;
    const p = fetchImage(landscapeUrl(run, step, size));
    landscapes.set(k, p);
    p.then((img) => img || landscapes.delete(k), () => landscapes.delete(k));
    return p;
  }

  function tileUrl(run, step, z, tx, ty, size = 256, cachedOnly = false) {
    return `./landscape?${query({run, step, z, tx, ty, size, cached: cachedOnly ? 1 : null})}`;
  }

  /**
   * One landscape tile (see state/tiles.js) as a decoded image, or null when the server has none (yet).
   * `cachedOnly`: only a tile the plugin rendered already (null, at once, when it did not); a later plain request
   * for the same tile renders it.
   */
  function tile(run, step, z, tx, ty, size = 256, {cachedOnly = false} = {}) {
    const k = `${key(run, step)}\u0000${z}/${tx}/${ty}/${size}`;
    const hit = tiles.get(k);
    if (hit) {
      tiles.delete(k);
      tiles.set(k, hit);
      if (!hit.cachedOnly || cachedOnly) return hit.p;
      return hit.p.then((img) => img || tile(run, step, z, tx, ty, size)); // not rendered then: render it now
    }
    stats.tileFetches++;
    const entry = {p: fetchImage(tileUrl(run, step, z, tx, ty, size, cachedOnly)), cachedOnly};
    tiles.set(k, entry);
    const drop = () => tiles.get(k) === entry && tiles.delete(k);
    entry.p.then((img) => img || drop(), drop);
    while (tiles.size > maxTiles) tiles.delete(tiles.keys().next().value);
    return entry.p;
  }

  function viewportUrl(run, step, box, width, height) {
    return `./landscape?${query({run, step, box: box.map((v) => String(v)).join(','), width, height})}`;
  }

  /**
   * The landscape over data box [x0, y0, x1, y1] as one `width` x `height` image (a cold zoom's first sharp paint,
   * see state/tiles.js), or null when the server has none; not cached here (the tiles replace it).
   */
  function viewport(run, step, box, width, height) {
    stats.viewportFetches++;
    return fetchImage(viewportUrl(run, step, box, width, height));
  }

  /** Asks the plugin to load what rendering `step`'s landscape needs (a zoom right after then waits less). */
  function warm(run, step) {
    return fetch(`./landscape?${query({run, step, warm: 1})}`, {credentials: 'same-origin', priority: 'low'}).then(() => true, () => false);
  }

  /**
   * Whether the plugin has tile (z, tx, ty) rendered already (`cached=1`: nothing is rendered for it), resolved as soon
   * as its answer's status arrives; the image, when there, is decoded meanwhile and kept for `tile`.
   */
  function probeTile(run, step, z, tx, ty, size = 256) {
    const k = `${key(run, step)}\u0000${z}/${tx}/${ty}/${size}`;
    const hit = tiles.get(k);
    if (hit) return hit.p.then((img) => !!img);
    stats.tileFetches++;
    const resp = fetch(tileUrl(run, step, z, tx, ty, size, true), {credentials: 'same-origin'});
    const entry = {p: resp.then(imageOf, () => null), cachedOnly: true};
    tiles.set(k, entry);
    const drop = () => tiles.get(k) === entry && tiles.delete(k);
    entry.p.then((img) => img || drop(), drop);
    while (tiles.size > maxTiles) tiles.delete(tiles.keys().next().value);
    return resp.then(isImage, () => false);
  }

  async function predict(run, step, points) {
    const resp = await fetch(`./predict?${query({run, step})}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {'Content-Type': 'application/json'},
      body: JSON.stringify(points),
    });
    if (!resp.ok) throw await failure(resp);
    return resp.json();
  }

  const sample = (run, id) => getJson('sample', {run, id});
  /** Any JSON route by name (e.g. the training-dynamics view's `suspects`). */
  const json = (path, params) => getJson(path, params);
  // The quality card asks for the metrics of up to 60 steps at once when the tab opens: at low priority, so the
  // browser's six connections to the server go to the map's projection and landscape first (a slider move made while
  // they load otherwise waits behind them).
  const metrics = (run, step) => getJson('metrics', {run, step}, {priority: 'low'});
  const thumbnailUrl = (run, id) => `./thumbnail?${query({run, id})}`;

  return {runs, projection, cachedProjection, landscape, landscapeUrl, tile, tileUrl, probeTile, viewport, viewportUrl, warm, predict, sample, json, metrics, thumbnailUrl, claim, stats};
}
