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

# UMAP's constants (dvi_core.losses) as float32, for this module's and placement_cpu's compiled loops
A32 = np.float32(A)
B32 = np.float32(B)
CLIP32 = np.float32(GRAD_CLIP)
ATTRACT32 = np.float32(-2.0 * A * B)
REPEL32 = np.float32(2.0 * B)
TINY32 = np.float32(1e-12)
SOFT32 = np.float32(0.001)


@numba.njit(cache=True, nogil=True)
def _clip(v: np.float32) -> np.float32:
    return max(-CLIP32, min(CLIP32, v))


@numba.njit(cache=True, nogil=True)
def epoch(
    Y: np.ndarray, head: np.ndarray, tail: np.ndarray, neg: np.ndarray, alpha: np.float32,
    attract_step: np.float32, mobility: np.ndarray, upd: np.ndarray,
) -> None:
    """One epoch in place on ``Y`` float32 [V, 2]: attraction along ``head -> tail`` (the sampled directed edges,
    int64 [P]), repulsion of each head from ``neg`` int64 [n_negatives * P] (negative ``j * P + p`` belongs to
    edge ``p``), clipped per term at ``GRAD_CLIP``; ``upd`` float32 [V, 2] is scratch space, ``mobility``
    float32 [V] scales each vertex's summed update (all ones: no scaling).

    One thread: on the loaded 2-core machine two numba threads (the edges split in halves) measured slower, 0.16 to
    0.19 s an epoch over the 60,000-sample graph against 0.10 s; one also keeps the torch epoch's summation order.
    """
    upd[:] = 0
    n = head.shape[0]
    for p in range(n):
        h, t = head[p], tail[p]
        dx = Y[h, 0] - Y[t, 0]
        dy = Y[h, 1] - Y[t, 1]
        d2 = max(dx * dx + dy * dy, TINY32)
        d2b = d2 ** B32
        c = ATTRACT32 * d2b / d2 / (np.float32(1) + A32 * d2b)
        upd[h, 0] += _clip(c * dx) * attract_step
        upd[h, 1] += _clip(c * dy) * attract_step
    for j in range(neg.shape[0] // max(n, 1)):
        for p in range(n):
            h, o = head[p], neg[j * n + p]
            dx = Y[h, 0] - Y[o, 0]
            dy = Y[h, 1] - Y[o, 1]
            d2 = dx * dx + dy * dy
            c = REPEL32 / ((SOFT32 + d2) * (np.float32(1) + A32 * d2 ** B32))  # its own negative: dx = dy = 0
            upd[h, 0] += _clip(c * dx) * alpha
            upd[h, 1] += _clip(c * dy) * alpha
    for v in range(Y.shape[0]):
        Y[v, 0] += upd[v, 0] * mobility[v]
        Y[v, 1] += upd[v, 1] * mobility[v]


@numba.njit(cache=True, nogil=True)
def sample_edges(draws: np.ndarray, prob: np.ndarray, out: np.ndarray) -> int:
    """Write the positions ``e`` with ``draws[e] < prob[e]`` into ``out`` in order; return how many
    (``(draws < prob).nonzero()``, which costs torch several times this loop)."""
    count = 0
    for e in range(draws.shape[0]):
        if draws[e] < prob[e]:
            out[count] = e
            count += 1
    return count
