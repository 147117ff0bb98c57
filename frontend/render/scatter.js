// The map: a scatter of samples over the classification landscape.
//
// `createScatter(canvas, options)` returns `{draw, set, destroy, ...}`. A back end (WebGL, or canvas 2D when WebGL
// is unavailable) draws landscape layers and points; positions are interpolated between two steps (`t`). The view
// is a camera (see state/camera.js) relative to the shown step's bounds, so several maps can share one camera.
// A 2-D overlay canvas carries the trajectory, the selection and the hover ring, and takes the pointer input.

import {createGlRenderer} from './gl.js';
import {create2dRenderer} from './canvas2d.js';
import {MAX_PALETTE} from './shaders/points.js';
import {drawTrajectory, drawRing, pickTrajectory} from './overlay.js';
import {DEFAULT_CAMERA, viewOf, zoomAt, panBy} from '../state/camera.js';
import {lodSubset, LOD_BUDGET} from './lod.js';

export const DEFAULT_POINT_SIZE = 5;
export const DEFAULT_DIM_ALPHA = 0.13;
export const DEFAULT_BACKGROUND = [1, 1, 1];
/** A click on empty map waits this long for a second click (a double-click resets the camera, not the selection). */
export const CLICK_DELAY_MS = 260;
/** After the last wheel event, the map counts as moving (drawn at its level of detail) this much longer. */
export const WHEEL_REST_MS = 160;

export function hexToRgb(hex) {
  const h = hex.replace('#', '');
  const v = h.length === 3 ? h.split('').map((c) => c + c).join('') : h;
  return [parseInt(v.slice(0, 2), 16) / 255, parseInt(v.slice(2, 4), 16) / 255, parseInt(v.slice(4, 6), 16) / 255];
}

const lerpBounds = (a, b, t) => (a && b ? a.map((v, i) => v + (b[i] - v) * t) : a || b || null);
const asLayers = (x) => (!x ? [] : Array.isArray(x) ? x.filter((l) => l && l.image) : x.image ? [x] : []);
const sameBounds = (a, b) => a === b || (!!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]));
/** Layer lists that draw the same: the same images over the same bounds, in the same order. */
const sameLayers = (a, b) => a.length === b.length && a.every((l, i) => l.image === b[i].image && sameBounds(l.bounds, b[i].bounds));

/**
 * Creates the map on `canvas` (its parent must be positioned). Options: renderer ('auto' | 'webgl' | 'canvas2d'),
 * pointSize, dimAlpha, and callbacks onClick(index) (index −1: empty map), onHover(index, [x, y] | null,
 * {px, py}, trajectoryDot | null), onCamera(camera) (the user panned, zoomed or double-clicked).
 */
