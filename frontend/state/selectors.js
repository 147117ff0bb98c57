// Pure selectors: everything the chrome shows, computed from the store's state alone.

import {EMPTY_PANEL} from './store.js';
import {zoomedSteps} from './timeline.js';

export const DEFAULT_COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export const runInfo = (state, name) => state.runs.find((r) => r.run === name) || null;

/** "1 step", "2 steps". */
export function plural(n, word, many = `${word}s`) {
  return `${Number(n).toLocaleString('en-US')} ${n === 1 ? word : many}`;
}

export function classesOf(info) {
  const n = info ? info.n_classes || (info.classes || []).length : 0;
  return info && info.classes && info.classes.length ? info.classes : Array.from({length: n}, (_, i) => String(i));
}

export function colorsOf(info) {
  return info && info.colors && info.colors.length ? info.colors : DEFAULT_COLORS;
}

/** The steps of `info` that are projected. */
export function readySet(info) {
  if (!info) return new Set();
  return new Set(info.status && Array.isArray(info.status.ready) ? info.status.ready : info.steps);
}

/** The runs on screen, in panel order. */
export function visibleRuns(state) {
  if (state.compare) return state.compareRuns.filter((n) => runInfo(state, n));
  return state.run && runInfo(state, state.run) ? [state.run] : [];
}

/** The union of the visible runs' steps, ascending (the slider's positions). */
export function allSteps(state) {
  const set = new Set();
  for (const name of visibleRuns(state)) for (const s of runInfo(state, name).steps) set.add(s);
  return [...set].sort((a, b) => a - b);
}

/** Steps that every visible run having them has projected. */
export function readyAll(state) {
  const runs = visibleRuns(state).map((n) => runInfo(state, n));
  return new Set(allSteps(state).filter((s) => runs.every((r) => !r.steps.includes(s) || readySet(r).has(s))));
}

/** The run's own step for the shared step: the largest step ≤ `step`, else the run's first step. */
export function stepForRun(info, step) {
  const steps = info ? info.steps : [];
  let best = steps.length ? steps[0] : null;
  for (const s of steps) if (s <= step) best = s;
  return best;
}

export function previousStep(info, step) {
  const steps = info ? info.steps : [];
  const i = steps.indexOf(step);
  return i > 0 ? steps[i - 1] : null;
}

/** The newest projected step of a run before `step` (what a pending step falls back to), or null. */
export function fallbackStep(info, step) {
  const ready = readySet(info);
  const before = (info ? info.steps : []).filter((s) => s < step && ready.has(s));
  return before.length ? before[before.length - 1] : null;
}

/** The step to open a run at: its newest step (live mode) — pending steps show a fallback map meanwhile. */
export function newestStep(state) {
  const steps = allSteps(state);
  return steps.length ? steps[steps.length - 1] : null;
}

export function panelState(state, run) {
  return state.panels[run] || EMPTY_PANEL;
}

/**
 * One panel's labels: the step it shows (title, accuracy) and the step it waits for (overlay).
 * {run, want, shown, pending, waiting, eta}: `waiting` is true while the wanted step is not the shown one; `eta`
 * the run's estimated time left while it is projected ("about 3 min left") or null.
 */
export function panelModel(state, run) {
  const p = panelState(state, run);
  const want = state.step === null ? null : stepForRun(runInfo(state, run), state.step);
  return {run, want, shown: p.shown, pending: p.pending, progress: p.progress, queued: p.queued, accuracy: p.accuracy,
    error: p.error, matched: p.matched, total: p.total, note: p.note, waiting: want !== null && p.shown !== want,
    eta: etaText(runInfo(state, run))};
}

/** The primary panel (the first visible run), whose facts the time bar reads. */
export function primaryRun(state) {
  return visibleRuns(state)[0] || null;
}

/**
 * The time bar: slider positions (every step, or the zoomed range of a long log) and the requested position, and
 * the step label taken from what the panels show (never the requested step while it is still loading). In compare
 * mode the label is the shown step when all panels agree, else each run's step. `index` is -1 while the requested
 * step lies outside the zoomed range; `first`/`last` say whether it is the run's first / last step.
 */
