// One map's DOM: title bar (run, shown step, accuracy), the canvas, a labelled progress overlay while the wanted
// step is being projected (the shown map is dimmed under it), the hover readout and a message line.
import {h, fill, fmtPct, swatch} from './dom.js';

export function createMapPanel({run, compact}) {
  const canvas = h('canvas', {class: 'dvi-canvas', testid: 'map-canvas'});
  const title = h('div', {class: 'dvi-panel-title'});
  const veil = h('div', {class: 'dvi-veil dvi-hidden', testid: 'map-progress'});
  const tooltip = h('div', {class: 'dvi-tooltip dvi-hidden', testid: 'hover-readout'});
  const message = h('div', {class: 'dvi-map-message dvi-hidden', testid: 'map-message'});
  const stage = h('div', {class: 'dvi-stage'}, canvas, veil, tooltip, message);
  const el = h('div', {class: compact ? 'dvi-panel dvi-compact' : 'dvi-panel', testid: 'map-panel', dataset: {run}}, title, stage);
  let titleKey = null;

  /** Title from what the panel shows: {shown, accuracy, renderer, matched}. */
  function setTitle({shown, accuracy, renderer}) {
    const key = JSON.stringify([shown, accuracy, renderer]);
    if (key === titleKey) return;
    titleKey = key;
    fill(title,
      h('span', {class: 'dvi-panel-run', testid: 'panel-run'}, run),
      shown === null || shown === undefined ? null : h('span', {class: 'dvi-panel-step', testid: 'panel-step', dataset: {stepLabel: String(shown)}}, `step ${shown}`),
      h('span', {class: 'dvi-spacer'}),
      accuracy ? h('span', {class: 'dvi-panel-acc', testid: 'panel-acc', dataset: {step: String(shown)}}, `train ${fmtPct(accuracy.train)} · test ${fmtPct(accuracy.test)}`) : null,
      renderer === 'canvas2d' ? h('span', {class: 'dvi-badge', title: 'WebGL unavailable: canvas 2D renderer'}, '2D') : null);
  }

  let veilKey = null;
  /** The overlay while waiting: null to hide, else {want, shown, progress (0–1 or null), queued}. */
  function setProgress(p) {
    veil.classList.toggle('dvi-hidden', !p);
    stage.classList.toggle('dvi-waiting', !!p);
    const key = JSON.stringify(p);
    if (!p || key === veilKey) {
      veilKey = key;
      return;
    }
    veilKey = key;
    const pct = p.progress === null || p.progress === undefined ? null : Math.round(100 * p.progress);
    const what = p.queued ? `Step ${p.want} is queued for projection` : `Projecting step ${p.want}`;
    fill(veil, h('div', {class: 'dvi-veil-box'},
      h('div', {class: 'dvi-spinner'}),
      h('div', {class: 'dvi-veil-title', testid: 'map-progress-text', dataset: {pendingStep: String(p.want)}}, `${what}…`),
      h('div', {class: 'dvi-progress'}, h('div', {class: pct === null ? 'dvi-progress-bar dvi-indeterminate' : 'dvi-progress-bar', style: {width: pct === null ? '30%' : `${pct}%`}})),
      pct === null ? null : h('div', {class: 'dvi-small dvi-muted', testid: 'map-progress-value'}, `${pct}%`),
      p.eta ? h('div', {class: 'dvi-small dvi-muted', testid: 'map-progress-eta'}, `This run: ${p.eta}.`) : null,
      h('div', {class: 'dvi-small dvi-muted', testid: 'map-progress-shown'},
        p.shown === null || p.shown === undefined ? 'No projected step to show yet.' : `Showing step ${p.shown} meanwhile (dimmed).`)));
  }

  function setMessage(text) {
    message.classList.toggle('dvi-hidden', !text);
    if (message.textContent !== (text || '')) message.textContent = text || '';
  }

  /**
   * readout: null to hide, else {px, py, predicted: {cls, prob} | null, point: {id, label, pred, conf} | null,
   * dot: {id, step} | null (a trajectory dot), classes, colors}
   */
  function setReadout(r) {
    tooltip.classList.toggle('dvi-hidden', !r);
    if (!r) return;
    const rows = [];
    if (r.dot) rows.push(h('div', {class: 'dvi-tt-row dvi-tt-strong', testid: 'readout-trajectory-step'}, `#${r.dot.id} at step ${r.dot.step}`));
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
    if (!rows.length) return tooltip.classList.add('dvi-hidden');
    fill(tooltip, ...rows);
    const sw = stage.clientWidth;
    const left = r.px + 14 + 220 > sw ? r.px - 14 - tooltip.offsetWidth : r.px + 14;
    tooltip.style.left = `${Math.max(4, left)}px`;
    tooltip.style.top = `${Math.max(4, r.py + 14)}px`;
  }

  setTitle({shown: null});
  return {el, canvas, stage, setTitle, setProgress, setMessage, setReadout};
}
