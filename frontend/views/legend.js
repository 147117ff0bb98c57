// Class legend: colour and name per class; clicking a class filters by label. Explains the point glyphs.
import {h, clear, swatch} from './dom.js';

export function createLegend({onClass}) {
  const list = h('div', {class: 'dvi-legend-list'});
  const el = h('div', {class: 'dvi-legend', testid: 'legend'}, list,
    h('div', {class: 'dvi-legend-key'},
      h('span', {class: 'dvi-glyph'}, h('span', {class: 'dvi-glyph-dot'})), 'correct',
      h('span', {class: 'dvi-glyph'}, h('span', {class: 'dvi-glyph-ring'}, h('span', {class: 'dvi-glyph-inner'}))), 'misclassified: ring = label, dot = prediction'));

  function update({classes, colors, activeLabel}) {
    clear(list);
    classes.forEach((name, i) => {
      const on = activeLabel === i;
      list.append(h('button', {type: 'button', class: on ? 'dvi-legend-item dvi-on' : 'dvi-legend-item', testid: `legend-${i}`, title: `Show only label ${name}`, onclick: () => onClass(i)},
        swatch(colors[i % colors.length]), h('span', {class: 'dvi-legend-name'}, name)));
    });
  }
  return {el, update};
}