export function createScatter(canvas, options = {}) {
  const opts = {renderer: 'auto', pointSize: DEFAULT_POINT_SIZE, dimAlpha: DEFAULT_DIM_ALPHA, ...options};
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
    n: 0, t: 0, fade: 0,
    posA: new Float32Array(0), posB: new Float32Array(0), high: new Float32Array(0), highlightCount: 0,
    landA: [], landB: [], landscapeOpacity: 1,
    boundsA: null, boundsB: null,
    camera: DEFAULT_CAMERA,
    paletteFlat: new Float32Array(MAX_PALETTE * 3), paletteCss: [],
    pointSize: opts.pointSize, dimAlpha: opts.dimAlpha, background: DEFAULT_BACKGROUND,
    dpr: window.devicePixelRatio || 1, overlayDpr: window.devicePixelRatio || 1, renderScale: 1,
    selected: -1, trajectory: null, hover: null,
    moving: false, lodDirty: true, lodBudget: opts.lodBudget ?? LOD_BUDGET,
  };
  let drawn = 0; // points drawn by the last frame (fewer than n while moving: the level-of-detail subsample)
  const interaction = {dragging: false, wheel: false, animating: false, wheelTimer: 0};
  let frames = 0;
  let raf = 0;
  let destroyed = false;

  const size = () => ({w: canvas.clientWidth || 1, h: canvas.clientHeight || 1});
  /** The bounds the camera is relative to (interpolated while animating between two steps). */
  const frameBounds = () => lerpBounds(state.boundsA, state.boundsB, state.t);

  function getView() {
    const b = frameBounds();
    const {w, h} = size();
    return b ? viewOf(state.camera, b, w, h) : {cx: 0, cy: 0, scale: 1};
  }

  function toScreen(x, y) {
    const v = getView();
    const {w, h} = size();
    return [w / 2 + (x - v.cx) * v.scale, h / 2 - (y - v.cy) * v.scale];
  }

  function toData(px, py) {
    const v = getView();
    const {w, h} = size();
    return [v.cx + (px - w / 2) / v.scale, v.cy - (py - h / 2) / v.scale];
  }

  /** Sizes the map canvas (times `renderScale`: lower while animating) and the overlay (always full) to the box. */
  function resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(canvas.clientWidth * dpr * state.renderScale));
    const h = Math.max(1, Math.round(canvas.clientHeight * dpr * state.renderScale));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ow = Math.max(1, Math.round(canvas.clientWidth * dpr));
    const oh = Math.max(1, Math.round(canvas.clientHeight * dpr));
    if (overlay.width !== ow || overlay.height !== oh) {
      overlay.width = ow;
      overlay.height = oh;
      overlayEmpty = false;
    }
    state.dpr = dpr * state.renderScale;
    state.overlayDpr = dpr;
  }

  function pointAt(i) {
    const {posA: a, posB: b, t} = state;
    return [a[2 * i] + (b[2 * i] - a[2 * i]) * t, a[2 * i + 1] + (b[2 * i + 1] - a[2 * i + 1]) * t];
  }

  let overlayEmpty = false;
  function drawOverlay() {
    const hovering = state.hover && state.hover.index >= 0 && state.hover.index < state.n;
    const empty = !(state.trajectory && state.trajectory.points.length) && !(state.selected >= 0 && state.selected < state.n) && !hovering;
    // Clearing an already empty overlay every frame costs a full-canvas pass in software rendering.
    if (empty && overlayEmpty) return;
    overlayEmpty = empty;
    octx.setTransform(1, 0, 0, 1, 0, 0);
    octx.clearRect(0, 0, overlay.width, overlay.height);
    octx.setTransform(state.overlayDpr, 0, 0, state.overlayDpr, 0, 0);
    if (state.trajectory && state.trajectory.points.length) drawTrajectory(octx, state.trajectory, toScreen);
    if (state.selected >= 0 && state.selected < state.n) drawRing(octx, toScreen(...pointAt(state.selected)), 9, '#212121', 2, true);
    if (hovering) {
      drawRing(octx, toScreen(...pointAt(state.hover.index)), 6, 'rgba(33,33,33,0.8)', 1.5, false);
    }
  }

  function draw() {
    if (destroyed) return;
    cancelAnimationFrame(raf);
    raf = 0;
    resize();
    const v = getView();
    const {w, h} = size();
    if (state.moving && state.lodDirty) {
      // The subsample of where the points are going (the step shown at rest), computed once per new positions.
      backend.upload('lod', lodSubset(state.posB, state.n, state.lodBudget));
      state.lodDirty = false;
    }
    drawn = backend.render(state, new Float32Array([v.cx, v.cy, (2 * v.scale) / w, (2 * v.scale) / h]));
    drawOverlay();
    frames++;
  }

  function schedule() {
    if (!raf && !destroyed) raf = requestAnimationFrame(draw);
  }

  function setPositions(props) {
    if (props.from || props.to) state.lodDirty = true;
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
    const toFloat = (arr) => (arr instanceof Float32Array ? arr : Float32Array.from(arr));
    if (props.labels) backend.upload('aLabel', toFloat(props.labels));
    if (props.pred) backend.upload('aPred', toFloat(props.pred));
    // New positions keep the highlight unless the number of points changed (then everything is highlighted).
    if ('highlight' in props || (props.from && state.high.length !== state.n)) {
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
  }

  /**
   * Updates any of: from / to (interleaved xy), t, labels, pred, highlight (Uint8Array, or null: all), palette
   * (hex strings), landscapes {a: layers, b: layers, fade} (a layer is {image, bounds}), bounds {a, b} (the
   * camera's frame at t = 0 and t = 1), camera, selected (index), trajectory, pointSize, landscapeOpacity,
   * renderScale (the map canvas's resolution relative to the screen's; below 1 while animating many points),
   * moving (an animation runs: draw the level-of-detail subsample of at most lodBudget points; dragging and wheeling
   * count as moving by themselves), lodBudget.
   */
  function set(props) {
    if (changes(props)) schedule();
    setPositions(props);
    if ('t' in props) state.t = props.t;
    if (props.palette) {
      state.paletteCss = props.palette.slice();
      const flat = new Float32Array(MAX_PALETTE * 3);
      props.palette.slice(0, MAX_PALETTE).forEach((c, i) => flat.set(hexToRgb(c), 3 * i));
      state.paletteFlat = flat;
    }
    if (props.landscapes) {
      state.landA = asLayers(props.landscapes.a);
      state.landB = asLayers(props.landscapes.b);
      state.fade = props.landscapes.fade || 0;
    }
    if (props.bounds) {
      state.boundsA = props.bounds.a || null;
      state.boundsB = props.bounds.b || null;
    }
    for (const k of ['camera', 'selected', 'trajectory', 'pointSize', 'landscapeOpacity', 'renderScale', 'lodBudget']) if (k in props) state[k] = props[k];
    if ('lodBudget' in props) state.lodDirty = true;
    if ('moving' in props) interaction.animating = !!props.moving;
    updateMoving();
  }

  /**
   * Whether `props` change what is drawn. A frame of 100,000 points costs 100-200 ms in software GL, so setting what
   * is already shown (the same landscape layers once the tiles are looked at, the same selection) draws nothing.
   */
  function changes(props) {
    if (props.from || props.to || props.labels || props.pred || 'highlight' in props || props.palette) return true;
    if (props.landscapes) {
      const {a, b, fade} = props.landscapes;
      if (!sameLayers(asLayers(a), state.landA) || !sameLayers(asLayers(b), state.landB) || (fade || 0) !== state.fade) return true;
    }
    if (props.bounds && !(sameBounds(props.bounds.a || null, state.boundsA) && sameBounds(props.bounds.b || null, state.boundsB))) return true;
    for (const k of ['t', 'camera', 'selected', 'trajectory', 'pointSize', 'landscapeOpacity', 'renderScale', 'lodBudget']) if (k in props && props[k] !== state[k]) return true;
    return false;
  }

  /** The map moves while it animates between steps, is dragged, or was wheeled within WHEEL_REST_MS. */
  function updateMoving() {
    const moving = interaction.animating || interaction.dragging || interaction.wheel;
    if (moving !== state.moving) {
      state.moving = moving;
      schedule(); // at rest again: everything is drawn
    }
  }

  /** Index of the drawn point nearest to CSS pixel (px, py) within `radius`, or -1. */
  function pick(px, py, radius = 8) {
    const v = getView();
    const [dx0, dy0] = toData(px, py);
    const r = radius / v.scale;
    let best = -1;
    let bestD = radius * radius;
    for (let i = 0; i < state.n; i++) {
      const [x, y] = pointAt(i);
      if (x < dx0 - r || x > dx0 + r || y < dy0 - r || y > dy0 + r) continue;
      const d = ((x - dx0) ** 2 + (y - dy0) ** 2) * v.scale * v.scale;
      const w = state.high[i] > 0.5 ? d : d + 4; // matches win over dimmed points at equal distance
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
    const {posA: a, posB: b, t} = state;
    for (let i = 0; i < out.length; i++) out[i] = a[i] + (b[i] - a[i]) * t;
    return out;
  }

  const detach = attachInput();

  // --- input: drag to pan, wheel to zoom at the cursor, click to select, double-click to reset the camera ---
  function attachInput() {
    let drag = null;
    let clickTimer = 0;
    const rel = (e) => {
      const r = canvas.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    const emitCamera = (camera) => opts.onCamera && opts.onCamera(camera);
    const on = {
      pointerdown(e) {
        if (e.button !== 0) return;
        const [px, py] = rel(e);
        drag = {px, py, camera: state.camera, moved: false};
        if (overlay.setPointerCapture) overlay.setPointerCapture(e.pointerId);
      },
      pointermove(e) {
        const [px, py] = rel(e);
        const b = frameBounds();
        if (drag) {
          if (Math.abs(px - drag.px) + Math.abs(py - drag.py) > 3) drag.moved = true;
          if (drag.moved && b) {
            interaction.dragging = true;
            updateMoving();
            const {w, h} = size();
            overlay.style.cursor = 'grabbing';
            emitCamera(panBy(drag.camera, b, w, h, px - drag.px, py - drag.py));
          }
          return;
        }
        const dot = pickTrajectory(state.trajectory, toScreen, px, py);
        const index = dot ? -1 : pick(px, py);
        const prev = state.hover ? state.hover.index : -1;
        state.hover = {index};
        if (index !== prev) schedule();
        overlay.style.cursor = index >= 0 || dot ? 'pointer' : 'crosshair';
        if (opts.onHover) opts.onHover(index, toData(px, py), {px, py}, dot);
      },
      pointerup(e) {
        if (!drag) return;
        const moved = drag.moved;
        drag = null;
        interaction.dragging = false;
        updateMoving();
        overlay.style.cursor = 'crosshair';
        if (moved || !opts.onClick) return;
        const index = pick(...rel(e));
        clearTimeout(clickTimer);
        // A click on a point selects at once; one on empty map clears the selection unless a double-click follows.
        if (index >= 0) opts.onClick(index);
        else clickTimer = setTimeout(() => opts.onClick(-1), CLICK_DELAY_MS);
      },
      pointerleave() {
        if (drag) return;
        state.hover = null;
        schedule();
        if (opts.onHover) opts.onHover(-1, null, null, null);
      },
      wheel(e) {
        e.preventDefault();
        const b = frameBounds();
        if (!b) return;
        const [px, py] = rel(e);
        const {w, h} = size();
        interaction.wheel = true;
        updateMoving();
        clearTimeout(interaction.wheelTimer);
        interaction.wheelTimer = setTimeout(() => {
          interaction.wheel = false;
          updateMoving();
        }, WHEEL_REST_MS);
        const factor = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
        emitCamera(zoomAt(state.camera, b, w, h, px, py, factor));
      },
      dblclick() {
        clearTimeout(clickTimer);
        emitCamera(DEFAULT_CAMERA);
      },
    };
    for (const [type, fn] of Object.entries(on)) overlay.addEventListener(type, fn, type === 'wheel' ? {passive: false} : undefined);
    overlay.style.cursor = 'crosshair';
    const ro = typeof ResizeObserver !== 'undefined' ? new ResizeObserver(() => {
      schedule();
      if (opts.onResize) opts.onResize();
    }) : null;
    if (ro) ro.observe(canvas);
    return () => {
      clearTimeout(clickTimer);
      clearTimeout(interaction.wheelTimer);
      if (ro) ro.disconnect();
    };
  }

  function destroy() {
    destroyed = true;
    cancelAnimationFrame(raf);
    detach();
    overlay.remove();
    backend.destroy();
  }

  return {
    draw, set, destroy, pick, positions, toScreen, toData, getView, size, frameBounds,
    get renderer() {
      return backend.kind;
    },
    get frames() {
      return frames;
    },
    get count() {
      return state.n;
    },
    /** Points drawn by the last frame: the level-of-detail subsample while moving, else every point. */
    get drawn() {
      return drawn;
    },
    get moving() {
      return state.moving;
    },
    get highlighted() {
      return state.highlightCount;
    },
    get camera() {
      return state.camera;
    },
  };
}
