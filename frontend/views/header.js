// Top bar: run picker, compare toggle with its run chips, live/projection status.
import {h, clear} from './dom.js';

export function createHeader({onRun, onCompareToggle, onCompareRuns}) {
  const runSelect = h('select', {class: 'dvi-select', testid: 'run-select', 'aria-label': 'Run', onchange: () => onRun(runSelect.value)});
  const compareBtn = h('button', {class: 'dvi-btn dvi-toggle', testid: 'compare-toggle', type: 'button', title: 'Show several runs side by side', onclick: () => onCompareToggle()}, 'Compare runs');
  const chips = h('div', {class: 'dvi-compare-chips', testid: 'compare-runs'});
  const status = h('div', {class: 'dvi-status', testid: 'status'});
  const el = h('header', {class: 'dvi-header'},
    h('div', {class: 'dvi-brand'}, h('span', {class: 'dvi-logo'}, 'DVI'), h('span', {class: 'dvi-subtitle'}, 'training dynamics')),
    h('label', {class: 'dvi-field dvi-run-field'}, h('span', {class: 'dvi-field-label'}, 'Run'), runSelect),
    compareBtn, chips, h('div', {class: 'dvi-spacer'}), status);

  function update({runs, run, compare, compareRuns}) {
    const names = runs.map((r) => r.run);
    if ([...runSelect.options].map((o) => o.value).join('\n') !== names.join('\n')) {
      clear(runSelect);
      for (const r of runs) runSelect.append(h('option', {value: r.run}, r.run));
    }
    runSelect.value = run || '';
    runSelect.disabled = compare;
    runSelect.closest('label').classList.toggle('dvi-hidden', compare);
    compareBtn.classList.toggle('dvi-on', compare);
    compareBtn.disabled = runs.length < 2;
    compareBtn.setAttribute('aria-pressed', String(compare));
    clear(chips);
    chips.classList.toggle('dvi-hidden', !compare);
    if (compare) {
      for (const r of runs) {
        const on = compareRuns.includes(r.run);
        chips.append(h('button', {
          type: 'button', class: on ? 'dvi-chip dvi-on' : 'dvi-chip', dataset: {run: r.run}, testid: `compare-run-${r.run}`,
          'aria-pressed': String(on),
          onclick: () => onCompareRuns(on ? compareRuns.filter((x) => x !== r.run) : [...compareRuns, r.run]),
        }, r.run));
      }
    }
  }

  function setStatus(text, kind = '') {
    status.textContent = text;
    status.className = `dvi-status ${kind ? `dvi-status-${kind}` : ''}`;
  }

  return {el, update, setStatus};
}
