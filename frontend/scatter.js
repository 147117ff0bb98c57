// The map: a scatter of samples over the classification landscape.
//
// `createScatter(canvas, options)` returns `{draw, set, destroy, ...}`. WebGL draws the points; positions are
// interpolated between two steps on the GPU (uniform `t`), and two landscape textures are cross-faded. When WebGL
// is unavailable a canvas-2D renderer with the same interface takes over. A 2-D overlay canvas (created next to
// the map canvas) carries the selected sample's trajectory and the hover marker.

export const DEFAULT_POINT_SIZE = 5;
export const DEFAULT_DIM_ALPHA = 0.13;
export const DEFAULT_BACKGROUND = [1, 1, 1];
export const MAX_PALETTE = 64;
const MIN_SCALE_FACTOR = 0.25;
const MAX_SCALE_FACTOR = 200;

export function hexToRgb(hex) {
  const h = hex.replace('#', '');
  const v = h.length === 3 ? h.split('').map((c) => c + c).join('') : h;
  return [parseInt(v.slice(0, 2), 16) / 255, parseInt(v.slice(2, 4), 16) / 255, parseInt(v.slice(4, 6), 16) / 255];
}

const POINT_VS = `
precision highp float;
attribute vec2 aPosA;
attribute vec2 aPosB;
attribute float aLabel;
attribute float aPred;
attribute float aHigh;
uniform float uT;
uniform vec4 uView;
uniform float uSize;
uniform float uDimAlpha;
uniform vec3 uPalette[${MAX_PALETTE}];
varying vec3 vLabel;
varying vec3 vPred;
varying float vMis;
varying float vAlpha;
varying float vSize;
vec3 pal(float i) {
  // Dynamic indexing of uniform arrays is allowed in WebGL 1 vertex shaders.
  return uPalette[int(mod(i + 0.5, ${MAX_PALETTE}.0))];
}
void main() {
  vec2 p = mix(aPosA, aPosB, uT);
  float high = aHigh > 0.5 ? 1.0 : 0.0;
  // One pass: highlighted points sit in front (depth test), so dimmed ones never cover them.
  gl_Position = vec4((p.x - uView.x) * uView.z, (p.y - uView.y) * uView.w, high > 0.5 ? -0.5 : 0.5, 1.0);
  vMis = aLabel != aPred ? 1.0 : 0.0;
  vLabel = pal(aLabel);
  vPred = pal(aPred);
  vAlpha = high > 0.5 ? 1.0 : uDimAlpha;
  gl_PointSize = (vMis > 0.5 ? uSize * 1.7 : uSize) * (high > 0.5 ? 1.0 : 0.8);
  vSize = gl_PointSize;
}`;

const POINT_FS = `
precision mediump float;
varying vec3 vLabel;
varying vec3 vPred;
varying float vMis;
varying float vAlpha;
varying float vSize;
void main() {
  float r = length(gl_PointCoord - vec2(0.5)) * 2.0;
  if (r > 1.0) discard;
  // Soft edge of about one pixel (the context has no MSAA: it is costly in software GL).
  float edge = clamp((1.0 - r) * vSize * 0.5, 0.0, 1.0);
  vec3 c;
  if (vMis > 0.5) {
    if (r > 0.62) c = vLabel * 0.92;
    else if (r < 0.42) c = vPred;
    else discard;
  } else {
    c = r > 0.74 ? vLabel * 0.78 : vLabel;
  }
  gl_FragColor = vec4(c, vAlpha * edge);
}`;

const BG_VS = `
precision highp float;
attribute vec2 aCorner;
uniform vec4 uBounds;
uniform vec4 uView;
varying vec2 vUv;
void main() {
  vec2 p = mix(uBounds.xy, uBounds.zw, aCorner);
  vUv = vec2(aCorner.x, 1.0 - aCorner.y);
  gl_Position = vec4((p.x - uView.x) * uView.z, (p.y - uView.y) * uView.w, 0.0, 1.0);
}`;

const BG_FS = `
precision mediump float;
uniform sampler2D uImage;
uniform float uAlpha;
varying vec2 vUv;
void main() { gl_FragColor = vec4(texture2D(uImage, vUv).rgb, uAlpha); }`;

