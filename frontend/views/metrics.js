// Trust panel: each shown step's projection quality (the `metrics` route), per run, train and test, each number
// beside a stated reference (umap-learn's value in the committed projection benchmark), an explanation on hover,
// and a small trend over the run's projected steps. Unknown metric keys are shown as they come.
import {h, fill, s, fmtFrac} from './dom.js';

/** What each known metric means, and which way is better (+1 higher, −1 lower). */
export const METRIC_INFO = {
  nn: {name: 'Neighbour preservation', better: 1, tip: 'Fraction of each sample\'s 15 nearest neighbours (in feature space) that stay among its 15 nearest on the map.'},
  boundary: {name: 'Boundary preservation', better: 1, tip: 'Like neighbour preservation, for the 15 nearest samples near a decision boundary.'},
  ppr: {name: 'Prediction preserving (PPR)', better: 1, tip: 'Fraction of samples whose prediction is unchanged after mapping to 2-D and back (the map agrees with the model).'},
  temporal: {name: 'Temporal correlation', better: 1, tip: 'Correlation between how much a sample\'s neighbourhood changed since the previous step and how far it moved on the map (−1 to 1; none on the first step).'},
  ccr: {name: 'Confidence change (CCR)', better: -1, tip: 'Mean change of the model\'s confidence after mapping to 2-D and back (lower is better).'},
  trustworthiness: {name: 'Trustworthiness', better: 1, tip: 'k-NN trustworthiness: how few of a sample\'s neighbours on the map are strangers in feature space.'},
  landscape_agreement: {name: 'Landscape agreement', better: 1, tip: 'Fraction of samples whose dot lies on background of its own predicted class.'},
  speckle: {name: 'Landscape speckle', better: -1, tip: 'Fraction of landscape pixels away from boundaries that disagree with most of their neighbours (lower is better).'},
};

/** The metric keys of a metrics answer, known ones first in a fixed order, then unknown ones alphabetically. */
export function metricKeys(m) {
  const keys = new Set([...Object.keys(m.train || {}), ...Object.keys(m.test || {})]);
  const known = Object.keys(METRIC_INFO).filter((k) => keys.has(k));
  return [...known, ...[...keys].filter((k) => !(k in METRIC_INFO)).sort()];
}

/** How a value compares with the reference: {cls, symbol, text} (no colour for normal values, words instead). */
export function versus(key, v, ref) {
  const better = METRIC_INFO[key] ? METRIC_INFO[key].better : 0;
  if (v === null || v === undefined || ref === null || ref === undefined || !better) return null;
  const d = (v - ref) * better;
  if (Math.abs(d) < 0.005) return {cls: 'dvi-vs-same', symbol: '=', text: 'about the same as'};
  return d > 0 ? {cls: 'dvi-vs-better', symbol: '▲', text: 'better than'} : {cls: 'dvi-vs-worse', symbol: '▼', text: 'worse than'};
}

function trendSvg(points, current, width = 54, height = 16) {
  const vals = points.map((p) => p.v).filter((v) => v !== null && v !== undefined);
  const svg = s('svg', {class: 'dvi-trend', width, height, viewBox: `0 0 ${width} ${height}`, 'data-testid': 'metric-trend'});
  if (vals.length < 2) return svg;
  const lo = Math.min(...vals);
  const hi = Math.max(...vals);
  const X = (i) => 2 + ((width - 4) * i) / (points.length - 1);
  const Y = (v) => height - 2 - ((height - 4) * (v - lo)) / (hi - lo || 1);
  const d = points.map((p, i) => (p.v === null || p.v === undefined ? null : `${X(i).toFixed(1)},${Y(p.v).toFixed(1)}`)).filter(Boolean);
  svg.append(s('polyline', {points: d.join(' '), class: 'dvi-trend-line'}));
  const ci = points.findIndex((p) => p.step === current);
  if (ci >= 0 && points[ci].v !== null && points[ci].v !== undefined) svg.append(s('circle', {cx: X(ci), cy: Y(points[ci].v), r: 2, class: 'dvi-trend-now'}));
  svg.append(s('title', {}, points.map((p) => `step ${p.step}: ${fmtFrac(p.v, 3)}`).join('\n')));
  return svg;
}

