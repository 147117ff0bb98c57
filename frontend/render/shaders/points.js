// Point shaders: positions interpolated between two steps on the GPU (uniform uT); correct samples are dots in
// their label colour, misclassified ones a ring in the label colour around a dot in the predicted colour;
// samples outside the query are dimmed and drawn behind the matches (depth).

export const MAX_PALETTE = 64;

export const POINT_VS = `
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
  gl_Position = vec4((p.x - uView.x) * uView.z, (p.y - uView.y) * uView.w, high > 0.5 ? -0.5 : 0.5, 1.0);
  vMis = aLabel != aPred ? 1.0 : 0.0;
  vLabel = pal(aLabel);
  vPred = pal(aPred);
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