function compile(gl, vs, fs) {
  const prog = gl.createProgram();
  for (const [type, src] of [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]]) {
    const sh = gl.createShader(type);
    gl.shaderSource(sh, src);
    gl.compileShader(sh);
    if (!gl.getShaderParameter(sh, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(sh));
    gl.attachShader(prog, sh);
  }
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
  const loc = {};
  const na = gl.getProgramParameter(prog, gl.ACTIVE_ATTRIBUTES);
  for (let i = 0; i < na; i++) {
    const name = gl.getActiveAttrib(prog, i).name;
    loc[name] = gl.getAttribLocation(prog, name);
  }
  const nu = gl.getProgramParameter(prog, gl.ACTIVE_UNIFORMS);
  for (let i = 0; i < nu; i++) {
    const name = gl.getActiveUniform(prog, i).name.replace(/\[0\]$/, '');
    loc[name] = gl.getUniformLocation(prog, name);
  }
  return {prog, loc};
}

/** WebGL back end: owns buffers, textures and the two programs. Returns null when WebGL is unavailable. */
function createGlRenderer(canvas) {
  let gl = null;
  try {
    const attrs = {antialias: false, depth: true, premultipliedAlpha: false, preserveDrawingBuffer: true, alpha: false};
    gl = canvas.getContext('webgl', attrs) || canvas.getContext('experimental-webgl', attrs);
  } catch (_) {
    gl = null;
  }
  if (!gl) return null;
  let points;
  let bg;
  try {
    points = compile(gl, POINT_VS, POINT_FS);
    bg = compile(gl, BG_VS, BG_FS);
  } catch (e) {
    console.warn('DVI: WebGL shaders failed, using canvas 2D', e);
    return null;
  }
  const buffers = {
    aPosA: gl.createBuffer(), aPosB: gl.createBuffer(), aLabel: gl.createBuffer(), aPred: gl.createBuffer(), aHigh: gl.createBuffer(),
  };
  const corners = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, corners);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]), gl.STATIC_DRAW);
  const textures = new WeakMap();

  function upload(name, data) {
    gl.bindBuffer(gl.ARRAY_BUFFER, buffers[name]);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
  }

  function texture(image) {
    let tex = textures.get(image);
    if (tex) return tex;
    tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, image);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    textures.set(image, tex);
    return tex;
  }

  function attrib(loc, buf, size) {
    if (loc === undefined || loc < 0) return;
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, size, gl.FLOAT, false, 0, 0);
  }

  function render(s, view) {
    gl.viewport(0, 0, canvas.width, canvas.height);
    const [br, bgc, bb] = s.background;
    gl.clearColor(br, bgc, bb, 1);
    gl.clearDepth(1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    // Landscapes: A fully, B on top with the fade weight.
    gl.useProgram(bg.prog);
    attrib(bg.loc.aCorner, corners, 2);
    gl.uniform4fv(bg.loc.uView, view);
    gl.activeTexture(gl.TEXTURE0);
    gl.uniform1i(bg.loc.uImage, 0);
    for (const [layer, alpha] of [[s.landA, 1], [s.landB, s.fade]]) {
      if (!layer || !layer.image || alpha <= 0) continue;
      gl.bindTexture(gl.TEXTURE_2D, texture(layer.image));
      gl.uniform4fv(bg.loc.uBounds, layer.bounds);
      gl.uniform1f(bg.loc.uAlpha, alpha * s.landscapeOpacity);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    }
    gl.disableVertexAttribArray(bg.loc.aCorner);
    if (!s.n) return;
    gl.useProgram(points.prog);
    attrib(points.loc.aPosA, buffers.aPosA, 2);
    attrib(points.loc.aPosB, buffers.aPosB, 2);
    attrib(points.loc.aLabel, buffers.aLabel, 1);
    attrib(points.loc.aPred, buffers.aPred, 1);
    attrib(points.loc.aHigh, buffers.aHigh, 1);
    gl.uniform1f(points.loc.uT, s.t);
    gl.uniform4fv(points.loc.uView, view);
    gl.uniform1f(points.loc.uSize, s.pointSize * s.dpr);
    gl.uniform1f(points.loc.uDimAlpha, s.dimAlpha);
    gl.uniform3fv(points.loc.uPalette, s.paletteFlat);
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LEQUAL);
    gl.drawArrays(gl.POINTS, 0, s.n);
    gl.disable(gl.DEPTH_TEST);
  }

  function destroy() {
    const ext = gl.getExtension('WEBGL_lose_context');
    if (ext) ext.loseContext();
  }

  return {kind: 'webgl', upload, render, destroy};
}