function cell(key, split, v, ref) {
  const vs = versus(key, v, ref);
  const refText = ref === null || ref === undefined ? 'umap-learn has no value for this metric' : `umap-learn ${fmtFrac(ref, 3)}`;
  const tip = vs ? `${fmtFrac(v, 3)} is ${vs.text} the reference (${refText})` : refText;
  return h('td', {class: 'dvi-num', title: tip, testid: `metric-${key}-${split}`},
    h('span', {class: 'dvi-metric-value'}, fmtFrac(v, 2)),
    vs ? h('span', {class: `dvi-vs ${vs.cls}`, 'aria-label': vs.text}, vs.symbol) : null,
    h('span', {class: 'dvi-ref', testid: `metric-ref-${key}-${split}`}, ref === null || ref === undefined ? '' : fmtFrac(ref, 2)));
}

function table(entry, reference) {
  const m = entry.metrics;
  const refs = reference.metrics || {};
  return h('table', {class: 'dvi-table'},
    h('thead', {}, h('tr', {},
      h('th', {}, h('span', {testid: 'metrics-step', dataset: {stepLabel: String(m.step)}}, `Step ${m.step}`)),
      h('th', {title: 'This map, and umap-learn\'s value (small) for reference'}, 'Train'),
      h('th', {title: 'This map, and umap-learn\'s value (small) for reference'}, 'Test'),
      h('th', {title: 'Train value over the run\'s projected steps'}, 'Trend'))),
    h('tbody', {}, metricKeys(m).map((k) => {
      const meta = METRIC_INFO[k] || {name: k, tip: `${k} (reported by the server; no description available)`};
      return h('tr', {dataset: {metric: k}},
        h('td', {class: 'dvi-metric-name', title: meta.tip}, meta.name),
        cell(k, 'train', m.train ? m.train[k] : null, refs.train ? refs.train[k] : null),
        cell(k, 'test', m.test ? m.test[k] : null, refs.test ? refs.test[k] : null),
        h('td', {}, trendSvg((entry.trend || []).map((t) => ({step: t.step, v: t.metrics && t.metrics.train ? t.metrics.train[k] : null})), m.step)));
    })));
}

export function createMetrics({reference}) {
  const body = h('div', {class: 'dvi-metrics-body'});
  const el = h('div', {class: 'dvi-metrics', testid: 'metrics'}, body);

  function section(entry, labelled) {
    const head = labelled ? h('div', {class: 'dvi-run-head', testid: 'metrics-run'}, entry.run) : null;
    let content;
    if (entry.step === null || entry.step === undefined) content = h('div', {class: 'dvi-muted'}, 'No step shown yet.');
    else if (entry.error) content = h('div', {class: 'dvi-muted'}, `Metrics unavailable: ${entry.error}`);
    else if (!entry.metrics) content = h('div', {class: 'dvi-muted'}, `Computing the metrics for step ${entry.step}…`);
    else content = table(entry, reference);
    return h('div', {class: 'dvi-metrics-run', dataset: {run: entry.run}}, head, content);
  }

  /** entries: [{run, step (shown), metrics | null, error, trend: [{step, metrics}]}], in panel order. */
  function update(entries) {
    if (!entries.length) return fill(body, h('div', {class: 'dvi-muted'}, 'No run shown.'));
    fill(body, entries.map((e) => section(e, entries.length > 1)),
      h('div', {class: 'dvi-footnote'},
        `Small numbers: ${reference.method}'s value on the same metric in the committed projection benchmark (${reference.description}). `,
        '▲ better, ▼ worse, = about the same. Hover a name for its meaning.'));
  }
  update([]);
  return {el, update};
}
