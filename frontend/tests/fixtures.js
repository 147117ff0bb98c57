// Shared test data: run lists shaped like the `runs` route's answer.

export function runInfo(name, steps, ready = steps, extra = {}) {
  return {run: name, steps, n: 100, n_classes: 3, classes: ['a', 'b', 'c'], colors: ['#ff0000', '#00ff00', '#0000ff'],
    has_head: true, has_inputs: true, flags: [], status: {state: ready.length === steps.length ? 'ready' : 'running', ready, running: null, progress: null}, ...extra};
}

export const TWO_RUNS = [runInfo('clean', [0, 1, 2, 3]), runInfo('noisy', [0, 2, 4], [0, 2])];

const DTYPES = {Uint8Array: 'uint8', Int8Array: 'int8', Uint16Array: 'uint16', Int32Array: 'int32', Float32Array: 'float32'};

/** A `DVI1` answer built as the plugin's binary.encode does: JSON header padded to 4 bytes, arrays 4-byte aligned. */
export function dviContainer(header, arrays) {
  const table = [];
  const parts = [];
  let offset = 0;
  for (const [name, typed] of Object.entries(arrays)) {
    const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    const pad = (4 - (bytes.length % 4)) % 4;
    table.push({name, dtype: DTYPES[typed.constructor.name], offset, length: typed.length});
    parts.push(bytes, new Uint8Array(pad));
    offset += bytes.length + pad;
  }
  let head = JSON.stringify({...header, arrays: table});
  head += ' '.repeat((4 - (head.length % 4)) % 4);
  const headBytes = new TextEncoder().encode(head);
  const out = new Uint8Array(8 + headBytes.length + offset);
  out.set(new TextEncoder().encode('DVI1'), 0);
  new DataView(out.buffer).setUint32(4, headBytes.length, true);
  out.set(headBytes, 8);
  let at = 8 + headBytes.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out.buffer;
}