/** Canvas-2D back end with the same interface. */
function create2dRenderer(canvas) {
  const ctx = canvas.getContext('2d');
  const data = {};
  function upload(name, arr) {
    data[name] = arr;
  }
  function render(s, view) {
    const w = canvas.width;
    const h = canvas.height;
    const [vx, vy, sx, sy] = view;
    const toX = (x) => ((x - vx) * sx + 1) * 0.5 * w;
    const toY = (y) => (1 - (y - vy) * sy) * 0.5 * h;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 1;
    ctx.fillStyle = `rgb(${s.background.map((c) => Math.round(c * 255)).join(',')})`;
    ctx.fillRect(0, 0, w, h);
    ctx.imageSmoothingEnabled = false;
    for (const [layer, alpha] of [[s.landA, 1], [s.landB, s.fade]]) {
      if (!layer || !layer.image || alpha <= 0) continue;
      const b = layer.bounds;
      ctx.globalAlpha = alpha * s.landscapeOpacity;
      ctx.drawImage(layer.image, toX(b[0]), toY(b[3]), toX(b[2]) - toX(b[0]), toY(b[1]) - toY(b[3]));
    }
    if (!s.n) return;
    const a = data.aPosA;
    const b = data.aPosB;
    const lab = data.aLabel;
    const pred = data.aPred;
    const high = data.aHigh;
    const t = s.t;
    const size = s.pointSize * s.dpr;
    const colors = s.paletteCss;
    for (const pass of [0, 1]) {
      ctx.globalAlpha = pass ? 1 : s.dimAlpha;
      const sz = pass ? size : size * 0.8;
      // Correct points, batched by colour.
      for (let c = 0; c < colors.length; c++) {
        ctx.beginPath();
        for (let i = 0; i < s.n; i++) {
          if ((high[i] > 0.5 ? 1 : 0) !== pass || lab[i] !== c || lab[i] !== pred[i]) continue;
          const x = toX(a[2 * i] + (b[2 * i] - a[2 * i]) * t);
          const y = toY(a[2 * i + 1] + (b[2 * i + 1] - a[2 * i + 1]) * t);
          ctx.moveTo(x + sz / 2, y);
          ctx.arc(x, y, sz / 2, 0, 2 * Math.PI);
        }
        ctx.fillStyle = colors[c];
        ctx.fill();
      }
      // Misclassified: ring in label colour, dot in predicted colour.
      ctx.lineWidth = Math.max(1, sz * 0.3);
      for (let i = 0; i < s.n; i++) {
        if ((high[i] > 0.5 ? 1 : 0) !== pass || lab[i] === pred[i]) continue;
        const x = toX(a[2 * i] + (b[2 * i] - a[2 * i]) * t);
        const y = toY(a[2 * i + 1] + (b[2 * i + 1] - a[2 * i + 1]) * t);
        ctx.beginPath();
        ctx.arc(x, y, sz * 0.7, 0, 2 * Math.PI);
        ctx.strokeStyle = colors[lab[i] % colors.length];
        ctx.stroke();
        ctx.beginPath();
        ctx.arc(x, y, sz * 0.35, 0, 2 * Math.PI);
        ctx.fillStyle = colors[pred[i] % colors.length];
        ctx.fill();
      }
    }
    ctx.globalAlpha = 1;
  }
  return {kind: 'canvas2d', upload, render, destroy() {}};
}

/**
 * Creates the map on `canvas` (its parent must be positioned). Options:
 *   renderer: 'auto' | 'webgl' | 'canvas2d'; pointSize; dimAlpha; interactive (pan/zoom, default true);
 *   onClick(index, [x, y]); onHover(index, [x, y] | null, {clientX, clientY}); onViewChange(view).
 */
