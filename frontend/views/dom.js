// Tiny DOM helpers shared by the views (no framework: the tab is small).

/** h('div', {class: 'x', dataset: {testid: 'y'}, onclick: fn}, child, 'text', [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el` (null / false children are skipped, unlike Element.replaceChildren). */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function fmtInt(n) {
  return Number(n).toLocaleString('en-US');
}

export function fmtFrac(v, digits = 3) {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : Number(v).toFixed(digits);
}

export function fmtPct(v, digits = 1) {
  return v === null || v === undefined || Number.isNaN(v) ? '–' : `${(100 * v).toFixed(digits)}%`;
}

/** A section card in the side panel. */
export function card(title, testid, ...body) {
  return h('section', {class: 'dvi-card', testid}, h('h3', {class: 'dvi-card-title'}, title), ...body);
}

/** Class colour swatch. */
export function swatch(color, mis = false) {
  return h('span', {class: mis ? 'dvi-swatch dvi-swatch-ring' : 'dvi-swatch', style: mis ? {borderColor: color} : {background: color}});
}
