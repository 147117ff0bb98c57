// The 2-D overlay over the map: the selected sample's trajectory (start marker, a dot per step, arrows for
// direction, the shown step emphasised), the selection ring and the hover ring. Pure drawing on a 2-D context.

const START_RADIUS = 5.5;
const DOT_RADIUS = 2.6;
const NOW_RADIUS = 4.5;
export const TRAJECTORY_HIT_RADIUS = 7;

function arrow(ctx, [x0, y0], [x1, y1], color) {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const len = Math.hypot(dx, dy);
  if (len < 14) return;
  const ux = dx / len;
  const uy = dy / len;
  const mx = (x0 + x1) / 2 + ux * 3;
  const my = (y0 + y1) / 2 + uy * 3;
  ctx.beginPath();
  ctx.moveTo(mx, my);
  ctx.lineTo(mx - ux * 7 - uy * 4, my - uy * 7 + ux * 4);
  ctx.lineTo(mx - ux * 7 + uy * 4, my - uy * 7 - ux * 4);
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.fill();
}

/** Screen points of a trajectory {points: [{x, y, step}], color, current} (non-finite positions dropped). */
export function trajectoryScreen(tr, toScreen) {
  return tr.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).map((p) => ({step: p.step, xy: toScreen(p.x, p.y)}));
}

export function drawTrajectory(ctx, tr, toScreen) {
  const pts = trajectoryScreen(tr, toScreen);
  if (!pts.length) return;
  const color = tr.color || '#212121';
  ctx.lineJoin = 'round';
  ctx.lineCap = 'round';
  ctx.beginPath();
  pts.forEach(({xy: [x, y]}, i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
  ctx.strokeStyle = 'rgba(255,255,255,0.85)';
  ctx.lineWidth = 4;
  ctx.stroke();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.6;
  ctx.stroke();
  for (let i = 1; i < pts.length; i++) arrow(ctx, pts[i - 1].xy, pts[i].xy, color);
  pts.forEach(({step, xy: [x, y]}, i) => {
    const now = step === tr.current;
    ctx.beginPath();
    ctx.arc(x, y, i === 0 ? START_RADIUS : now ? NOW_RADIUS : DOT_RADIUS, 0, 2 * Math.PI);
    ctx.fillStyle = i === 0 ? '#fff' : color;
    ctx.fill();
    ctx.strokeStyle = i === 0 ? color : '#fff';
    ctx.lineWidth = i === 0 ? 2 : now ? 1.5 : 0.8;
    ctx.stroke();
  });
  const [sx, sy] = pts[0].xy;
  ctx.font = '10px Roboto, Arial, sans-serif';
  ctx.lineWidth = 3;
  ctx.strokeStyle = 'rgba(255,255,255,0.9)';
  ctx.strokeText('start', sx + 8, sy - 6);
  ctx.fillStyle = '#212121';
  ctx.fillText('start', sx + 8, sy - 6);
}

/** The trajectory dot under CSS pixel (px, py), as {step, x, y} in screen pixels, or null. */
export function pickTrajectory(tr, toScreen, px, py) {
  if (!tr) return null;
  let best = null;
  let bestD = TRAJECTORY_HIT_RADIUS ** 2;
  for (const {step, xy: [x, y]} of trajectoryScreen(tr, toScreen)) {
    const d = (x - px) ** 2 + (y - py) ** 2;
    if (d <= bestD) {
      bestD = d;
      best = {step, x, y};
    }
  }
  return best;
}

export function drawRing(ctx, [x, y], radius, color, width, halo) {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  if (halo) {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = width + 2;
    ctx.stroke();
  }
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.stroke();
}
