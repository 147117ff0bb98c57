// Landscape shaders: one textured quad per image (the overview, or a tile), placed at its data bounds.

export const LANDSCAPE_VS = `
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

export const LANDSCAPE_FS = `
precision mediump float;
uniform sampler2D uImage;
uniform float uAlpha;
varying vec2 vUv;
void main() { gl_FragColor = vec4(texture2D(uImage, vUv).rgb, uAlpha); }`;

// Cross-fade of two landscapes (two steps with their own bounds) in one pass over the union of their bounds:
// half the fragments of drawing one over the other. Outside an image's bounds its colour is the background.
export const CROSSFADE_VS = `
precision highp float;
attribute vec2 aCorner;
uniform vec4 uUnion;
uniform vec4 uView;
varying vec2 vPos;
void main() {
  vPos = mix(uUnion.xy, uUnion.zw, aCorner);
  gl_Position = vec4((vPos.x - uView.x) * uView.z, (vPos.y - uView.y) * uView.w, 0.0, 1.0);
}`;

export const CROSSFADE_FS = `
precision highp float;
uniform sampler2D uImageA;
uniform sampler2D uImageB;
uniform vec4 uBoundsA;
uniform vec4 uBoundsB;
uniform float uFade;
uniform vec3 uBackground;
varying vec2 vPos;
vec3 layer(sampler2D image, vec4 b) {
  vec2 uv = (vPos - b.xy) / (b.zw - b.xy);
  if (uv.x < 0.0 || uv.x > 1.0 || uv.y < 0.0 || uv.y > 1.0) return uBackground;
  return texture2D(image, vec2(uv.x, 1.0 - uv.y)).rgb;
}
void main() { gl_FragColor = vec4(mix(layer(uImageA, uBoundsA), layer(uImageB, uBoundsB), uFade), 1.0); }`;
