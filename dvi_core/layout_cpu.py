"""The layout epoch as one compiled pass over the sampled edges (numba), for ``layout.optimize_layout`` on the CPU.

Why: the torch epoch (``layout._epoch``) makes a dozen passes over arrays as long as the sampled edges and their
negatives (gather, subtract, power, clip, scatter), which at 60,000 samples costs about three times what one fused
loop does. This is the same arithmetic, in the same order, on the same sampled edges and negatives (drawn by the
caller's torch generator, so a seed gives the same layout on either path up to float rounding): every update of the
epoch is computed from the positions at its start, summed per vertex, scaled by the vertex's mobility and applied
at the end. ``cache=True`` keeps the compiled code on disk, so only the first use on a machine pays the compile.
"""

from __future__ import annotations

import numba
import numpy as np

from .losses import GRAD_CLIP, A, B

_A = np.float32(A)
_B = np.float32(B)
_CLIP = np.float32(GRAD_CLIP)
_ATTRACT = np.float32(-2.0 * A * B)
_REPEL = np.float32(2.0 * B)
_TINY = np.float32(1e-12)
_SOFT = np.float32(0.001)


@numba.njit(cache=True, nogil=True)
def _clip(v: np.float32) -> np.float32:
    return max(-_CLIP, min(_CLIP, v))


#: The sampled edges are split into this many fixed parts, each summed into its own update buffer (in parallel when
#: numba has threads); the buffers are added in order, so a seed gives the same layout on any number of threads.
PARTS = 2


@numba.njit(cache=True, nogil=True)
def _updates(
    Y: np.ndarray, head: np.ndarray, tail: np.ndarray, neg: np.ndarray, lo: int, hi: int, alpha: np.float32,
    attract_step: np.float32, upd: np.ndarray,
) -> None:
    """Sum the updates of sampled edges ``lo:hi`` (attraction, then their negatives) into ``upd`` [V, 2]."""
    upd[:] = 0
    n = head.shape[0]
    for p in range(lo, hi):
        h, t = head[p], tail[p]
        dx = Y[h, 0] - Y[t, 0]
        dy = Y[h, 1] - Y[t, 1]
        d2 = max(dx * dx + dy * dy, _TINY)
        d2b = d2 ** _B
        c = _ATTRACT * d2b / d2 / (np.float32(1) + _A * d2b)
        upd[h, 0] += _clip(c * dx) * attract_step
        upd[h, 1] += _clip(c * dy) * attract_step
    for j in range(neg.shape[0] // max(n, 1)):
        for p in range(lo, hi):
            h, o = head[p], neg[j * n + p]
            dx = Y[h, 0] - Y[o, 0]
            dy = Y[h, 1] - Y[o, 1]
            d2 = dx * dx + dy * dy
            c = _REPEL / ((_SOFT + d2) * (np.float32(1) + _A * d2 ** _B))  # a vertex drawn as its own negative: dx = 0
            upd[h, 0] += _clip(c * dx) * alpha
            upd[h, 1] += _clip(c * dy) * alpha


@numba.njit(cache=True, nogil=True, parallel=True)
def epoch(
    Y: np.ndarray, head: np.ndarray, tail: np.ndarray, neg: np.ndarray, alpha: np.float32,
    attract_step: np.float32, mobility: np.ndarray, upd: np.ndarray,
) -> None:
    """One epoch in place on ``Y`` float32 [V, 2]: attraction along ``head -> tail`` (the sampled directed edges,
    int64 [P]), repulsion of each head from ``neg`` int64 [n_negatives * P] (negative ``j * P + p`` belongs to
    edge ``p``), clipped per term at ``GRAD_CLIP``; ``upd`` float32 [PARTS, V, 2] is scratch space, ``mobility``
    float32 [V] scales each vertex's summed update (all ones: no scaling)."""
    n = head.shape[0]
    for part in numba.prange(PARTS):
        _updates(Y, head, tail, neg, part * n // PARTS, (part + 1) * n // PARTS, alpha, attract_step, upd[part])
    for v in range(Y.shape[0]):
        dx, dy = upd[0, v, 0], upd[0, v, 1]
        for part in range(1, PARTS):
            dx += upd[part, v, 0]
            dy += upd[part, v, 1]
        Y[v, 0] += dx * mobility[v]
        Y[v, 1] += dy * mobility[v]
