// The tab's state in the URL: what a reload must restore (run, step, selection, compare, filters, camera, view).
// Pure: `encodeState` turns state into a dict of strings, `decodeState` a dict back into a state patch.

import {EMPTY_FILTER} from './mask.js';
import {DEFAULT_CAMERA, decodeCamera, encodeCamera, isDefaultCamera} from './camera.js';

/** The main views a URL may name. */
export const VIEWS = ['map', 'dynamics', 'layers'];

const int = (v) => (v !== undefined && v !== null && /^-?\d+$/.test(String(v)) ? Number(v) : null);

/** The keys written to the URL (`p.dvi.<key>`); empty values are left out. */
export function encodeState(state) {
  const f = state.filter;
  const cams = state.linked ? null : Object.entries(state.cameras).filter(([, c]) => !isDefaultCamera(c));
  return {
    run: state.run,
    step: state.step === null ? null : String(state.step),
    live: state.follow ? '1' : null,
    sel: state.selected === null ? null : String(state.selected),
    compare: state.compare ? state.compareRuns.join(',') : null,
    label: f.label === null ? null : String(f.label),
    pred: f.pred === null ? null : String(f.pred),
    split: f.split === 'all' ? null : f.split,
    mis: f.mis ? '1' : null,
    changed: f.changed ? '1' : null,
    flags: f.flags.length ? f.flags.join(',') : null,
    cam: isDefaultCamera(state.camera) ? null : encodeCamera(state.camera),
    unlink: state.linked ? null : '1',
    cams: cams && cams.length ? cams.map(([run, c]) => `${run}:${encodeCamera(c)}`).join(';') : null,
    view: state.view === 'map' ? null : state.view,
    zoom: state.zoom ? state.zoom.join(',') : null,
  };
}

/**
 * A state patch from saved keys, keeping only what fits the runs listed (`runs`: the `runs` route's list).
 * Unknown runs, steps and malformed values are dropped.
 */
export function decodeState(saved, runs) {
  const names = runs.map((r) => r.run);
  const patch = {};
  const compare = String(saved.compare || '').split(',').filter((n) => names.includes(n));
  if (compare.length >= 2) Object.assign(patch, {compare: true, compareRuns: compare});
  if (saved.run && names.includes(saved.run)) patch.run = saved.run;
  const step = int(saved.step);
  if (step !== null) {
    patch.step = step;
    patch.follow = saved.live === '1';
  }
  const sel = int(saved.sel);
  if (sel !== null && sel >= 0) patch.selected = sel;
  const filter = {...EMPTY_FILTER};
  if (int(saved.label) !== null) filter.label = int(saved.label);
  if (int(saved.pred) !== null) filter.pred = int(saved.pred);
  if (saved.split === 'train' || saved.split === 'test') filter.split = saved.split;
  filter.mis = saved.mis === '1';
  filter.changed = saved.changed === '1';
  filter.flags = saved.flags ? String(saved.flags).split(',').filter(Boolean) : [];
  patch.filter = filter;
  patch.camera = decodeCamera(saved.cam) || DEFAULT_CAMERA;
  patch.linked = saved.unlink !== '1';
  const cameras = {};
  for (const part of String(saved.cams || '').split(';')) {
    const i = part.lastIndexOf(':');
    const cam = i > 0 ? decodeCamera(part.slice(i + 1)) : null;
    if (cam && names.includes(part.slice(0, i))) cameras[part.slice(0, i)] = cam;
  }
  patch.cameras = cameras;
  patch.view = VIEWS.includes(saved.view) ? saved.view : 'map';
  const zoom = String(saved.zoom || '').split(',').map(int);
  patch.zoom = zoom.length === 2 && zoom[0] !== null && zoom[1] !== null && zoom[0] < zoom[1] ? zoom : null;
  return patch;
}
