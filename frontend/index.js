// Entry point. TensorBoard imports this module inside the tab's iframe (<base href="plugin/dvi/">) and calls
// render(). It only renders: the stylesheet, then the app (app.js) into <body>.

import {createApp} from './app.js';

let instance = null;

function loadStylesheet() {
  const href = new URL('./style.css', import.meta.url).href;
  if ([...document.querySelectorAll('link[rel="stylesheet"]')].some((l) => l.href === href)) return Promise.resolve();
  return new Promise((resolve) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = href;
    link.onload = link.onerror = () => resolve();
    document.head.append(link);
  });
}

/**
 * Renders the DVI tab into document.body. Options (for tests, the benchmark and the dev page), also read from the
 * page's query string: renderer ('auto' | 'webgl' | 'canvas2d'), prefetch (false: no background loading of steps).
 */
export async function render(options = {}) {
  const params = new URLSearchParams(window.location.search);
  const renderer = options.renderer || params.get('renderer') || 'auto';
  const prefetch = options.prefetch ?? params.get('prefetch') !== '0';
  await loadStylesheet();
  document.documentElement.classList.add('dvi-root');
  if (instance) instance.destroy();
  instance = createApp(document.body, {renderer, prefetch});
  return instance.ready;
}
