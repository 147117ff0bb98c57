// Time controls: play/pause, previous/next, the step slider with readiness ticks, step and accuracy readout.
import {h, fill, clear, fmtPct} from './dom.js';

const PLAY = '\u25B6';
const PAUSE = '\u275A\u275A';

export function createTimebar({onStep, onPlay, onPrev, onNext}) {
  const play = h('button', {class: 'dvi-btn dvi-icon-btn dvi-play', testid: 'play', type: 'button', title: 'Play / pause (space)', onclick: () => onPlay()}, PLAY);
  const prev = h('button', {class: 'dvi-btn dvi-icon-btn', testid: 'prev', type: 'button', title: 'Previous step (\u2190)', onclick: () => onPrev()}, '\u2039');
  const next = h('button', {class: 'dvi-btn dvi-icon-btn', testid: 'next', type: 'button', title: 'Next step (\u2192)', onclick: () => onNext()}, '\u203A');
  const slider = h('input', {type: 'range', class: 'dvi-slider', testid: 'step-slider', min: '0', max: '0', step: '1', value: '0', 'aria-label': 'Step'});
  slider.addEventListener('input', () => onStep(Number(slider.value)));
  const ticks = h('div', {class: 'dvi-ticks', testid: 'step-ticks'});
  const stepLabel = h('div', {class: 'dvi-step-label', testid: 'step-label'});
  const acc = h('div', {class: 'dvi-acc', testid: 'accuracy'});
  const el = h('div', {class: 'dvi-timebar', testid: 'timebar'},
    h('div', {class: 'dvi-transport'}, prev, play, next),
    h('div', {class: 'dvi-slider-wrap'}, slider, ticks),
    stepLabel, acc);

  function update({steps, index, ready, playing, accuracy, step}) {
    slider.max = String(Math.max(0, steps.length - 1));
    slider.value = String(index);
    slider.disabled = steps.length < 2;
    prev.disabled = index <= 0;
    next.disabled = index >= steps.length - 1;
    play.textContent = playing ? PAUSE : PLAY;
    play.classList.toggle('dvi-on', playing);
    play.setAttribute('aria-pressed', String(playing));
    fill(stepLabel, h('span', {class: 'dvi-k'}, 'Step'), h('span', {class: 'dvi-v', testid: 'step-value'}, step ?? '–'),
      h('span', {class: 'dvi-k dvi-of'}, `${steps.length ? index + 1 : 0} / ${steps.length}`));
    if (accuracy) {
      fill(acc, 
        h('span', {class: 'dvi-k'}, 'Train acc'), h('span', {class: 'dvi-v', testid: 'acc-train'}, fmtPct(accuracy.train)),
        h('span', {class: 'dvi-k'}, 'Test acc'), h('span', {class: 'dvi-v', testid: 'acc-test'}, fmtPct(accuracy.test)));
    } else {
      clear(acc);
    }
    const key = steps.map((s) => `${s}:${ready.has(s) ? 1 : 0}`).join(',');
    if (ticks.dataset.key !== key) {
      ticks.dataset.key = key;
      clear(ticks);
      steps.forEach((s, i) => {
        const left = steps.length > 1 ? (100 * i) / (steps.length - 1) : 0;
        ticks.append(h('span', {class: ready.has(s) ? 'dvi-tick dvi-ready' : 'dvi-tick dvi-pending', style: {left: `${left}%`}, title: ready.has(s) ? `step ${s}` : `step ${s}: not projected yet`}));
      });
    }
  }

  return {el, update, slider};
}
