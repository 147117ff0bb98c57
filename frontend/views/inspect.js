// Sample details: thumbnail, id, label, prediction and confidence now, and a sparkline of its history.
import {h, fill, s, swatch, fmtPct} from './dom.js';

/** SVG sparkline: confidence over steps (line), predicted class per step (dots in class colour), current step. */
export function sparkline({steps, conf, pred, label, colors, classes, current, width = 248, height = 64}) {
  const pad = {l: 26, r: 6, t: 6, b: 14};
  const w = width - pad.l - pad.r;
  const hh = height - pad.t - pad.b;
  const n = steps.length;
  const X = (i) => pad.l + (n > 1 ? (w * i) / (n - 1) : w / 2);
  const Y = (v) => pad.t + hh * (1 - v);
  const svg = s('svg', {class: 'dvi-spark', width, height, viewBox: `0 0 ${width} ${height}`, 'data-testid': 'sparkline', role: 'img', 'aria-label': 'Confidence and prediction over steps'});
  svg.append(s('line', {x1: pad.l, x2: pad.l + w, y1: Y(1), y2: Y(1), class: 'dvi-spark-grid'}));
  svg.append(s('line', {x1: pad.l, x2: pad.l + w, y1: Y(0.5), y2: Y(0.5), class: 'dvi-spark-grid'}));
  svg.append(s('line', {x1: pad.l, x2: pad.l + w, y1: Y(0), y2: Y(0), class: 'dvi-spark-axis'}));
  svg.append(s('text', {x: pad.l - 4, y: Y(1) + 3, class: 'dvi-spark-text', 'text-anchor': 'end'}, '1'));
  svg.append(s('text', {x: pad.l - 4, y: Y(0) + 3, class: 'dvi-spark-text', 'text-anchor': 'end'}, '0'));
  const ci = steps.indexOf(current);
  if (ci >= 0) svg.append(s('line', {x1: X(ci), x2: X(ci), y1: pad.t - 2, y2: pad.t + hh, class: 'dvi-spark-now'}));
  const pts = [];
  steps.forEach((st, i) => conf[i] !== null && conf[i] !== undefined && pts.push(`${X(i).toFixed(1)},${Y(conf[i]).toFixed(1)}`));
  svg.append(s('polyline', {points: pts.join(' '), class: 'dvi-spark-line'}));
  steps.forEach((st, i) => {
    if (conf[i] === null || conf[i] === undefined) return;
    const p = pred[i];
    const wrong = p !== label;
    const c = s('circle', {cx: X(i), cy: Y(conf[i]), r: i === ci ? 4 : 3, fill: wrong ? '#fff' : colors[p % colors.length], stroke: colors[p % colors.length], 'stroke-width': wrong ? 2 : 1});
    c.append(s('title', {}, `step ${st}: predicted ${classes[p] ?? p}, confidence ${fmtPct(conf[i])}`));
    svg.append(c);
  });
  svg.append(s('text', {x: pad.l, y: height - 2, class: 'dvi-spark-text'}, `step ${steps[0]}`));
  svg.append(s('text', {x: pad.l + w, y: height - 2, class: 'dvi-spark-text', 'text-anchor': 'end'}, `step ${steps[n - 1]}`));
  return svg;
}

/** The sparkline's key: what the line, the filled and hollow dots and the vertical mark mean. */
function sparkKey(color) {
  const dot = (fill, stroke) => s('svg', {width: 10, height: 10, class: 'dvi-key-glyph'}, s('circle', {cx: 5, cy: 5, r: 3.5, fill, stroke, 'stroke-width': fill === '#fff' ? 2 : 1}));
  return h('div', {class: 'dvi-spark-key', testid: 'sparkline-key'},
    h('span', {}, s('svg', {width: 14, height: 10, class: 'dvi-key-glyph'}, s('line', {x1: 0, x2: 14, y1: 5, y2: 5, class: 'dvi-spark-line'})), 'confidence'),
    h('span', {}, dot(color, color), 'predicted right'),
    h('span', {}, dot('#fff', color), 'wrong (ring: predicted class)'),
    h('span', {}, s('svg', {width: 6, height: 10, class: 'dvi-key-glyph'}, s('line', {x1: 3, x2: 3, y1: 0, y2: 10, class: 'dvi-spark-now'})), 'shown step'));
}

