// WebGL back end of the map: buffers, landscape textures (a bounded cache) and the two programs.

import {POINT_VS, POINT_FS} from './shaders/points.js';
import {LANDSCAPE_VS, LANDSCAPE_FS, CROSSFADE_VS, CROSSFADE_FS} from './shaders/landscape.js';

const MAX_TEXTURES = 64;

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
  for (let i = 0; i < gl.getProgramParameter(prog, gl.ACTIVE_ATTRIBUTES); i++) {
    const name = gl.getActiveAttrib(prog, i).name;
    loc[name] = gl.getAttribLocation(prog, name);
  }
  for (let i = 0; i < gl.getProgramParameter(prog, gl.ACTIVE_UNIFORMS); i++) {
    const name = gl.getActiveUniform(prog, i).name.replace(/\[0\]$/, '');
    loc[name] = gl.getUniformLocation(prog, name);
  }
  return {prog, loc};
}

/**
 * The WebGL renderer {kind, upload, render, destroy}, or null when WebGL (or its shaders) is unavailable. `render`
 * returns how many points it drew: the level-of-detail subsample (upload 'lod') while `s.moving`, else all.
 */
export function createGlRenderer(canvas) {
  let gl = null;
  try {
    // No preserved drawing buffer: it costs a full-frame copy per frame in software GL.
    const attrs = {antialias: false, depth: true, premultipliedAlpha: false, preserveDrawingBuffer: false, alpha: false};
    gl = canvas.getContext('webgl', attrs) || canvas.getContext('experimental-webgl', attrs);
  } catch (_) {
    gl = null;
  }
  if (!gl) return null;
  let points;
  let land;
  let fade;
  try {
    points = compile(gl, POINT_VS, POINT_FS);
    land = compile(gl, LANDSCAPE_VS, LANDSCAPE_FS);
    fade = compile(gl, CROSSFADE_VS, CROSSFADE_FS);
  } catch (e) {
    console.warn('DVI: WebGL shaders failed, using canvas 2D', e);
    return null;
  }
  const names = ['aPosA', 'aPosB', 'aLabelColor', 'aPredColor', 'aHigh', 'aMis'];
  const sizes = {aPosA: 2, aPosB: 2, aLabelColor: 3, aPredColor: 3, aHigh: 1, aMis: 1};
  const buffers = Object.fromEntries(names.map((n) => [n, gl.createBuffer()]));
  const classes = {label: null, pred: null, palette: null, dirty: false};
  const corners = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, corners);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]), gl.STATIC_DRAW);
  const textures = new Map(); // image -> texture, least recently used first
  // Level of detail: the indices of the points drawn while the map moves (32-bit indices need this extension).
  const uintIndex = gl.getExtension('OES_element_index_uint');
  const lodBuffer = gl.createBuffer();
  let lodCount = 0;

  function bufferData(name, data) {
    gl.bindBuffer(gl.ARRAY_BUFFER, buffers[name]);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
  }

  /** Positions and the highlight go straight to the GPU; labels and predictions become per-point colours. */
  function upload(name, data) {
    if (name === 'lod') {
      lodCount = data && uintIndex ? data.length : 0;
      if (!lodCount) return;
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, lodBuffer);
      gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
      return;
    }
    if (name === 'aLabel') classes.label = data;
    else if (name === 'aPred') classes.pred = data;
    else return bufferData(name, data);
    classes.dirty = true;
  }

  function uploadColors(palette) {
    const {label, pred} = classes;
    if (!label || !pred || label.length !== pred.length) return;
    const n = label.length;
    const k = palette.length / 3;
    const lc = new Float32Array(3 * n);
    const pc = new Float32Array(3 * n);
    const mis = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const a = ((label[i] % k) + k) % k;
      const b = ((pred[i] % k) + k) % k;
      lc[3 * i] = palette[3 * a];
      lc[3 * i + 1] = palette[3 * a + 1];
      lc[3 * i + 2] = palette[3 * a + 2];
      pc[3 * i] = palette[3 * b];
      pc[3 * i + 1] = palette[3 * b + 1];
      pc[3 * i + 2] = palette[3 * b + 2];
      mis[i] = label[i] !== pred[i] ? 1 : 0;
    }
    bufferData('aLabelColor', lc);
    bufferData('aPredColor', pc);
    bufferData('aMis', mis);
    classes.palette = palette;
    classes.dirty = false;
  }

  function texture(image) {
    let tex = textures.get(image);
    if (tex) {
      textures.delete(image);
      textures.set(image, tex);
      return tex;
    }
    tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGB, gl.RGB, gl.UNSIGNED_BYTE, image);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);
    textures.set(image, tex);
    while (textures.size > MAX_TEXTURES) {
      const [oldest, t] = textures.entries().next().value;
      gl.deleteTexture(t);
      textures.delete(oldest);
    }
    return tex;
  }

  function attrib(loc, buf, size) {
    if (loc === undefined || loc < 0) return;
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, size, gl.FLOAT, false, 0, 0);
  }

  /** Two single-image landscapes mid-fade (an animation between steps): one pass over their union. */
  function drawCrossfade(s, view) {
    const [a, b] = [s.landA[0], s.landB[0]];
    const union = [Math.min(a.bounds[0], b.bounds[0]), Math.min(a.bounds[1], b.bounds[1]), Math.max(a.bounds[2], b.bounds[2]), Math.max(a.bounds[3], b.bounds[3])];
    gl.useProgram(fade.prog);
    attrib(fade.loc.aCorner, corners, 2);
    gl.uniform4fv(fade.loc.uView, view);
    gl.uniform4fv(fade.loc.uUnion, union);
    gl.uniform4fv(fade.loc.uBoundsA, a.bounds);
    gl.uniform4fv(fade.loc.uBoundsB, b.bounds);
    gl.uniform1f(fade.loc.uFade, s.fade);
    gl.uniform3fv(fade.loc.uBackground, s.background);
    gl.activeTexture(gl.TEXTURE1);
    gl.bindTexture(gl.TEXTURE_2D, texture(b.image));
    gl.activeTexture(gl.TEXTURE0);
    gl.bindTexture(gl.TEXTURE_2D, texture(a.image));
    gl.uniform1i(fade.loc.uImageA, 0);
    gl.uniform1i(fade.loc.uImageB, 1);
    gl.disable(gl.BLEND);
    gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
    gl.enable(gl.BLEND);
    gl.disableVertexAttribArray(fade.loc.aCorner);
  }

  function drawLayers(s, view) {
    if (s.landA.length === 1 && s.landB.length === 1 && s.fade > 0 && s.fade < 1 && s.landscapeOpacity === 1) return drawCrossfade(s, view);
    gl.useProgram(land.prog);
    attrib(land.loc.aCorner, corners, 2);
    gl.uniform4fv(land.loc.uView, view);
    gl.activeTexture(gl.TEXTURE0);
    gl.uniform1i(land.loc.uImage, 0);
    for (const [layers, alpha] of [[s.landA, 1], [s.landB, s.fade]]) {
      if (alpha <= 0) continue;
      for (const layer of layers) {
        gl.bindTexture(gl.TEXTURE_2D, texture(layer.image));
        gl.uniform4fv(land.loc.uBounds, layer.bounds);
        gl.uniform1f(land.loc.uAlpha, alpha * s.landscapeOpacity);
        gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
      }
    }
    gl.disableVertexAttribArray(land.loc.aCorner);
  }

  function drawPoints(s, view) {
    if (classes.dirty || classes.palette !== s.paletteFlat) uploadColors(s.paletteFlat);
    gl.useProgram(points.prog);
    for (const n of names) attrib(points.loc[n], buffers[n], sizes[n]);
    gl.uniform1f(points.loc.uT, s.t);
    gl.uniform4fv(points.loc.uView, view);
    gl.uniform1f(points.loc.uSize, s.pointSize * s.dpr);
    gl.uniform1f(points.loc.uDimAlpha, s.dimAlpha);
    // Depth keeps matches in front of dimmed points; with everything highlighted it is not needed (and costs).
    const depth = s.highlightCount < s.n;
    if (depth) {
      gl.enable(gl.DEPTH_TEST);
      gl.depthFunc(gl.LEQUAL);
    }
    const lod = s.moving && lodCount > 0 && lodCount < s.n;
    if (lod) {
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, lodBuffer);
      gl.drawElements(gl.POINTS, lodCount, gl.UNSIGNED_INT, 0);
    } else {
      gl.drawArrays(gl.POINTS, 0, s.n);
    }
    if (depth) gl.disable(gl.DEPTH_TEST);
    for (const n of names) if (points.loc[n] >= 0) gl.disableVertexAttribArray(points.loc[n]);
    return lod ? lodCount : s.n;
  }

  function render(s, view) {
    gl.viewport(0, 0, canvas.width, canvas.height);
    const [r, g, b] = s.background;
    gl.clearColor(r, g, b, 1);
    gl.clearDepth(1);
    gl.clear(s.highlightCount < s.n ? gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT : gl.COLOR_BUFFER_BIT);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    drawLayers(s, view);
    return s.n ? drawPoints(s, view) : 0;
  }

  function destroy() {
    const ext = gl.getExtension('WEBGL_lose_context');
    if (ext) ext.loseContext();
  }

  return {kind: 'webgl', upload, render, destroy};
}
