"""The placement encoder's refine epochs as one compiled loop (numba), for ``LayoutEncoder._refine`` on the CPU.

Why: the torch refine makes a dozen passes an epoch over [Q, k, 2] tensors (gather, subtract, power, clip, weight,
sum) and as many over the negatives; at 10,000 new points x 40 references x 100 epochs that was about 16 % of the
60k x 512 benchmark step. A point's refine depends only on its own position, so here each point runs all its
epochs in registers. Same arithmetic as the torch path: the same negatives (drawn by the caller's torch
generator), coefficients, clip and order (attraction summed over the references, then the mean repulsion over
the negatives, both from the position at the epoch's start), so the two agree up to float rounding.
``fastmath=True`` lets the sums over a point's references and negatives run in SIMD lanes (a reordered sum:
rounding only; 2x here). ``cache=True`` keeps the compiled code on disk, so only the first use on a machine pays
the compile.
"""

from __future__ import annotations

import numba
import numpy as np

from .layout_cpu import A32, ATTRACT32, B32, CLIP32, REPEL32, SOFT32, TINY32

_ONE = np.float32(1)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _clip(v: np.float32) -> np.float32:
    return max(-CLIP32, min(CLIP32, v))


@numba.njit(cache=True, nogil=True, fastmath=True)
def refine(
    y: np.ndarray, pos: np.ndarray, w: np.ndarray, rep: np.ndarray, neg_pos: np.ndarray, alphas: np.ndarray,
) -> None:
    """Refine ``y`` float32 [Q, 2] in place: per epoch ``e``, attraction to ``pos`` [Q, 2, k] (the references'
    layout positions) weighted by ``w`` [Q, k], plus ``rep`` [Q] times the mean clipped repulsion from
    ``neg_pos`` [E, 2, n] (the epoch's negatives, shared by all points), scaled by ``alphas`` [E].

    One thread, as the layout epoch (``layout_cpu.epoch``): the machine it is tuned for has two loaded cores.
    """
    n_epochs, n_neg = neg_pos.shape[0], neg_pos.shape[2]
    k = pos.shape[2]
    fn = np.float32(n_neg)
    for q in range(y.shape[0]):
        yx, yy = y[q, 0], y[q, 1]
        for e in range(n_epochs):
            gx = np.float32(0)
            gy = np.float32(0)
            for j in range(k):
                dx = yx - pos[q, 0, j]
                dy = yy - pos[q, 1, j]
                d2 = max(dx * dx + dy * dy, TINY32)
                d2b = d2 ** B32
                c = ATTRACT32 * d2b / d2 / (_ONE + A32 * d2b)
                gx += _clip(c * dx) * w[q, j]
                gy += _clip(c * dy) * w[q, j]
            nx = np.float32(0)
            ny = np.float32(0)
            for j in range(n_neg):
                dx = yx - neg_pos[e, 0, j]
                dy = yy - neg_pos[e, 1, j]
                d2 = dx * dx + dy * dy
                c = REPEL32 / ((SOFT32 + d2) * (_ONE + A32 * d2 ** B32))
                nx += _clip(c * dx)
                ny += _clip(c * dy)
            gx += nx / fn * rep[q]
            gy += ny / fn * rep[q]
            yx += alphas[e] * gx
            yy += alphas[e] * gy
        y[q, 0], y[q, 1] = yx, yy