export function createInspect({onClose, onFocus}) {
  const body = h('div', {class: 'dvi-inspect-body'});
  const el = h('div', {class: 'dvi-inspect', testid: 'inspect'}, body);

  function classChip(i, classes, colors) {
    return h('span', {class: 'dvi-class-chip'}, swatch(colors[i % colors.length]), classes[i] ?? String(i));
  }

  /** One run's view of the sample: its prediction at the shown step and its history. */
  function runSection(e, {classes, colors, labelled}) {
    const head = labelled ? h('div', {class: 'dvi-run-head', testid: 'inspect-run'}, e.run, e.step === null ? '' : h('span', {class: 'dvi-muted dvi-small', dataset: {stepLabel: String(e.step)}}, ` · step ${e.step}`)) : null;
    if (e.error) return h('div', {class: 'dvi-inspect-run', dataset: {run: e.run}}, head, h('div', {class: 'dvi-muted'}, e.error));
    const {sample, now} = e;
    const label = sample ? sample.label : now ? now.label : null;
    const rows = [];
    if (now) {
      rows.push(['Predicted', h('span', {class: 'dvi-pred-now', testid: 'inspect-pred'}, classChip(now.pred, classes, colors), h('span', {class: now.pred === label ? 'dvi-ok' : 'dvi-bad'}, now.pred === label ? ' correct' : ' wrong'))]);
      rows.push(['Confidence', h('span', {testid: 'inspect-conf'}, fmtPct(now.conf))]);
    }
    return h('div', {class: 'dvi-inspect-run', dataset: {run: e.run}}, head,
      rows.length ? h('dl', {class: 'dvi-dl'}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])) : null,
      sample
        ? h('div', {class: 'dvi-history'}, h('div', {class: 'dvi-field-label'}, 'Confidence and prediction over steps'),
          sparkline({steps: sample.steps, conf: sample.conf, pred: sample.pred, label: sample.label, colors, classes, current: e.step}))
        : h('div', {class: 'dvi-muted dvi-small'}, e.loading ? 'Loading history…' : ''),
      e.missing ? h('div', {class: 'dvi-muted dvi-small'}, 'Not in this step\'s projection.') : null);
  }

  /**
   * state: null (nothing selected) | {id, classes, colors, thumbnailUrl, entries: [{run, step (shown), sample,
   * now: {pred, conf, label, split} | null, loading, missing, error}]} with one entry per panel, in panel order.
   */
  function update(state) {
    if (!state) return fill(body, h('div', {class: 'dvi-muted'}, 'Click a point on the map to inspect a sample.'));
    const {classes, colors, entries} = state;
    const close = h('button', {type: 'button', class: 'dvi-link', testid: 'inspect-close', onclick: () => onClose()}, 'Clear');
    const focus = h('button', {type: 'button', class: 'dvi-link', testid: 'inspect-focus', onclick: () => onFocus()}, 'Centre');
    const first = entries.find((e) => e.sample || e.now) || entries[0] || {};
    const label = first.sample ? first.sample.label : first.now ? first.now.label : null;
    const split = first.sample ? first.sample.split : first.now ? first.now.split : null;
    const thumb = state.thumbnailUrl
      ? h('img', {class: 'dvi-thumb', testid: 'thumbnail', src: state.thumbnailUrl, alt: `sample ${state.id}`, width: 84, height: 84})
      : h('div', {class: 'dvi-thumb dvi-thumb-empty'}, 'no input logged');
    const rows = [];
    if (label !== null && label !== undefined) rows.push(['Label', classChip(label, classes, colors)]);
    if (split !== null && split !== undefined) rows.push(['Split', split ? 'train' : 'test']);
    if (first.sample && first.sample.flags && first.sample.flags.length) rows.push(['Flags', h('span', {class: 'dvi-flag', testid: 'inspect-flags'}, first.sample.flags.join(', '))]);
    const single = entries.length === 1 ? entries[0] : null;
    fill(body,
      h('div', {class: 'dvi-inspect-head'}, h('span', {class: 'dvi-id', testid: 'inspect-id'}, `#${state.id}`),
        single ? h('span', {class: 'dvi-muted dvi-small', testid: 'inspect-run'}, single.run) : null, h('span', {class: 'dvi-spacer'}), focus, close),
      h('div', {class: 'dvi-inspect-main'}, thumb, h('dl', {class: 'dvi-dl'}, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))),
      entries.map((e) => runSection(e, {classes, colors, labelled: entries.length > 1})),
      entries.some((e) => e.sample) ? sparkKey(colors[(label ?? 0) % colors.length]) : null);
  }
  update(null);
  return {el, update};
}
