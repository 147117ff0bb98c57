// Point shaders: positions interpolated between two steps on the GPU (uniform uT); correct samples are dots in
// their label colour, misclassified ones a ring in the label colour around a dot in the predicted colour;
// samples outside the query are dimmed and drawn behind the matches (depth). Colours come per point from the CPU
// (a palette lookup in the vertex shader is slow on software GL).

export const MAX_PALETTE = 64;

export const POINT_VS = `
precision highp float;
attribute vec2 aPosA;
attribute vec2 aPosB;
attribute vec3 aLabelColor;
attribute vec3 aPredColor;
attribute float aHigh;
attribute float aMis;
uniform float uT;
uniform vec4 uView;
uniform float uSize;
uniform float uDimAlpha;
varying vec3 vLabel;
varying vec3 vPred;
varying float vMis;
varying float vAlpha;
varying float vSize;
void main() {
  vec2 p = mix(aPosA, aPosB, uT);
  float high = aHigh > 0.5 ? 1.0 : 0.0;
  gl_Position = vec4((p.x - uView.x) * uView.z, (p.y - uView.y) * uView.w, high > 0.5 ? -0.5 : 0.5, 1.0);
  vMis = aMis;
  vLabel = aLabelColor;
  vPred = aPredColor;
  vAlpha = high > 0.5 ? 1.0 : uDimAlpha;
  gl_PointSize = (vMis > 0.5 ? uSize * 1.7 : uSize) * (high > 0.5 ? 1.0 : 0.8);
  vSize = gl_PointSize;
}`;

export const POINT_FS = `
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
