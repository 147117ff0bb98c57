// Legend: class colours and names (click to filter by label), the point glyphs, and what the background means.
import {h, clear, swatch} from './dom.js';

function landscapeKey(colors) {
  const c = colors[0] || '#1f77b4';
  const ramp = `linear-gradient(90deg, #fff 0%, ${c}55 35%, ${c} 100%)`;
  return h('div', {class: 'dvi-land-key', testid: 'landscape-legend'},
    h('div', {class: 'dvi-field-label'}, 'Background'),
    h('div', {class: 'dvi-land-row'}, h('span', {class: 'dvi-land-ramp', style: {background: ramp}}),
      h('span', {}, 'colour: the class the model predicts at that place')),
    h('div', {class: 'dvi-land-row'}, h('span', {class: 'dvi-land-ramp', style: {background: `linear-gradient(90deg, ${c}33, ${c})`}}),
      h('span', {}, 'paleness: low confidence margin (pale = unsure)')),
    h('div', {class: 'dvi-land-row'}, h('span', {class: 'dvi-land-ramp dvi-land-white'}),
      h('span', {}, 'white: a decision boundary (two classes tie)')));
}

export function createLegend({onClass}) {
  const list = h('div', {class: 'dvi-legend-list'});
  const land = h('div');
  const el = h('div', {class: 'dvi-legend', testid: 'legend'}, list,
    h('div', {class: 'dvi-legend-key'},
      h('span', {class: 'dvi-glyph'}, h('span', {class: 'dvi-glyph-dot'})), 'correct',
      h('span', {class: 'dvi-glyph'}, h('span', {class: 'dvi-glyph-ring'}, h('span', {class: 'dvi-glyph-inner'}))), 'misclassified: ring = label, dot = prediction'),
    land);
  let key = null;

  function update({classes, colors, activeLabel, hasHead}) {
    const k = JSON.stringify([classes, colors, activeLabel, hasHead]);
    if (k === key) return;
    key = k;
    clear(list);
    classes.forEach((name, i) => {
      const on = activeLabel === i;
      list.append(h('button', {type: 'button', class: on ? 'dvi-legend-item dvi-on' : 'dvi-legend-item', testid: `legend-${i}`, title: `Show only label ${name}`, onclick: () => onClass(i)},
        swatch(colors[i % colors.length]), h('span', {class: 'dvi-legend-name'}, name)));
    });
    clear(land);
    if (hasHead) land.append(landscapeKey(colors));
  }
  return {el, update};
}
