// Canvas-2D back end of the map, with the WebGL renderer's interface, for browsers without WebGL.

/** The canvas-2D renderer {kind, upload, render, destroy}; like the WebGL one, it draws the level-of-detail
 * subsample (upload 'lod') while `s.moving` and returns how many points it drew. */
export function create2dRenderer(canvas) {
  const ctx = canvas.getContext('2d');
  const data = {};

  function drawLayers(s, toX, toY) {
    ctx.imageSmoothingEnabled = false;
    for (const [layers, alpha] of [[s.landA, 1], [s.landB, s.fade]]) {
      if (alpha <= 0) continue;
      for (const layer of layers) {
        const b = layer.bounds;
        ctx.globalAlpha = alpha * s.landscapeOpacity;
        ctx.drawImage(layer.image, toX(b[0]), toY(b[3]), toX(b[2]) - toX(b[0]), toY(b[1]) - toY(b[3]));
      }
    }
  }

  function drawPass(s, pass, toX, toY, order) {
    const {aPosA: a, aPosB: b, aLabel: lab, aPred: pred, aHigh: high} = data;
    const count = order ? order.length : s.n;
    const t = s.t;
    const colors = s.paletteCss;
    const sz = pass ? s.pointSize * s.dpr : s.pointSize * s.dpr * 0.8;
    const at = (i) => [toX(a[2 * i] + (b[2 * i] - a[2 * i]) * t), toY(a[2 * i + 1] + (b[2 * i + 1] - a[2 * i + 1]) * t)];
    ctx.globalAlpha = pass ? 1 : s.dimAlpha;
    for (let c = 0; c < colors.length; c++) {
      ctx.beginPath();
      for (let j = 0; j < count; j++) {
        const i = order ? order[j] : j;
        if ((high[i] > 0.5 ? 1 : 0) !== pass || lab[i] !== c || lab[i] !== pred[i]) continue;
        const [x, y] = at(i);
        ctx.moveTo(x + sz / 2, y);
        ctx.arc(x, y, sz / 2, 0, 2 * Math.PI);
      }
      ctx.fillStyle = colors[c];
      ctx.fill();
    }
    ctx.lineWidth = Math.max(1, sz * 0.3);
    for (let j = 0; j < count; j++) {
      const i = order ? order[j] : j;
      if ((high[i] > 0.5 ? 1 : 0) !== pass || lab[i] === pred[i]) continue;
      const [x, y] = at(i);
      ctx.beginPath();
      ctx.arc(x, y, sz * 0.7, 0, 2 * Math.PI);
      ctx.strokeStyle = colors[lab[i] % colors.length];
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(x, y, sz * 0.35, 0, 2 * Math.PI);
      ctx.fillStyle = colors[pred[i] % colors.length];
      ctx.fill();
    }
  }

  function render(s, view) {
    const w = canvas.width;
    const h = canvas.height;
    const [vx, vy, sx, sy] = view;
    const toX = (x) => ((x - vx) * sx + 1) * 0.5 * w;
    const toY = (y) => (1 - (y - vy) * sy) * 0.5 * h;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 1;
    ctx.fillStyle = `rgb(${s.background.map((c) => Math.round(c * 255)).join(',')})`;
    ctx.fillRect(0, 0, w, h);
    drawLayers(s, toX, toY);
    const order = s.moving && data.lod && data.lod.length < s.n ? data.lod : null;
    if (s.n) for (const pass of [0, 1]) drawPass(s, pass, toX, toY, order);
    ctx.globalAlpha = 1;
    return order ? order.length : s.n;
  }

  return {kind: 'canvas2d', upload: (name, arr) => (data[name] = arr), render, destroy() {}};
}
