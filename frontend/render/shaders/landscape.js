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
