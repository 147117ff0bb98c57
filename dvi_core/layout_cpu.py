"""The layout epoch as one compiled pass over the sampled edges (numba), for ``layout.optimize_layout`` on the CPU.

Why: the torch epoch (``layout._epoch``) makes a dozen passes over arrays as long as the sampled edges and their
negatives (gather, subtract, power, clip, scatter), which at 60,000 samples costs about three times what one fused
loop does. This is the same arithmetic, in the same order, for given sampled edges and negatives (``sample_epoch``
draws them here, from the same distribution as the torch epoch but not the same numbers): every update of the
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


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U24 = np.float32(1.0 / (1 << 24))


@numba.njit(cache=True, nogil=True, inline="always")
def _splitmix(s: np.uint64) -> tuple[np.uint64, np.uint64]:
    """SplitMix64: the next state and a well-mixed 64-bit draw from it."""
    s = s + _GOLDEN
    z = (s ^ (s >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return s, z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True)
def sample_epoch(
    prob: np.ndarray, head: np.ndarray, tail: np.ndarray, n_vertices: int, n_negatives: int, state: np.ndarray,
    out_head: np.ndarray, out_tail: np.ndarray, out_neg: np.ndarray,
) -> int:
    """One epoch's draws in one pass: each directed edge ``e`` is kept with probability ``prob[e]`` (its head and
    tail written in order into ``out_head``/``out_tail``), then ``n_negatives`` uniform vertices per kept edge into
    ``out_neg`` (negative ``j * P + p`` belongs to kept edge ``p``, as ``epoch`` reads them); returns P.

    Why: drawing the uniforms and the negatives with torch's generator and selecting the kept edges took about as
    long as the epoch's own updates on a warm step at 8,000 samples; SplitMix64 (``state`` uint64 [1], advanced in
    place, seeded by the caller) costs about a nanosecond a draw and needs no intermediate arrays.
    """
    s = state[0]
    count = 0
    for e in range(prob.shape[0]):  # branch-free: the kept edges' order is random, a branch would mispredict
        s, u = _splitmix(s)
        out_head[count] = head[e]
        out_tail[count] = tail[e]
        count += np.float32(u >> np.uint64(40)) * _U24 < prob[e]
    n, low = np.uint64(n_vertices), np.uint64(0xFFFFFFFF)
    total = count * n_negatives
    for i in range(0, total, 2):  # two negatives per draw, from its high and low 32 bits (Lemire's multiply-shift)
        s, u = _splitmix(s)
        out_neg[i] = np.int64(((u >> np.uint64(32)) * n) >> np.uint64(32))
        if i + 1 < total:
            out_neg[i + 1] = np.int64(((u & low) * n) >> np.uint64(32))
    state[0] = s
    return count
