// Query panel: label, split, predicted class, misclassified, prediction changed, flagged ids, sample id lookup.
import {h, fill, clear, fmtInt} from './dom.js';
import {EMPTY_FILTER, isEmptyFilter} from '../state/mask.js';

export function createFilters({onChange, onFindId}) {
  let filter = {...EMPTY_FILTER};
  const label = h('select', {class: 'dvi-select', testid: 'filter-label', 'aria-label': 'Label'});
  const pred = h('select', {class: 'dvi-select', testid: 'filter-pred', 'aria-label': 'Predicted class'});
  const splitBtns = ['all', 'train', 'test'].map((v) =>
    h('button', {type: 'button', class: 'dvi-seg-btn', dataset: {value: v}, testid: `filter-split-${v}`, onclick: () => emit({split: v})}, v[0].toUpperCase() + v.slice(1)));
  const mis = h('input', {type: 'checkbox', testid: 'filter-misclassified'});
  const changed = h('input', {type: 'checkbox', testid: 'filter-changed'});
  const flagsBox = h('div', {class: 'dvi-flag-list'});
  const count = h('div', {class: 'dvi-count', testid: 'match-count'});
  const note = h('div', {class: 'dvi-note dvi-hidden', testid: 'filter-note'});
  const clearBtn = h('button', {type: 'button', class: 'dvi-link', testid: 'filter-clear', onclick: () => emit({...EMPTY_FILTER})}, 'Clear');
  const idInput = h('input', {type: 'text', class: 'dvi-input', testid: 'find-id', placeholder: 'Sample id', inputmode: 'numeric', 'aria-label': 'Find sample id'});
  const idForm = h('form', {class: 'dvi-find', onsubmit: (e) => {
    e.preventDefault();
    const v = idInput.value.trim();
    if (/^\d+$/.test(v)) onFindId(Number(v));
  }}, idInput, h('button', {type: 'submit', class: 'dvi-btn'}, 'Find'));
  label.addEventListener('change', () => emit({label: label.value === '' ? null : Number(label.value)}));
  pred.addEventListener('change', () => emit({pred: pred.value === '' ? null : Number(pred.value)}));
  mis.addEventListener('change', () => emit({mis: mis.checked}));
  changed.addEventListener('change', () => emit({changed: changed.checked}));

  const el = h('div', {class: 'dvi-filters', testid: 'filters'},
    h('div', {class: 'dvi-row'}, h('label', {class: 'dvi-field'}, h('span', {class: 'dvi-field-label'}, 'Label'), label),
      h('label', {class: 'dvi-field'}, h('span', {class: 'dvi-field-label'}, 'Predicted'), pred)),
    h('div', {class: 'dvi-field'}, h('span', {class: 'dvi-field-label'}, 'Split'), h('div', {class: 'dvi-seg'}, splitBtns)),
    h('label', {class: 'dvi-check'}, mis, 'Misclassified'),
    h('label', {class: 'dvi-check'}, changed, 'Prediction changed since previous step'),
    flagsBox,
    h('div', {class: 'dvi-count-row'}, count, clearBtn),
    note,
    idForm);

  function emit(patch) {
    filter = {...filter, ...patch};
    onChange(filter);
  }

  function options(select, classes, value) {
    const key = classes.join('\n');
    if (select.dataset.key !== key) {
      select.dataset.key = key;
      clear(select);
      select.append(h('option', {value: ''}, 'Any'));
      classes.forEach((c, i) => select.append(h('option', {value: String(i)}, c)));
    }
    select.value = value === null ? '' : String(value);
  }

  /** {classes, flags, value (the filter), matched, total, note (why nothing can match, or null)} */
  function update({classes, flags, value, matched, total, note: why}) {
    filter = {...value};
    options(label, classes, value.label);
    options(pred, classes, value.pred);
    splitBtns.forEach((b) => b.classList.toggle('dvi-on', b.dataset.value === value.split));
    mis.checked = value.mis;
    changed.checked = value.changed;
    const key = flags.join('\n');
    if (flagsBox.dataset.key !== key) {
      flagsBox.dataset.key = key;
      clear(flagsBox);
      for (const f of flags) {
        const cb = h('input', {type: 'checkbox', testid: `filter-flag-${f}`, dataset: {flag: f}});
        cb.addEventListener('change', () => emit({flags: cb.checked ? [...new Set([...filter.flags, f])] : filter.flags.filter((x) => x !== f)}));
        flagsBox.append(h('label', {class: 'dvi-check'}, cb, 'Flagged: ', h('b', {}, f)));
      }
    }
    for (const cb of flagsBox.querySelectorAll('input')) cb.checked = value.flags.includes(cb.dataset.flag);
    fill(count, h('b', {testid: 'match-count-value'}, fmtInt(matched)), ` of ${fmtInt(total)} samples`);
    note.classList.toggle('dvi-hidden', !why);
    note.textContent = why || '';
    count.classList.toggle('dvi-active', !isEmptyFilter(value));
    clearBtn.classList.toggle('dvi-hidden', isEmptyFilter(value));
  }

  return {el, update};
}
