// Data access for the DVI tab. Every URL is relative (resolved against the iframe's <base href="plugin/dvi/">),
// so the tab works under --path_prefix and /experiment/<id>/. Projections are fetched once per (run, step) in
// the compact binary form and cached; answers that arrive after a newer request for the same slot are ignored.

const DTYPES = {
  float32: Float32Array,
  int32: Int32Array,
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

async function getJson(path, params) {
  const resp = await fetch(`./${path}?${query(params || {})}`, {credentials: 'same-origin'});
  if (resp.status === 202) return {pending: true, ...(await resp.json())};
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

/** Parses the `DVI1` binary projection (see http_api.md) into typed arrays. */
export function parseBinaryProjection(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3]);
  if (magic !== 'DVI1') throw new ApiError(500, `bad projection magic ${JSON.stringify(magic)}`);
  const headerLength = new DataView(buffer).getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const base = 8 + headerLength;
  const out = {...header};
  delete out.arrays;
  for (const a of header.arrays) {
    const Ctor = DTYPES[a.dtype];
    const start = base + a.offset;
    if (Ctor) {
      // Copy: the array section is not guaranteed to be aligned to the element size within the buffer.
      out[a.name] = new Ctor(buffer.slice(start, start + a.length * Ctor.BYTES_PER_ELEMENT));
    } else if (a.dtype === 'float16') {
      out[a.name] = halfToFloat(new Uint16Array(buffer.slice(start, start + a.length * 2)));
    } else {
      throw new ApiError(500, `unsupported dtype ${a.dtype} for ${a.name}`);
    }
  }
  return out;
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
  const resp = await fetch(url, {credentials: 'same-origin'});
  if (resp.status === 202 || !resp.ok || !(resp.headers.get('Content-Type') || '').startsWith('image/')) return null;
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
  const tiles = new Map(); // key -> Promise<HTMLImageElement | null>, least recently used first
  const latest = new Map(); // slot -> token
  const stats = {projectionFetches: 0, landscapeFetches: 0, tileFetches: 0};

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

  /** Resolves to a projection, or `{pending: true, progress}` while the step is being computed (not cached). */
  function projection(run, step) {
    const k = key(run, step);
    if (projections.has(k)) return projections.get(k);
    stats.projectionFetches++;
    const p = (async () => {
      const resp = await fetch(`./projection?${query({run, step, format: 'binary'})}`, {credentials: 'same-origin'});
      if (resp.status === 202) return {pending: true, ...(await resp.json())};
      if (!resp.ok) throw await failure(resp);
      const type = resp.headers.get('Content-Type') || '';
      if (type.includes('json')) return fromJsonProjection(await resp.json());
      return parseBinaryProjection(await resp.arrayBuffer());
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

  function tileUrl(run, step, z, tx, ty, size = 256) {
    return `./landscape?${query({run, step, z, tx, ty, size})}`;
  }

  /** One landscape tile (see state/tiles.js) as a decoded image, or null when the server has none (yet). */
  function tile(run, step, z, tx, ty, size = 256) {
    const k = `${key(run, step)}\u0000${z}/${tx}/${ty}/${size}`;
    if (tiles.has(k)) {
      const p = tiles.get(k);
      tiles.delete(k);
      tiles.set(k, p);
      return p;
    }
    stats.tileFetches++;
    const p = fetchImage(tileUrl(run, step, z, tx, ty, size));
    tiles.set(k, p);
    p.then((img) => img || tiles.delete(k), () => tiles.delete(k));
    while (tiles.size > maxTiles) tiles.delete(tiles.keys().next().value);
    return p;
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
  const metrics = (run, step) => getJson('metrics', {run, step});
  const thumbnailUrl = (run, id) => `./thumbnail?${query({run, id})}`;

  return {runs, projection, cachedProjection, landscape, landscapeUrl, tile, tileUrl, predict, sample, json, metrics, thumbnailUrl, claim, stats};
}
