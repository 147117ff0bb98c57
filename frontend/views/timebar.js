// Time controls: play/pause, previous/next, the step slider with readiness ticks, the live toggle, and the step
// and accuracy of the map on screen (never of a step still loading; that one is named as loading).
import {h, fill, clear, fmtPct} from './dom.js';

const PLAY = '\u25B6';
const PAUSE = '\u275A\u275A';

export function createTimebar({onStep, onPlay, onPrev, onNext, onLive}) {
  const play = h('button', {class: 'dvi-btn dvi-icon-btn dvi-play', testid: 'play', type: 'button', title: 'Play / pause (space)', onclick: () => onPlay()}, PLAY);
  const prev = h('button', {class: 'dvi-btn dvi-icon-btn', testid: 'prev', type: 'button', title: 'Previous step (\u2190)', onclick: () => onPrev()}, '\u2039');
  const next = h('button', {class: 'dvi-btn dvi-icon-btn', testid: 'next', type: 'button', title: 'Next step (\u2192)', onclick: () => onNext()}, '\u203A');
  const slider = h('input', {type: 'range', class: 'dvi-slider', testid: 'step-slider', min: '0', max: '0', step: '1', value: '0', 'aria-label': 'Step'});
  slider.addEventListener('input', () => onStep(Number(slider.value)));
  const ticks = h('div', {class: 'dvi-ticks', testid: 'step-ticks'});
  const live = h('button', {class: 'dvi-btn dvi-live', testid: 'live', type: 'button', onclick: () => onLive()}, 'Live');
  const stepLabel = h('div', {class: 'dvi-step-label', testid: 'step-label'});
  const acc = h('div', {class: 'dvi-acc', testid: 'accuracy'});
  const el = h('div', {class: 'dvi-timebar', testid: 'timebar'},
    h('div', {class: 'dvi-transport'}, prev, play, next),
    h('div', {class: 'dvi-slider-wrap'}, slider, ticks),
    live, stepLabel, acc);
  let key = null;

  /** The time bar model from selectors.timebarModel. */
  function update(m) {
    const {steps, index} = m;
    slider.max = String(Math.max(0, steps.length - 1));
    slider.value = String(index);
    slider.disabled = steps.length < 2;
    slider.setAttribute('aria-valuetext', m.label === null ? 'no step shown' : `showing step ${m.label}`);
    prev.disabled = index <= 0;
    next.disabled = index >= steps.length - 1;
    play.textContent = m.playing ? PAUSE : PLAY;
    play.classList.toggle('dvi-on', m.playing);
    play.setAttribute('aria-pressed', String(m.playing));
    live.classList.toggle('dvi-on', m.follow);
    live.setAttribute('aria-pressed', String(m.follow));
    live.title = m.follow ? 'Live: follows the newest step as training logs it' : 'Follow the newest step as training logs it';
    const k = JSON.stringify([m.label, m.shownStep, m.loading, index, steps.length, m.accuracy]);
    if (k !== key) {
      key = k;
      fill(stepLabel, h('span', {class: 'dvi-k'}, 'Step'),
        h('span', {class: 'dvi-v', testid: 'step-value', dataset: {stepLabel: m.shownStep === null || m.shownStep === undefined ? '' : String(m.shownStep)}}, m.label ?? '–'),
        m.loading !== null && m.loading !== m.shownStep ? h('span', {class: 'dvi-k dvi-loading', testid: 'step-loading'}, `loading ${m.loading}…`) : null,
        h('span', {class: 'dvi-k dvi-of'}, `${steps.length ? index + 1 : 0} / ${steps.length}`));
      if (m.accuracy) {
        fill(acc, h('span', {class: 'dvi-k'}, 'Train acc'), h('span', {class: 'dvi-v', testid: 'acc-train'}, fmtPct(m.accuracy.train)),
          h('span', {class: 'dvi-k'}, 'Test acc'), h('span', {class: 'dvi-v', testid: 'acc-test'}, fmtPct(m.accuracy.test)));
      } else {
        clear(acc);
      }
    }
    const tk = steps.map((s) => `${s}:${m.ready.has(s) ? 1 : 0}`).join(',');
    if (ticks.dataset.key !== tk) {
      ticks.dataset.key = tk;
      clear(ticks);
      steps.forEach((s, i) => {
        const left = steps.length > 1 ? (100 * i) / (steps.length - 1) : 0;
        const ok = m.ready.has(s);
        ticks.append(h('span', {class: ok ? 'dvi-tick dvi-ready' : 'dvi-tick dvi-pending', style: {left: `${left}%`}, title: ok ? `step ${s}` : `step ${s}: not projected yet`}));
      });
    }
  }

  return {el, update, slider};
}
