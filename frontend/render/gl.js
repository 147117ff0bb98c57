// WebGL back end of the map: buffers, landscape textures (a bounded cache) and the two programs.

import {POINT_VS, POINT_FS} from './shaders/points.js';
import {LANDSCAPE_VS, LANDSCAPE_FS} from './shaders/landscape.js';

const MAX_TEXTURES = 160;

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

/** The WebGL renderer {kind, upload, render, destroy}, or null when WebGL (or its shaders) is unavailable. */
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
  try {
    points = compile(gl, POINT_VS, POINT_FS);
    land = compile(gl, LANDSCAPE_VS, LANDSCAPE_FS);
  } catch (e) {
    console.warn('DVI: WebGL shaders failed, using canvas 2D', e);
    return null;
  }
  const names = ['aPosA', 'aPosB', 'aLabel', 'aPred', 'aHigh'];
  const buffers = Object.fromEntries(names.map((n) => [n, gl.createBuffer()]));
  const corners = gl.createBuffer();
  gl.bindBuffer(gl.ARRAY_BUFFER, corners);
  gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]), gl.STATIC_DRAW);
  const textures = new Map(); // image -> texture, least recently used first

  function upload(name, data) {
    gl.bindBuffer(gl.ARRAY_BUFFER, buffers[name]);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.DYNAMIC_DRAW);
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

  function drawLayers(s, view) {
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
    gl.useProgram(points.prog);
    for (const n of names) attrib(points.loc[n], buffers[n], n.startsWith('aPos') ? 2 : 1);
    gl.uniform1f(points.loc.uT, s.t);
    gl.uniform4fv(points.loc.uView, view);
    gl.uniform1f(points.loc.uSize, s.pointSize * s.dpr);
    gl.uniform1f(points.loc.uDimAlpha, s.dimAlpha);
    gl.uniform3fv(points.loc.uPalette, s.paletteFlat);
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LEQUAL);
    gl.drawArrays(gl.POINTS, 0, s.n);
    gl.disable(gl.DEPTH_TEST);
    for (const n of names) if (points.loc[n] >= 0) gl.disableVertexAttribArray(points.loc[n]);
  }

  function render(s, view) {
    gl.viewport(0, 0, canvas.width, canvas.height);
    const [r, g, b] = s.background;
    gl.clearColor(r, g, b, 1);
    gl.clearDepth(1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    drawLayers(s, view);
    if (s.n) drawPoints(s, view);
  }

  function destroy() {
    const ext = gl.getExtension('WEBGL_lose_context');
    if (ext) ext.loseContext();
  }

  return {kind: 'webgl', upload, render, destroy};
}
