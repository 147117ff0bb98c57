"""Classification landscape: decode a grid, run the head, colour by class and margin.

margin = (top1 - top2) / (top1 - min) of the logits; margin < 0.15 is white (a decision boundary),
otherwise the class colour is blended with white, fully saturated at margin 1. Colours are indexed
by class id (not by the largest class present, a bug of the original code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from .boundary import device_of, eval_mode, normalized_gap

if TYPE_CHECKING:
    from .projector import StepProjection

#: Below this normalised margin a pixel is drawn white.
WHITE_MARGIN = 0.15
_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_EXTRA = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
          "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]


def class_colors(n_classes: int) -> list[str]:
    """"#rrggbb" per class index: tab10, then ten darker distinct colours, then golden-angle hues."""
    out = (_TAB10 + _EXTRA)[:n_classes]
    i = len(out)
    while len(out) < n_classes:
        h = (i * 0.618033988749895) % 1.0
        r, g, b = _hsv_to_rgb(h, 0.65, 0.8)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
        i += 1
    return out


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _rgb_table(n_classes: int) -> np.ndarray:
    return np.array([[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in class_colors(n_classes)], np.float32)


def _logits(step: StepProjection, head: torch.nn.Module, points_2d: np.ndarray) -> torch.Tensor:
    feats = step.inverse_transform(np.asarray(points_2d, dtype=np.float32))
    with torch.no_grad(), eval_mode(head) as h:
        t = torch.from_numpy(feats).to(device_of(head, step.device))
        return torch.cat([h(t[s : s + 16384]) for s in range(0, len(t), 16384)]).cpu()


def predict(step: StepProjection, head: torch.nn.Module, points_2d: np.ndarray) -> np.ndarray:
    """Class probabilities float32 [M, C] that head(decoder(point)) gives at 2-D points [M, 2]."""
    return torch.softmax(_logits(step, head, points_2d), 1).numpy().astype(np.float32)


def grid_points(bounds: tuple[float, float, float, float], resolution: int) -> np.ndarray:
    """Pixel centres [R*R, 2] in row-major order; row 0 is y_max, column 0 is x_min."""
    x0, y0, x1, y1 = bounds
    step_x, step_y = (x1 - x0) / resolution, (y1 - y0) / resolution
    xs = x0 + (np.arange(resolution) + 0.5) * step_x
    ys = y1 - (np.arange(resolution) + 0.5) * step_y
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def colorize(logits: torch.Tensor, n_classes: int | None = None) -> np.ndarray:
    """RGB uint8 [M, 3] for logits [M, C]: class colour blended with white by margin, white below 0.15."""
    margin = normalized_gap(logits).numpy()
    cls = logits.argmax(1).numpy()
    table = _rgb_table(max(n_classes or 0, logits.shape[1]))
    s = np.where(margin < WHITE_MARGIN, 0.0, margin)[:, None]
    rgb = 255.0 * (1 - s) + table[cls] * s
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def class_grid(
    step: StepProjection, head: Callable[[torch.Tensor], torch.Tensor], *, resolution: int = 256,
    bounds: tuple[float, float, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(class int64 [R, R], white bool [R, R]) of the landscape over ``bounds``: what ``render`` colours."""
    logits = _logits(step, head, grid_points(bounds or step.bounds_, resolution))
    white = (normalized_gap(logits) < WHITE_MARGIN).numpy()
    return logits.argmax(1).numpy().reshape(resolution, resolution), white.reshape(resolution, resolution)


def render(
    step: StepProjection, head: torch.nn.Module, *, resolution: int = 256,
    bounds: tuple[float, float, float, float] | None = None, n_classes: int | None = None,
) -> np.ndarray:
    """The landscape image uint8 [R, R, 3] over ``bounds`` (default ``step.bounds_``)."""
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"The 'resolution' parameter of render must be an int >= 1. Got {resolution!r} instead.")
    pts = grid_points(bounds or step.bounds_, resolution)
    return colorize(_logits(step, head, pts), n_classes).reshape(resolution, resolution, 3)
