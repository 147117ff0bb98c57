// Trust panel: the step's projection quality (http_api.md `metrics`), train and test.
import {h, fill, fmtFrac} from './dom.js';

const ROWS = [
  ['nn', 'Neighbour preservation', 'Fraction of each sample\'s 15 nearest neighbours kept in 2-D'],
  ['boundary', 'Boundary preservation', 'Fraction of 15 nearest boundary samples kept in 2-D'],
  ['ppr', 'Prediction preserving (PPR)', 'Fraction whose prediction survives encode → decode'],
  ['temporal', 'Temporal correlation', 'Correlation of neighbour change and 2-D movement since the previous step'],
  ['ccr', 'Confidence change (CCR)', 'Mean confidence change after encode → decode (lower is better)'],
  ['trustworthiness', 'Trustworthiness', 'k-NN trustworthiness of the 2-D map'],
];

export function createMetrics() {
  const body = h('div', {class: 'dvi-metrics-body'});
  const el = h('div', {class: 'dvi-metrics', testid: 'metrics'}, body);

  function quality(key, v) {
    if (v === null || v === undefined) return '';
    if (key === 'ccr') return v < 0.05 ? 'dvi-good' : v < 0.15 ? 'dvi-fair' : 'dvi-poor';
    if (key === 'ppr') return v >= 0.98 ? 'dvi-good' : v >= 0.9 ? 'dvi-fair' : 'dvi-poor';
    return v >= 0.5 ? 'dvi-good' : v >= 0.2 ? 'dvi-fair' : 'dvi-poor';
  }

  function update(state) {
    if (!state) {
      fill(body, h('div', {class: 'dvi-muted'}, 'No step selected.'));
    } else if (state.pending) {
      fill(body, h('div', {class: 'dvi-muted'}, 'Computing the metrics for this step…'));
    } else if (state.error) {
      fill(body, h('div', {class: 'dvi-muted'}, `Metrics unavailable: ${state.error}`));
    } else {
      const m = state.metrics;
      const rows = ROWS.filter(([k]) => (m.train && k in m.train) || (m.test && k in m.test));
      fill(body, h('table', {class: 'dvi-table'},
        h('thead', {}, h('tr', {}, h('th', {}, `Step ${m.step}`), h('th', {}, 'Train'), h('th', {}, 'Test'))),
        h('tbody', {}, rows.map(([k, name, tip]) => h('tr', {title: tip, dataset: {metric: k}},
          h('td', {}, name),
          ...['train', 'test'].map((sp) => {
            const v = m[sp] ? m[sp][k] : null;
            return h('td', {class: `dvi-num ${quality(k, v)}`, testid: `metric-${k}-${sp}`}, fmtFrac(v, 2));
          }))))),
      h('div', {class: 'dvi-footnote'}, 'Fractions in [0, 1]; temporal is a correlation in [−1, 1].'));
    }
  }
  update(null);
  return {el, update};
}