export function createScatter(canvas, options = {}) {
  const opts = {renderer: 'auto', pointSize: DEFAULT_POINT_SIZE, dimAlpha: DEFAULT_DIM_ALPHA, interactive: true, ...options};
  let backend = opts.renderer === 'canvas2d' ? null : createGlRenderer(canvas);
  if (!backend) {
    if (opts.renderer === 'webgl') throw new Error('WebGL unavailable');
    backend = create2dRenderer(canvas);
  }
  const overlay = document.createElement('canvas');
  overlay.className = 'dvi-overlay';
  canvas.insertAdjacentElement('afterend', overlay);
  const octx = overlay.getContext('2d');

  const state = {
    n: 0,
    t: 0,
    fade: 0,
    posA: new Float32Array(0),
    posB: new Float32Array(0),
    labels: new Float32Array(0),
    pred: new Float32Array(0),
    high: new Float32Array(0),
    highlightCount: 0,
    landA: null,
    landB: null,
    landscapeOpacity: 1,
    palette: [],
    paletteFlat: new Float32Array(MAX_PALETTE * 3),
    paletteCss: [],
    pointSize: opts.pointSize,
    dimAlpha: opts.dimAlpha,
    background: DEFAULT_BACKGROUND,
    dpr: window.devicePixelRatio || 1,
    selected: -1,
    trajectory: null,
    hover: null,
  };
  // View: centre (cx, cy) in data units and `scale` in CSS pixels per data unit; autoFit follows the bounds.
  const view = {cx: 0, cy: 0, scale: 1, autoFit: true, fitScale: 1};
  let frames = 0;
  let raf = 0;
  let destroyed = false;

  function currentBounds() {
    const a = state.landA && state.landA.bounds;
    const b = state.landB && state.landB.bounds;
    if (a && b) return a.map((v, i) => v + (b[i] - v) * state.fade);
    return a || b || null;
  }

  function fit() {
    const b = currentBounds();
    if (!b) return;
    const w = canvas.clientWidth || 1;
    const h = canvas.clientHeight || 1;
    view.fitScale = Math.min(w / (b[2] - b[0]), h / (b[3] - b[1])) * 0.97;
    if (!view.autoFit) return;
    view.cx = (b[0] + b[2]) / 2;
    view.cy = (b[1] + b[3]) / 2;
    view.scale = view.fitScale;
  }

  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
      overlay.width = w;
      overlay.height = h;
    }
    state.dpr = dpr;
  }

  function viewVector() {
    const w = canvas.clientWidth || 1;
    const h = canvas.clientHeight || 1;
    return new Float32Array([view.cx, view.cy, (2 * view.scale) / w, (2 * view.scale) / h]);
  }

  function toScreen(x, y) {
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    return [w / 2 + (x - view.cx) * view.scale, h / 2 - (y - view.cy) * view.scale];
  }

  function toData(px, py) {
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    return [view.cx + (px - w / 2) / view.scale, view.cy - (py - h / 2) / view.scale];
  }

  function drawOverlay() {
    const dpr = state.dpr;
    octx.setTransform(1, 0, 0, 1, 0, 0);
    octx.clearRect(0, 0, overlay.width, overlay.height);
    octx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const tr = state.trajectory;
    if (tr && tr.points.length) {
      const pts = tr.points.filter((p) => p && Number.isFinite(p[0]) && Number.isFinite(p[1])).map((p) => toScreen(p[0], p[1]));
      octx.lineJoin = 'round';
      octx.lineCap = 'round';
      octx.strokeStyle = 'rgba(255,255,255,0.85)';
      octx.lineWidth = 4;
      octx.beginPath();
      pts.forEach(([x, y], i) => (i ? octx.lineTo(x, y) : octx.moveTo(x, y)));
      octx.stroke();
      octx.strokeStyle = tr.color || '#212121';
      octx.lineWidth = 1.6;
      octx.stroke();
      for (const [x, y] of pts) {
        octx.beginPath();
        octx.arc(x, y, 2.2, 0, 2 * Math.PI);
        octx.fillStyle = tr.color || '#212121';
        octx.fill();
      }
    }
    if (state.selected >= 0 && state.selected < state.n) {
      const [x, y] = toScreen(...pointAt(state.selected));
      octx.beginPath();
      octx.arc(x, y, 9, 0, 2 * Math.PI);
      octx.strokeStyle = '#fff';
      octx.lineWidth = 4;
      octx.stroke();
      octx.strokeStyle = '#212121';
      octx.lineWidth = 2;
      octx.stroke();
    }
    if (state.hover && state.hover.index >= 0 && state.hover.index < state.n) {
      const [x, y] = toScreen(...pointAt(state.hover.index));
      octx.beginPath();
      octx.arc(x, y, 6, 0, 2 * Math.PI);
      octx.strokeStyle = 'rgba(33,33,33,0.8)';
      octx.lineWidth = 1.5;
      octx.stroke();
    }
  }

  function pointAt(i) {
    const a = state.posA;
    const b = state.posB;
    const t = state.t;
    return [a[2 * i] + (b[2 * i] - a[2 * i]) * t, a[2 * i + 1] + (b[2 * i + 1] - a[2 * i + 1]) * t];
  }

  function draw() {
    if (destroyed) return;
    cancelAnimationFrame(raf);
    raf = 0;
    resize();
    fit();
    backend.render(state, viewVector());
    drawOverlay();
    frames++;
  }

  function schedule() {
    if (!raf && !destroyed) raf = requestAnimationFrame(draw);
  }

  function toFloat(arr) {
    return arr instanceof Float32Array ? arr : Float32Array.from(arr);
  }

  /**
   * Updates any of: from / to (interleaved xy Float32Array), t, labels, pred, highlight (Uint8Array or null =
   * all highlighted), palette (hex strings), landscapes {a: {image, bounds}, b, fade}, selected (index),
   * trajectory ({points, color} | null), pointSize, landscapeOpacity. Schedules a redraw.
   */
  function set(props) {
    if (props.from) {
      state.posA = props.from;
      state.n = props.from.length / 2;
      backend.upload('aPosA', state.posA);
      if (!props.to) {
        state.posB = props.from;
        backend.upload('aPosB', state.posB);
      }
    }
    if (props.to) {
      state.posB = props.to;
      backend.upload('aPosB', state.posB);
    }
    if ('t' in props) state.t = props.t;
    if (props.labels) {
      state.labels = toFloat(props.labels);
      backend.upload('aLabel', state.labels);
    }
    if (props.pred) {
      state.pred = toFloat(props.pred);
      backend.upload('aPred', state.pred);
    }
    if ('highlight' in props || props.from) {
      const hl = 'highlight' in props ? props.highlight : null;
      const high = new Float32Array(state.n);
      let count = 0;
      if (hl) {
        for (let i = 0; i < state.n; i++) if (hl[i]) (high[i] = 1), count++;
      } else {
        high.fill(1);
        count = state.n;
      }
      state.high = high;
      state.highlightCount = count;
      backend.upload('aHigh', high);
    }
    if (props.palette) {
      state.palette = props.palette;
      state.paletteCss = props.palette.slice();
      const flat = new Float32Array(MAX_PALETTE * 3);
      props.palette.slice(0, MAX_PALETTE).forEach((c, i) => flat.set(hexToRgb(c), 3 * i));
      state.paletteFlat = flat;
    }
    if (props.landscapes) {
      state.landA = props.landscapes.a || null;
      state.landB = props.landscapes.b || null;
      state.fade = props.landscapes.fade || 0;
    }
    if ('selected' in props) state.selected = props.selected;
    if ('trajectory' in props) state.trajectory = props.trajectory;
    if ('pointSize' in props) state.pointSize = props.pointSize;
    if ('landscapeOpacity' in props) state.landscapeOpacity = props.landscapeOpacity;
    schedule();
  }

  /** Index of the drawn point nearest to CSS pixel (px, py) within `radius`, or -1. */
  function pick(px, py, radius = 8) {
    let best = -1;
    let bestD = radius * radius;
    const [dx0, dy0] = toData(px, py);
    const r = radius / view.scale;
    const a = state.posA;
    const b = state.posB;
    const t = state.t;
    for (let i = 0; i < state.n; i++) {
      const x = a[2 * i] + (b[2 * i] - a[2 * i]) * t;
      if (x < dx0 - r || x > dx0 + r) continue;
      const y = a[2 * i + 1] + (b[2 * i + 1] - a[2 * i + 1]) * t;
      if (y < dy0 - r || y > dy0 + r) continue;
      const d = ((x - dx0) ** 2 + (y - dy0) ** 2) * view.scale * view.scale;
      // Highlighted points win over dimmed ones at equal distance.
      const w = state.high[i] > 0.5 ? d : d + 4;
      if (w < bestD) {
        bestD = w;
        best = i;
      }
    }
    return best;
  }

  /** Current (interpolated) positions as interleaved xy. */
  function positions() {
    const out = new Float32Array(state.n * 2);
    const a = state.posA;
    const b = state.posB;
    const t = state.t;
    for (let i = 0; i < out.length; i++) out[i] = a[i] + (b[i] - a[i]) * t;
    return out;
  }

  // --- interaction: drag to pan, wheel to zoom at the cursor, double-click to reset ---
  let drag = null;
  const rel = (e) => {
    const r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  function onDown(e) {
    if (e.button !== 0) return;
    const [px, py] = rel(e);
    drag = {px, py, cx: view.cx, cy: view.cy, moved: false};
    overlay.setPointerCapture && overlay.setPointerCapture(e.pointerId);
  }
  function onMove(e) {
    const [px, py] = rel(e);
    if (drag) {
      const dx = px - drag.px;
      const dy = py - drag.py;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved && opts.interactive) {
        view.autoFit = false;
        view.cx = drag.cx - dx / view.scale;
        view.cy = drag.cy + dy / view.scale;
        overlay.style.cursor = 'grabbing';
        schedule();
        opts.onViewChange && opts.onViewChange(getView());
      }
      return;
    }
    const index = pick(px, py);
    const prev = state.hover ? state.hover.index : -1;
    state.hover = {index};
    if (index !== prev) schedule();
    overlay.style.cursor = index >= 0 ? 'pointer' : 'crosshair';
    opts.onHover && opts.onHover(index, toData(px, py), {clientX: e.clientX, clientY: e.clientY, px, py});
  }
  function onUp(e) {
    if (!drag) return;
    const moved = drag.moved;
    drag = null;
    overlay.style.cursor = 'crosshair';
    if (!moved) {
      const [px, py] = rel(e);
      opts.onClick && opts.onClick(pick(px, py), toData(px, py));
    }
  }
  function onLeave() {
    if (drag) return;
    state.hover = null;
    schedule();
    opts.onHover && opts.onHover(-1, null, null);
  }
  function onWheel(e) {
    if (!opts.interactive) return;
    e.preventDefault();
    const [px, py] = rel(e);
    const [x0, y0] = toData(px, py);
    const factor = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
    const s = Math.min(view.fitScale * MAX_SCALE_FACTOR, Math.max(view.fitScale * MIN_SCALE_FACTOR, view.scale * factor));
    view.autoFit = false;
    view.scale = s;
    // Keep the data point under the cursor fixed.
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    view.cx = x0 - (px - w / 2) / s;
    view.cy = y0 + (py - h / 2) / s;
    schedule();
    opts.onViewChange && opts.onViewChange(getView());
  }
  function onDbl() {
    resetView();
  }
  overlay.addEventListener('pointerdown', onDown);
  overlay.addEventListener('pointermove', onMove);
  overlay.addEventListener('pointerup', onUp);
  overlay.addEventListener('pointerleave', onLeave);
  overlay.addEventListener('wheel', onWheel, {passive: false});
  overlay.addEventListener('dblclick', onDbl);
  overlay.style.cursor = 'crosshair';
  const ro = typeof ResizeObserver !== 'undefined' ? new ResizeObserver(() => schedule()) : null;
  if (ro) ro.observe(canvas);

  function getView() {
    return {cx: view.cx, cy: view.cy, scale: view.scale, autoFit: view.autoFit};
  }
  function setView(v) {
    Object.assign(view, v);
    schedule();
  }
  function resetView() {
    view.autoFit = true;
    schedule();
    opts.onViewChange && opts.onViewChange(getView());
  }

  function destroy() {
    destroyed = true;
    cancelAnimationFrame(raf);
    if (ro) ro.disconnect();
    overlay.remove();
    backend.destroy();
  }

  return {
    draw,
    set,
    destroy,
    pick,
    positions,
    toScreen,
    toData,
    getView,
    setView,
    resetView,
    get renderer() {
      return backend.kind;
    },
    get frames() {
      return frames;
    },
    get count() {
      return state.n;
    },
    get highlighted() {
      return state.highlightCount;
    },
  };
}
