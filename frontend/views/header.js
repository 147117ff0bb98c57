// Top bar: run picker, compare toggle with its run chips (in panel order), the camera link toggle, the status
// line, and (narrow windows) the button that opens the side bar.
import {h, clear} from './dom.js';

export function createHeader({onRun, onCompareToggle, onCompareRuns, onLinkToggle, onSideToggle, onView}) {
  const runSelect = h('select', {class: 'dvi-select', testid: 'run-select', 'aria-label': 'Run', onchange: () => onRun(runSelect.value)});
  const compareBtn = h('button', {class: 'dvi-btn dvi-toggle', testid: 'compare-toggle', type: 'button', title: 'Show several runs side by side', onclick: () => onCompareToggle()}, 'Compare runs');
  const chips = h('div', {class: 'dvi-compare-chips', testid: 'compare-runs'});
  const linkBtn = h('button', {class: 'dvi-btn dvi-toggle', testid: 'camera-link', type: 'button', onclick: () => onLinkToggle()}, 'Linked views');
  const sideBtn = h('button', {class: 'dvi-btn dvi-side-toggle', testid: 'side-toggle', type: 'button', onclick: () => onSideToggle()}, 'Panels');
  const status = h('div', {class: 'dvi-status', testid: 'status'});
  const views = [['map', 'Map'], ['dynamics', 'Training dynamics'], ['layers', 'Layers']].map(([v, label]) =>
    h('button', {type: 'button', class: 'dvi-seg-btn', dataset: {view: v}, testid: `view-${v}`, onclick: () => onView(v)}, label));
  const viewSwitch = h('div', {class: 'dvi-seg dvi-view-switch', role: 'group', 'aria-label': 'Main view'}, views);
  const el = h('header', {class: 'dvi-header'},
    h('div', {class: 'dvi-brand'}, h('span', {class: 'dvi-logo'}, 'DVI'), h('span', {class: 'dvi-subtitle'}, 'training dynamics')),
    viewSwitch,
    h('label', {class: 'dvi-field dvi-run-field'}, h('span', {class: 'dvi-field-label'}, 'Run'), runSelect),
    compareBtn, chips, linkBtn, h('div', {class: 'dvi-spacer'}), status, sideBtn);
  let chipKey = null;

  /** {runs, run, compare, chips: [{run, on}] (panel order first), linked, sideOpen, view} */
  function update(m) {
    for (const b of views) {
      b.classList.toggle('dvi-on', b.dataset.view === m.view);
      b.setAttribute('aria-pressed', String(b.dataset.view === m.view));
    }
    const names = m.runs.map((r) => r.run);
    if ([...runSelect.options].map((o) => o.value).join('\n') !== names.join('\n')) {
      clear(runSelect);
      for (const name of names) runSelect.append(h('option', {value: name}, name));
    }
    runSelect.value = m.run || '';
    runSelect.disabled = m.compare || !names.length;
    runSelect.closest('label').classList.toggle('dvi-hidden', m.compare);
    compareBtn.classList.toggle('dvi-on', m.compare);
    compareBtn.disabled = names.length < 2;
    compareBtn.setAttribute('aria-pressed', String(m.compare));
    linkBtn.classList.toggle('dvi-hidden', !m.compare);
    linkBtn.classList.toggle('dvi-on', m.linked);
    linkBtn.setAttribute('aria-pressed', String(m.linked));
    linkBtn.textContent = m.linked ? 'Linked views' : 'Unlinked views';
    linkBtn.title = m.linked ? 'Pan and zoom move every map together (click to unlink)' : 'Each map has its own pan and zoom (click to link)';
    sideBtn.setAttribute('aria-expanded', String(m.sideOpen));
    sideBtn.classList.toggle('dvi-on', m.sideOpen);
    chips.classList.toggle('dvi-hidden', !m.compare);
    const key = JSON.stringify([m.compare, m.chips]);
    if (key === chipKey) return;
    chipKey = key;
    clear(chips);
    if (!m.compare) return;
    const onRuns = m.chips.filter((c) => c.on).map((c) => c.run);
    for (const c of m.chips) {
      chips.append(h('button', {
        type: 'button', class: c.on ? 'dvi-chip dvi-on' : 'dvi-chip', dataset: {run: c.run}, testid: `compare-run-${c.run}`,
        'aria-pressed': String(c.on), title: c.on ? `Remove ${c.run} from the comparison` : `Add ${c.run} to the comparison`,
        onclick: () => onCompareRuns(c.on ? onRuns.filter((x) => x !== c.run) : [...onRuns, c.run]),
      }, c.run));
    }
  }

  function setStatus({text, kind}) {
    if (status.textContent !== text) status.textContent = text;
    status.className = `dvi-status ${kind ? `dvi-status-${kind}` : ''}`;
  }

  return {el, update, setStatus};
}
