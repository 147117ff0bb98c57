// Alarms in the tab: the long-log overview strip drawn above the step slider (accuracy, separation, neighbour
// change and map displacement per step, one column per pixel, with a mark per alarm step that moves the time bar to
// that step when clicked; dragging across the strip zooms the slider into that range, a double-click shows every
// step again) and the alarm list of the side bar. Pure logic in state/timeline.js; data from the store's `timeline`.
import {h, fill, clear} from './dom.js';
import {KIND_COLORS, SERIES, overviewColumns, valueY, alarmMarks, dragRange, xIndex, indexX, alarmLine, kindName} from '../state/timeline.js';

const STRIP_HEIGHT = 34;

/** `onStep(step)`: a mark or a point of the strip was clicked; `onZoom([lo, hi] | null)`: a drag, or a reset. */
export function createOverview({onStep, onZoom}) {
  const canvas = h('canvas', {class: 'dvi-overview-canvas', testid: 'overview-canvas'});
  const marks = h('div', {class: 'dvi-overview-marks', testid: 'alarm-marks'});
  const brush = h('div', {class: 'dvi-overview-brush dvi-hidden'});
  const el = h('div', {class: 'dvi-overview dvi-hidden', testid: 'overview',
    title: 'Drag to zoom the time bar into a range; double-click for every step'}, canvas, brush, marks);
  let model = null; // {data, steps, current}
  let drag = null;
  let drawKey = null;
  const stats = {renders: 0, lastMs: 0, columns: 0, marks: 0};

  const width = () => Math.max(1, Math.round(el.clientWidth));
  const localX = (e) => e.clientX - el.getBoundingClientRect().left;

  el.addEventListener('pointerdown', (e) => {
    if (!model || e.button !== 0 || e.target.closest('[data-testid=alarm-mark]')) return;
    drag = {x0: localX(e), x1: localX(e)};
    el.setPointerCapture(e.pointerId);
  });
  el.addEventListener('pointermove', (e) => {
    if (!drag) return;
    drag.x1 = localX(e);
    const [a, b] = [Math.min(drag.x0, drag.x1), Math.max(drag.x0, drag.x1)];
    brush.classList.toggle('dvi-hidden', b - a < 4);
    Object.assign(brush.style, {left: `${a}px`, width: `${b - a}px`});
  });
  el.addEventListener('pointerup', (e) => {
    if (!drag) return;
    const {x0} = drag;
    drag = null;
    brush.classList.add('dvi-hidden');
    const range = dragRange(x0, localX(e), model.steps, width());
    if (range) return onZoom(range);
    onStep(model.steps[xIndex(localX(e), model.steps.length, width())]);
  });
  el.addEventListener('dblclick', () => onZoom(null));

  /** Draws the series and places the marks; returns the time it took (ms). */
  function render() {
    const t0 = performance.now();
    const w = width();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(STRIP_HEIGHT * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, STRIP_HEIGHT);
    const {data, steps} = model;
    let columns = 0;
    for (const s of data.series) {
      const cols = overviewColumns(data.steps, s.values, steps, w);
      columns += cols.length;
      const y = (v) => valueY(v, STRIP_HEIGHT - 6, s.unit, s.max) + 3;
      ctx.globalAlpha = 0.18; // the min-max band of each column: what a long log hides inside one pixel
      ctx.fillStyle = s.color;
      for (const c of cols) if (c.max > c.min) ctx.fillRect(c.x, y(c.max), 1, Math.max(1, y(c.min) - y(c.max)));
      ctx.globalAlpha = 1;
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.25;
      ctx.beginPath();
      cols.forEach((c, i) => (i ? ctx.lineTo(c.x + 0.5, y(c.mean)) : ctx.moveTo(c.x + 0.5, y(c.mean))));
      ctx.stroke();
    }
    const list = alarmMarks(data.alarms, steps, w);
    fill(marks, list.map((m) => h('button', {
      type: 'button', class: 'dvi-alarm-mark', testid: 'alarm-mark', dataset: {step: String(m.step), kinds: m.kinds.join(' ')},
      style: {left: `${m.x}px`, background: KIND_COLORS[m.kinds[0]] || '#424242'},
      title: `step ${m.step}: ${m.alarms.map((a) => `${kindName(a.kind)} – ${a.reason}`).join('\n')}`,
      'aria-label': `Alarm at step ${m.step}: ${m.kinds.map(kindName).join(', ')}`,
      onclick: (e) => {
        e.stopPropagation();
        onStep(m.step);
      },
    })));
    Object.assign(stats, {renders: stats.renders + 1, lastMs: performance.now() - t0, columns, marks: list.length});
    return stats.lastMs;
  }

  function placeCursor() {
    const {steps, current} = model;
    const i = current === null ? -1 : steps.indexOf(current);
    el.style.setProperty('--dvi-cursor', i < 0 ? '-10px' : `${indexX(i, steps.length, width())}px`);
  }

  /** `m`: {data (timeline.overviewData) | null, reserve (keep the place while loading), steps (the slider's), current (the requested step)}. */
  function update(m) {
    el.classList.toggle('dvi-hidden', !m.data && !m.reserve);
    el.classList.toggle('dvi-reserved', !m.data && !!m.reserve); // loading: its place kept, nothing shown
    if (!m.data) {
      model = null;
      drawKey = null;
      return;
    }
    model = m;
    const key = [m.data, m.steps.length, m.steps[0], m.steps[m.steps.length - 1], width()];
    if (!drawKey || key.some((v, i) => v !== drawKey[i])) {
      drawKey = key;
      render();
    }
    placeCursor();
  }

  const ro = new ResizeObserver(() => model && update(model));
  ro.observe(el);
  return {el, update, stats, render: () => (model ? render() : 0), destroy: () => ro.disconnect()};
}

