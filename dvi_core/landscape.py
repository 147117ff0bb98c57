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
    fused = FusedHead.build(step, head)
    if fused is not None:
        return fused.logits(points_2d)
    return plain_logits(step, head, points_2d)


def plain_logits(step: StepProjection, head: Callable[[torch.Tensor], torch.Tensor],
                 points_2d: np.ndarray) -> torch.Tensor:
    """head(decoder(point)) at 2-D points [M, 2], as written: decode to [M, D] features, then run the head."""
    feats = step.inverse_transform(np.asarray(points_2d, dtype=np.float32))
    with torch.no_grad(), eval_mode(head) as h:
        t = torch.from_numpy(feats).to(device_of(head, step.device))
        return torch.cat([h(t[s : s + 16384]) for s in range(0, len(t), 16384)]).cpu()


class FusedHead:
    """head(decoder(point)) at 2-D points without decoding to the D-wide representation: the same function.

    The decoder ends in three linear maps: its memory blend (a convex combination of stored frame values and the
    MLP prior, weights summing to one), its frame expand (``z * scale @ axes + mean``) and, when the head begins
    with a ``Linear`` layer, that layer. Composed, they are one affine map per blend term, so the head's first layer
    is folded into the frame and applied to the stored values once (and to the prior MLP's last layer), and the
    per-point blend gathers ``min(P, H)`` numbers per neighbour instead of P, then skips the [M, D] expand and the
    D x H product altogether. Rendering a landscape tile is dominated by exactly that work (gathering 16 neighbours'
    64-d values, expanding to 512-d), which is why a cold tile costs a third of what the plain path costs.

    Exact up to float rounding. :meth:`build` returns None (callers use :func:`plain_logits`) for heads that do not
    start with a ``Linear`` layer, for decoders of another shape, and, as a guard against the decoder's code
    changing under this copy of its blend, whenever the two paths disagree on a probe of points.
    """

    CHUNK = 16384
    """Points per batch (16k x 16 neighbours x the blend width, float32)."""

    PROBE_TOL = 1e-3
    """Largest difference from the plain path on the probe, relative to the logits' scale, still taken as equal."""

    def __init__(self, step: StepProjection, head: torch.nn.Module) -> None:
        """Fold ``step``'s decoder into ``head`` (see :meth:`build`; raises ``TypeError`` for unsupported shapes)."""
        dec = step.decoder
        first, rest = _split_linear(head)
        net, memory = getattr(dec, "net", None), getattr(dec, "memory", None)
        if not (isinstance(net, torch.nn.Sequential) and len(net) and isinstance(net[-1], torch.nn.Linear)
                and memory is not None and all(hasattr(memory, a) for a in ("keys", "values", "K", "lookup"))
                and all(hasattr(dec, a) for a in ("mean", "axes", "scale"))):
            raise TypeError("the decoder is not an MLP prior blended with a k-nearest-neighbour memory")
        if first.weight.dtype != torch.float32 or dec.axes.dtype != torch.float32:
            raise TypeError("only float32 heads and decoders are folded")
        if first.weight.device != dec.axes.device:
            raise TypeError("the head and the decoder are on different devices")
        self.device = first.weight.device
        with torch.no_grad():
            w1 = first.weight.detach().to(self.device)  # [H, D]
            b1 = first.bias.detach().to(self.device) if first.bias is not None else w1.new_zeros(w1.shape[0])
            axes, mean, scale = (t.detach().to(self.device) for t in (dec.axes, dec.mean, dec.scale))
            fold = scale * axes @ w1.T  # [P, H]: frame coordinates -> the head's first layer
            shift = mean @ w1.T + b1  # [H]
            last = net[-1]
            self.hidden = net[:-1]  # the decoder's own layers, shared (on the head's device, checked above)
            self.blend_in_head = fold.shape[1] <= fold.shape[0]  # blend in the narrower space
            lw, lb = last.weight.detach().to(self.device), last.bias.detach().to(self.device)  # [P, h], [P]
            values = memory.values.detach().to(self.device)
            if self.blend_in_head:  # values and prior mapped into the head's first layer before the blend
                self.prior_w, self.prior_b = (fold.T @ lw), lb @ fold + shift
                self.values = values @ fold + shift
                self.out_w, self.out_b = None, None
            else:  # blend in the frame, then one [P, H] product instead of [P, D] and [D, H]
                self.prior_w, self.prior_b = lw, lb
                self.values = values
                self.out_w, self.out_b = fold, shift
            self.keys = memory.keys.detach().cpu().numpy()
            self.k = min(int(memory.K), len(self.keys))  # neighbours blended per point; 0: the prior alone
            self.memory = memory
        self.width = int(w1.shape[0])
        self.rest = rest

    @classmethod
    def build(cls, step: StepProjection, head: Callable[[torch.Tensor], torch.Tensor],
              probe: np.ndarray | None = None) -> FusedHead | None:
        """The fused evaluator of ``head`` on ``step``'s decoder, or None when the plain path must be used.

        ``probe``: 2-D points on which the fused and plain paths are compared before the fused one is trusted
        (default: 64 points spread over the step's bounds and its references)."""
        if not isinstance(head, torch.nn.Module):
            return None
        try:
            fused = cls(step, head)
        except (TypeError, AttributeError, IndexError, ValueError):
            return None
        pts = fused._probe_points(step.bounds_) if probe is None else np.asarray(probe, np.float32).reshape(-1, 2)
        want, got = plain_logits(step, head, pts), fused.logits(pts)
        if want.shape != got.shape or not torch.isfinite(got).all():
            return None
        span = float(want.abs().max()) if want.numel() else 0.0
        if want.numel() and float((want - got).abs().max()) > cls.PROBE_TOL * max(span, 1.0):
            return None
        return fused

    def _probe_points(self, bounds: tuple[float, float, float, float]) -> np.ndarray:
        """A few points where the blend matters: references, between them, and far out (the prior alone)."""
        rng = np.random.default_rng(0)
        x0, y0, x1, y1 = bounds
        box = rng.uniform([x0, y0], [x1, y1], (32, 2))
        if len(self.keys):
            near = self.keys[rng.integers(0, len(self.keys), 24)] + rng.normal(0, 1e-3 * (x1 - x0 + 1e-12), (24, 2))
        else:
            near = np.zeros((0, 2))
        far = np.array([[x0 - 3 * (x1 - x0), y0], [x1 + 3 * (x1 - x0), y1]] * 4)
        return np.concatenate([box, near, far]).astype(np.float32)

    @torch.no_grad()
    def logits(self, points_2d: np.ndarray) -> torch.Tensor:
        """Head logits float32 [M, C] at 2-D points [M, 2], on the CPU (what :func:`plain_logits` gives)."""
        pts = np.ascontiguousarray(points_2d, dtype=np.float32).reshape(-1, 2)
        with eval_mode(self.rest) as rest:
            if not len(pts):  # no points: still the head's output width
                return rest(torch.zeros((0, self.width), device=self.device)).float().cpu()
            return torch.cat([rest(self._first(pts[s : s + self.CHUNK])).cpu()
                              for s in range(0, len(pts), self.CHUNK)])

    def _first(self, pts: np.ndarray) -> torch.Tensor:
        """The head's first layer's output at ``pts``: the blend of the folded values and the folded prior."""
        y = torch.from_numpy(pts).to(self.device)
        prior = torch.addmm(self.prior_b, self.hidden(y), self.prior_w.T)
        if self.k:
            idx, w = self.memory.lookup(y)  # the decoder's own kernel: same neighbours, same weights
            near = self.values.index_select(0, idx.reshape(-1)).view(*idx.shape, -1)  # faster than values[idx]
            blended = torch.einsum("mk,mkh->mh", w[:, :-1], near) + w[:, -1:] * prior
        else:
            blended = prior
        if self.out_w is None:
            return blended
        return torch.addmm(self.out_b, blended, self.out_w)


