// Time controls: play/pause, previous/next, the step slider with readiness ticks, the live toggle, and the step
// and accuracy of the map on screen (never of a step still loading; that one is named as loading). Above the slider,
// the long-log overview strip (views/alarms.js) with the alarm marks; when it is zoomed into a range, the slider
// covers only that range and a button shows every step again.
import {h, fill, clear, fmtPct} from './dom.js';
import {createOverview} from './alarms.js';
import {tickSegments} from '../state/timeline.js';

const PLAY = '\u25B6';
const PAUSE = '\u275A\u275A';

/** `onStep(step)`: the slider, the strip or a mark picked a step; `onZoom([lo, hi] | null)`. */
export function createTimebar({onStep, onPlay, onPrev, onNext, onLive, onZoom}) {
  const play = h('button', {class: 'dvi-btn dvi-icon-btn dvi-play', testid: 'play', type: 'button', title: 'Play / pause (space)', onclick: () => onPlay()}, PLAY);
  const prev = h('button', {class: 'dvi-btn dvi-icon-btn', testid: 'prev', type: 'button', title: 'Previous step (\u2190)', onclick: () => onPrev()}, '\u2039');
  const next = h('button', {class: 'dvi-btn dvi-icon-btn', testid: 'next', type: 'button', title: 'Next step (\u2192)', onclick: () => onNext()}, '\u203A');
  const slider = h('input', {type: 'range', class: 'dvi-slider', testid: 'step-slider', min: '0', max: '0', step: '1', value: '0', 'aria-label': 'Step'});
  let sliderSteps = [];
  slider.addEventListener('input', () => onStep(sliderSteps[Number(slider.value)]));
  const overview = createOverview({onStep, onZoom});
  const zoomNote = h('button', {class: 'dvi-btn dvi-zoom-out dvi-hidden', testid: 'zoom-out', type: 'button', onclick: () => onZoom(null)});
  const ticks = h('div', {class: 'dvi-ticks', testid: 'step-ticks'});
  const live = h('button', {class: 'dvi-btn dvi-live', testid: 'live', type: 'button', onclick: () => onLive()}, 'Live');
  const stepLabel = h('div', {class: 'dvi-step-label', testid: 'step-label'});
  const acc = h('div', {class: 'dvi-acc', testid: 'accuracy'});
  const el = h('div', {class: 'dvi-timebar', testid: 'timebar'},
    h('div', {class: 'dvi-transport'}, prev, play, next),
    h('div', {class: 'dvi-slider-wrap'}, overview.el, slider, ticks),
    zoomNote,
    live, stepLabel, acc);
  let key = null;

  /**
   * The time bar model from selectors.timebarModel; `overviewData` from timeline.overviewData (or null); `reserve`:
   * the strip's data is loading, so its place is kept (the map does not shrink under the user when it arrives).
   */
  function update(m, overviewData = null, reserve = false) {
    const {steps} = m;
    sliderSteps = steps;
    slider.max = String(Math.max(0, steps.length - 1));
    slider.value = String(m.sliderIndex);
    slider.disabled = steps.length < 2;
    slider.classList.toggle('dvi-outside', m.index < 0);
    overview.update({data: overviewData, reserve, steps, current: m.index < 0 ? null : steps[m.index]});
    zoomNote.classList.toggle('dvi-hidden', !m.zoomed);
    if (m.zoomed) {
      const text = `Steps ${steps[0]}–${steps[steps.length - 1]} · all ${m.total}`;
      if (zoomNote.textContent !== text) zoomNote.textContent = text;
      zoomNote.title = 'The time bar shows a range of the run: click to show every step (or double-click the strip)';
    }
    slider.setAttribute('aria-valuetext', m.label === null ? 'no step shown' : `showing step ${m.label}`);
    prev.disabled = m.first;
    next.disabled = m.last;
    play.textContent = m.playing ? PAUSE : PLAY;
    play.classList.toggle('dvi-on', m.playing);
    play.setAttribute('aria-pressed', String(m.playing));
    live.classList.toggle('dvi-on', m.follow);
    live.setAttribute('aria-pressed', String(m.follow));
    live.title = m.follow ? 'Live: follows the newest step as training logs it' : 'Follow the newest step as training logs it';
    const k = JSON.stringify([m.label, m.shownStep, m.loading, m.position, m.total, m.accuracy]);
    if (k !== key) {
      key = k;
      fill(stepLabel, h('span', {class: 'dvi-k'}, 'Step'),
        h('span', {class: 'dvi-v', testid: 'step-value', dataset: {stepLabel: m.shownStep === null || m.shownStep === undefined ? '' : String(m.shownStep)}}, m.label ?? '–'),
        m.loading !== null && m.loading !== m.shownStep ? h('span', {class: 'dvi-k dvi-loading', testid: 'step-loading'}, `loading ${m.loading}…`) : null,
        h('span', {class: 'dvi-k dvi-of'}, `${m.total ? m.position + 1 : 0} / ${m.total}`));
      if (m.accuracy) {
        fill(acc, h('span', {class: 'dvi-k'}, 'Train acc'), h('span', {class: 'dvi-v', testid: 'acc-train'}, fmtPct(m.accuracy.train)),
          h('span', {class: 'dvi-k'}, 'Test acc'), h('span', {class: 'dvi-v', testid: 'acc-test'}, fmtPct(m.accuracy.test)));
      } else {
        clear(acc);
      }
    }
    const segments = tickSegments(steps, m.ready);
    const tk = `${steps[0]}:${steps.length}:` + segments.map((t) => `${t.from}-${t.to}:${t.ready ? 1 : 0}`).join(',');
    if (ticks.dataset.key !== tk) {
      ticks.dataset.key = tk;
      clear(ticks);
      for (const t of segments) {
        const span = t.from === t.to ? `step ${t.from}` : `steps ${t.from}–${t.to}`;
        ticks.append(h('span', {
          class: `dvi-tick ${t.dot ? '' : 'dvi-tick-run'} ${t.ready ? 'dvi-ready' : 'dvi-pending'}`,
          style: t.dot ? {left: `${t.left}%`} : {left: `${t.left}%`, width: `max(4px, ${t.width}%)`},
          title: t.ready ? span : `${span}: not projected yet`,
        }));
      }
    }
  }

  return {el, update, slider, overview};
}