/** The side bar's alarm list: one line per alarm, the current step's highlighted; a click moves to the step. */
export function createAlarmList({onStep}) {
  const summary = h('div', {class: 'dvi-small dvi-muted', testid: 'alarms-summary'});
  const links = h('div', {class: 'dvi-small dvi-alarm-links'});
  const list = h('ol', {class: 'dvi-alarm-list', testid: 'alarms-list'});
  const key0 = h('div', {class: 'dvi-overview-key dvi-small dvi-muted', testid: 'overview-key'}, 'Time bar: ',
    SERIES.map((s) => h('span', {class: 'dvi-key-item'}, h('span', {class: 'dvi-key-line', style: {background: s.color}}), s.label)),
    h('span', {class: 'dvi-key-item'}, h('span', {class: 'dvi-key-dot'}), 'alarm'));
  const el = h('div', {class: 'dvi-alarms'}, summary, list, key0, links);
  let key = null;

  /** `m`: {run, alarms, pending, error, current (the time bar's step)}. */
  function update(m) {
    const k = JSON.stringify([m.run, m.alarms.length, m.alarms.length && m.alarms[m.alarms.length - 1].step, m.pending, m.error, m.current]);
    if (k === key) return;
    key = k;
    const counts = {};
    for (const a of m.alarms) counts[a.kind] = (counts[a.kind] || 0) + 1;
    const more = m.pending ? ` (${m.pending} steps still being checked)` : '';
    summary.textContent = `${m.run}: ${m.error ? `no alarms (${m.error})` : m.alarms.length
      ? `${Object.entries(counts).map(([kind, n]) => `${n} ${kindName(kind)}`).join(', ')}${more}. Click one to go to its step.`
      : `no alarm so far${more}.`}`;
    const q = `run=${encodeURIComponent(m.run)}&format=csv`;
    fill(links, m.error ? null : [
      h('a', {href: `./alarms?${q}`, download: `${m.run}-alarms.csv`, testid: 'alarms-csv'}, 'alarms CSV'), ' · ',
      h('a', {href: `./stepstats?${q}`, download: `${m.run}-stepstats.csv`, testid: 'stepstats-csv'}, 'step statistics CSV')]);
    clear(list);
    for (const a of m.alarms) {
      list.append(h('li', {
        class: a.step === m.current ? 'dvi-alarm dvi-on' : 'dvi-alarm', testid: 'alarm-item', dataset: {step: String(a.step), kind: a.kind},
        style: {borderLeftColor: KIND_COLORS[a.kind] || '#424242'}, tabindex: '0', title: `${alarmLine(a)}\n(click to go to this step)`,
        onclick: () => onStep(a.step), onkeydown: (e) => (e.key === 'Enter' ? onStep(a.step) : null),
      }, alarmLine(a)));
    }
  }

  return {el, update};
}