def _split_linear(head: torch.nn.Module) -> tuple[torch.nn.Linear, torch.nn.Module]:
    """(the first ``Linear`` layer, the layers after it) of a ``Linear`` or a ``Sequential`` starting with one."""
    if type(head) is torch.nn.Linear:
        return head, torch.nn.Identity()
    if type(head) is torch.nn.Sequential and len(head) and type(head[0]) is torch.nn.Linear:
        return head[0], head[1:]
    raise TypeError("the head does not start with a Linear layer")


def predict(step: StepProjection, head: torch.nn.Module, points_2d: np.ndarray) -> np.ndarray:
    """Class probabilities float32 [M, C] that head(decoder(point)) gives at 2-D points [M, 2]."""
    return torch.softmax(_logits(step, head, points_2d), 1).numpy().astype(np.float32)


def grid_points(bounds: tuple[float, float, float, float], resolution: int, height: int | None = None) -> np.ndarray:
    """Pixel centres [H*R, 2] of an image R wide and H (default R) high over ``bounds``, in row-major order; row 0 is
    y_max, column 0 is x_min."""
    x0, y0, x1, y1 = bounds
    rows = resolution if height is None else height
    xs = x0 + (np.arange(resolution) + 0.5) * ((x1 - x0) / resolution)
    ys = y1 - (np.arange(rows) + 0.5) * ((y1 - y0) / rows)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)


def class_and_gap(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(class int64 [M], normalized gap float32 [M]) of logits [M, C]: ``argmax`` and ``normalized_gap``, the same
    numbers, found one class column at a time (a pass of elementwise max/min over [M] rows per class instead of a
    top-2 over each short row, several times faster for the few classes of a landscape's head)."""
    if logits.shape[1] <= 2 or not logits.is_floating_point():
        return logits.argmax(1), normalized_gap(logits)
    cols = logits.float().T.contiguous()
    top, low = cols[0].clone(), cols[0].clone()
    second = torch.full_like(top, float("-inf"))
    cls = torch.zeros(cols.shape[1], dtype=torch.int64)
    above, lesser = torch.empty_like(top, dtype=torch.bool), torch.empty_like(top)
    for c in range(1, cols.shape[0]):
        col = cols[c]
        torch.gt(col, top, out=above)  # strictly: ties keep the first class, as argmax does
        cls.masked_fill_(above, c)
        torch.minimum(top, col, out=lesser)  # the second best so far is the best of the rest
        torch.maximum(second, lesser, out=second)
        torch.maximum(top, col, out=top)
        torch.minimum(low, col, out=low)
    return cls, (top - second) / (top - low).clamp_min(1e-12)


def colorize(logits: torch.Tensor, n_classes: int | None = None) -> np.ndarray:
    """RGB uint8 [M, 3] for logits [M, C]: class colour blended with white by margin, white below 0.15."""
    cls_t, margin_t = class_and_gap(logits)
    cls, margin = cls_t.numpy(), margin_t.numpy()
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
