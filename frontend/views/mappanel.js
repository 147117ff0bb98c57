// One map: title bar (run, step, accuracy), the scatter canvas, a progress veil for steps still being projected,
// the hover readout and an empty-state message.
import {h, fill, fmtPct, swatch} from './dom.js';

export function createMapPanel({run, compact}) {
  const canvas = h('canvas', {class: 'dvi-canvas', testid: 'map-canvas'});
  const title = h('div', {class: 'dvi-panel-title'});
  const veil = h('div', {class: 'dvi-veil dvi-hidden', testid: 'map-progress'});
  const tooltip = h('div', {class: 'dvi-tooltip dvi-hidden', testid: 'hover-readout'});
  const message = h('div', {class: 'dvi-map-message dvi-hidden'});
  const stage = h('div', {class: 'dvi-stage'}, canvas, veil, tooltip, message);
  const el = h('div', {class: compact ? 'dvi-panel dvi-compact' : 'dvi-panel', testid: 'map-panel', dataset: {run}}, title, stage);

  function setTitle({step, accuracy, renderer}) {
    fill(title, 
      h('span', {class: 'dvi-panel-run'}, run),
      h('span', {class: 'dvi-panel-step', testid: 'panel-step'}, step === null || step === undefined ? '' : `step ${step}`),
      h('span', {class: 'dvi-spacer'}),
      accuracy ? h('span', {class: 'dvi-panel-acc'}, `train ${fmtPct(accuracy.train)} · test ${fmtPct(accuracy.test)}`) : null,
      renderer === 'canvas2d' ? h('span', {class: 'dvi-badge', title: 'WebGL unavailable: canvas 2D renderer'}, '2D') : null);
  }

  /** progress: null to hide, else {step, progress (0–1 or null), text} */
  function setProgress(p) {
    veil.classList.toggle('dvi-hidden', !p);
    if (!p) return;
    const pct = p.progress === null || p.progress === undefined ? null : Math.round(100 * p.progress);
    fill(veil, h('div', {class: 'dvi-veil-box'},
      h('div', {class: 'dvi-spinner'}),
      h('div', {}, p.text || `Projecting step ${p.step}…`),
      h('div', {class: 'dvi-progress'}, h('div', {class: pct === null ? 'dvi-progress-bar dvi-indeterminate' : 'dvi-progress-bar', style: {width: pct === null ? '30%' : `${pct}%`}})),
      pct === null ? null : h('div', {class: 'dvi-small dvi-muted', testid: 'map-progress-value'}, `${pct}%`)));
  }

  function setMessage(text) {
    message.classList.toggle('dvi-hidden', !text);
    message.textContent = text || '';
  }

  /** readout: null to hide, else {px, py, predicted: {cls, prob} | null, point: {id, label, pred, conf} | null, classes, colors} */
  function setReadout(r) {
    tooltip.classList.toggle('dvi-hidden', !r);
    if (!r) return;
    const rows = [];
    if (r.point) {
      const p = r.point;
      rows.push(h('div', {class: 'dvi-tt-row dvi-tt-strong'}, `#${p.id}`, h('span', {class: 'dvi-tt-sep'}), swatch(r.colors[p.label % r.colors.length]), ` ${r.classes[p.label] ?? p.label}`,
        p.pred !== p.label ? [' → ', swatch(r.colors[p.pred % r.colors.length]), ` ${r.classes[p.pred] ?? p.pred}`] : null,
        h('span', {class: 'dvi-muted'}, ` ${fmtPct(p.conf, 0)}`)));
    }
    if (r.predicted) {
      rows.push(h('div', {class: 'dvi-tt-row'}, h('span', {class: 'dvi-muted'}, 'Model here: '), swatch(r.colors[r.predicted.cls % r.colors.length]),
        ` ${r.classes[r.predicted.cls] ?? r.predicted.cls} `, h('span', {class: 'dvi-muted'}, fmtPct(r.predicted.prob, 0))));
    } else if (r.pendingPredict) {
      rows.push(h('div', {class: 'dvi-tt-row dvi-muted'}, 'Model here: …'));
    }
    if (!rows.length) {
      tooltip.classList.add('dvi-hidden');
      return;
    }
    fill(tooltip, ...rows);
    const sw = stage.clientWidth;
    const left = r.px + 14 + 220 > sw ? r.px - 14 - tooltip.offsetWidth : r.px + 14;
    tooltip.style.left = `${Math.max(4, left)}px`;
    tooltip.style.top = `${Math.max(4, r.py + 14)}px`;
  }

  setTitle({});
  return {el, canvas, stage, setTitle, setProgress, setMessage, setReadout};
}