export function timebarModel(state) {
  const all = allSteps(state);
  const steps = zoomedSteps(all, state.zoom);
  const index = state.step === null ? 0 : steps.indexOf(state.step);
  // Outside the zoomed range the slider's thumb waits at the end nearest to the requested step.
  const sliderIndex = index >= 0 ? index : steps.length && state.step > steps[steps.length - 1] ? steps.length - 1 : 0;
  const at = state.step === null ? 0 : all.indexOf(state.step);
  const models = visibleRuns(state).map((r) => panelModel(state, r));
  const shown = models.map((m) => m.shown);
  const same = shown.length > 0 && shown.every((s) => s === shown[0]);
  const label = !shown.length || shown[0] === null ? null : same ? String(shown[0]) : models.map((m) => `${m.run} ${m.shown ?? '–'}`).join(' · ');
  const waiting = models.filter((m) => m.waiting && m.want !== null).map((m) => m.want);
  return {
    steps, index, sliderIndex, label, shownStep: same ? shown[0] : null, ready: readyAll(state), playing: state.playing,
    follow: state.follow, accuracy: !state.compare && models[0] ? models[0].accuracy : null,
    loading: waiting.length ? Math.max(...waiting) : null, total: all.length, position: at,
    first: at <= 0, last: at < 0 || at >= all.length - 1, zoomed: steps.length < all.length,
  };
}

/** "40 s", "3 min", "1 h 20 min": a rough duration for an estimate of the time left; null when unknown. */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return null;
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  const min = Math.round(seconds / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ''}`;
}

/** "about 3 min left" for a run being projected (its `status.eta_s`), else null. */
export function etaText(info) {
  const s = info && info.status;
  if (!s || (s.state !== 'running' && s.state !== 'queued')) return null;
  const d = fmtDuration(s.eta_s);
  return d ? `about ${d} left` : null;
}

/** The compare chips: the runs on screen first, in panel order, then the others. */
export function compareChips(state) {
  const on = visibleRuns(state);
  const off = state.runs.map((r) => r.run).filter((n) => !on.includes(n));
  return [...on.map((run) => ({run, on: true})), ...off.map((run) => ({run, on: false}))];
}

/** The header status line {text, kind} for the primary run (with its estimated time left while projected). */
export function statusLine(state) {
  if (state.error) return {text: `Offline: ${state.error}`, kind: 'error'};
  const run = primaryRun(state);
  const info = run ? runInfo(state, run) : null;
  if (!info) return {text: state.loaded ? '' : 'Loading…', kind: state.loaded ? '' : 'busy'};
  const s = info.status || {};
  const ready = (s.ready || []).length;
  if (s.state === 'error') return {text: `Projection error: ${s.error || 'unknown'}`, kind: 'error'};
  if (s.state === 'running' || s.state === 'queued') {
    const pct = s.progress === null || s.progress === undefined ? '' : ` · ${Math.round(100 * s.progress)}%`;
    const at = s.running !== null && s.running !== undefined ? ` step ${s.running}` : '';
    const eta = etaText(info);
    return {text: `Projecting${at}${pct} · ${ready} of ${plural(info.steps.length, 'step')} ready${eta ? ` · ${eta}` : ''}`, kind: 'busy'};
  }
  if (s.state === 'not projected') return {text: `${plural(info.steps.length, 'step')}, not projected yet`, kind: 'busy'};
  return {text: `${plural(info.steps.length, 'step')} · ${plural(info.n || 0, 'sample')} · live`, kind: 'live'};
}

/** The message replacing the maps when there is nothing to show, else null. */
export function emptyMessage(state) {
  if (state.error && !state.runs.length) return `Could not reach the DVI plugin: ${state.error}`;
  if (state.loaded && !state.runs.length) {
    return 'No DVI data in this logdir yet. Log snapshots with dvi.summary.snapshot(writer, step, features=…, labels=…, head=…); runs appear here while training runs.';
  }
  return null;
}

/** Whether every visible panel shows the step it should and nothing is loading. */
export function allShown(state) {
  const runs = visibleRuns(state);
  return runs.length > 0 && runs.every((r) => !panelModel(state, r).waiting);
}
