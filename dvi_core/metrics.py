"""Quality metrics of a projection, as plain typed functions on arrays.

All values are fractions in [0, 1] except ``temporal_correlation`` (a Spearman correlation in
[-1, 1]). ``evaluate_step`` bundles them for one step, train and test; above ``EVAL_SAMPLES`` samples in a
split it averages the per-sample metrics over a fixed seeded subsample of that many samples (each still judged
against all samples of its split), which keeps a 60,000-sample step's evaluation to seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from .boundary import device_of, eval_mode
from .neighbors import exact_query, features_digest, knn, knn_rows

if TYPE_CHECKING:
    from .projector import StepProjection

_CHUNK = 1024


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row, the fraction of ``a``'s indices that also appear in ``b`` (same k)."""
    return (a[:, :, None] == b[:, None, :]).any(2).mean(1)


def neighbor_preserving_rate(knn_prev: np.ndarray, knn_now: np.ndarray) -> np.ndarray:
    """NPR per sample: fraction of its k high-dim neighbours at t-1 still among them at t."""
    return _overlap(knn_prev, knn_now)


def nn_preservation(X: np.ndarray, Y: np.ndarray, k: int = 15) -> float:
    """Mean fraction of each point's k nearest neighbours in ``X`` kept among its k nearest in ``Y``."""
    return float(_overlap(knn(X, k)[0], knn(Y, k)[0]).mean())


def boundary_preservation(
    X: np.ndarray, B: np.ndarray, Y: np.ndarray, YB: np.ndarray, k: int = 15
) -> float:
    """Mean fraction of each sample's k nearest boundary samples kept in 2-D (X, B high-dim; Y, YB 2-D)."""
    k = min(k, len(B))
    return float(_overlap(exact_query(B, X, k)[0], exact_query(YB, Y, k)[0]).mean())


def _predict(head: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray) -> np.ndarray:
    """Softmax of the head on ``X`` (a module runs in eval mode; its training mode is restored)."""
    with torch.no_grad(), eval_mode(head) as h:
        t = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device_of(head))
        return torch.softmax(torch.cat([h(t[s : s + 16384]) for s in range(0, len(t), 16384)]), 1).cpu().numpy()


def ppr(head: torch.nn.Module, X: np.ndarray, X_hat: np.ndarray) -> float:
    """Prediction preserving rate: fraction with argmax head(x) == argmax head(x_hat)."""
    return float((_predict(head, X).argmax(1) == _predict(head, X_hat).argmax(1)).mean())


def ccr(head: torch.nn.Module, X: np.ndarray, X_hat: np.ndarray) -> float:
    """Confidence change: mean |p(c|x) - p(c|x_hat)| for c = argmax head(x); 0 is perfect."""
    p, q = _predict(head, X), _predict(head, X_hat)
    c = p.argmax(1)
    rows = np.arange(len(c))
    return float(np.abs(p[rows, c] - q[rows, c]).mean())


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a, kind="stable"), kind="stable").astype(np.float64)
    rb = np.argsort(np.argsort(b, kind="stable"), kind="stable").astype(np.float64)
    # average ties so that many equal neighbour counts do not bias the ranks
    ra = _tie_average(a, ra)
    rb = _tie_average(b, rb)
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def _tie_average(v: np.ndarray, r: np.ndarray) -> np.ndarray:
    _, inv = np.unique(v, return_inverse=True)
    sums = np.bincount(inv, weights=r)
    counts = np.bincount(inv)
    return (sums / counts)[inv]


def temporal_correlation(
    X_prev: np.ndarray, X: np.ndarray, Y_prev: np.ndarray, Y: np.ndarray, k: int = 15, *,
    knn_prev: np.ndarray | None = None, knn_now: np.ndarray | None = None,
) -> float:
    """Spearman correlation between high-dim neighbour change (k - kept) and 2-D movement, per sample.

    ``knn_prev`` / ``knn_now``: the kNN graphs of ``X_prev`` / ``X`` when the caller already has them.
    """
    before = knn(X_prev, k)[0] if knn_prev is None else knn_prev
    now = knn(X, k)[0] if knn_now is None else knn_now
    change = 1.0 - neighbor_preserving_rate(before, now)
    move = np.linalg.norm(np.asarray(Y, np.float64) - np.asarray(Y_prev, np.float64), axis=1)
    return _spearman(change, move)


TRUST_QUERIES = 10_000
"""Above this many points, trustworthiness is estimated from this many seeded query points (exact ranks each)."""

EVAL_MAX_N = 8_000
"""Splits with at most this many samples are evaluated on every sample (the projection benchmark's 8,000 + 2,000
samples among them); larger ones on a subsample of :data:`EVAL_SAMPLES`."""

EVAL_SAMPLES = 2_000
"""Above :data:`EVAL_MAX_N` samples in a split, ``evaluate_step`` averages its per-sample metrics over a fixed
seeded subsample of this many (each sample still judged against all of its split): the full-N trustworthiness
alone costs N^2 x D (at 60,000 x 512 it was two thirds of a projected step). The per-sample values are fractions
with a spread of about 0.2, so such a mean's standard error is about 0.005; ``max_samples=None`` gives the full-N
values."""


def subsample_rows(n: int, max_samples: int | None, seed: int = 0, *, size: int | None = None) -> np.ndarray:
    """Sorted row indices of a seeded random subsample of ``size`` (default ``max_samples``) out of ``n`` when ``n``
    exceeds ``max_samples``, else all rows. The same ``n`` and seed give the same rows at every step, so steps are
    compared on the same samples."""
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    take = min(n, max_samples if size is None else size)
    return np.sort(np.random.default_rng(seed).choice(n, size=take, replace=False))


def trustworthiness(X: np.ndarray, Y: np.ndarray, k: int = 15, *, knn_y: np.ndarray | None = None,
                    max_queries: int | None = TRUST_QUERIES, seed: int = 0, rows: np.ndarray | None = None) -> float:
    """Trustworthiness (Venna & Kaski), as sklearn.manifold.trustworthiness, computed in chunks.

    For every 2-D neighbour that is not a high-dim neighbour, penalise its high-dim rank beyond k.
    ``knn_y``: the kNN graph of ``Y`` when the caller already has it ([N, k]; [len(rows), k], the graph of those
    rows, when ``rows`` is given). With more than ``max_queries`` points the penalty is averaged over a seeded
    random subset of that many points (each still ranked against all points): an unbiased estimate whose cost
    grows as N x max_queries instead of N^2 (at 60,000 points the exact sum took two thirds of a projected step).
    ``rows``: average over exactly these query rows instead (``max_queries`` and ``seed`` are then not used).
    """
    n = len(X)
    Xt = torch.as_tensor(np.asarray(X, np.float32))
    if rows is None:
        rows = subsample_rows(n, max_queries, seed)
        nn_rows = np.asarray(knn(Y, k)[0] if knn_y is None else knn_y)[rows]
    else:
        rows = np.asarray(rows, dtype=np.int64)
        nn_rows = knn_rows(np.asarray(Y, np.float32), rows, k)[0] if knn_y is None else knn_y
    nn_y = torch.as_tensor(np.asarray(nn_rows, dtype=np.int64))
    x2 = (Xt * Xt).sum(1)
    penalty = 0.0
    buf = torch.empty((min(_CHUNK, len(rows)), n), dtype=Xt.dtype)  # reused by every chunk: no fresh [chunk, N] each
    for s in range(0, len(rows), _CHUNK):
        idx = torch.as_tensor(rows[s : s + _CHUNK])
        q = Xt[idx]
        d2 = torch.addmm(x2[None], q, Xt.T, alpha=-2.0, out=buf[: len(q)]).add_((q * q).sum(1, keepdim=True))
        d2[torch.arange(len(q)), idx] = -1.0
        dn = d2.gather(1, nn_y[s : s + _CHUNK]).sort(1).values  # [c, k] high-dim distances of 2-D neighbours
        penalty += _rank_penalty(d2, dn, k)
    penalty *= n / len(rows)
    return 1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))


def _rank_penalty(d2: torch.Tensor, dn: torch.Tensor, k: int) -> float:
    """Sum over rows and thresholds of max(rank - k, 0), rank = #{d2[row] < dn[row, j]} (``dn`` sorted per row).

    One pass: each distance's bucket among the k sorted thresholds gives every threshold's count at once (instead
    of k full passes over [c, N], or a [c, k, N] tensor). Only distances below a row's largest threshold can count;
    when those are few (the usual case for a good map) only they are bucketed, row by row.
    """
    if d2.device.type == "cpu":  # one compiled pass, the same counts (a tenth of the time at 2,000 x 60,000)
        from .knn_select import rank_penalty

        return float(rank_penalty(d2.numpy(), dn.contiguous().numpy(), k))
    kk = dn.shape[1]
    keep = d2 < dn[:, -1:]
    if int(keep.sum()) < 0.05 * keep.numel():
        total = 0
        for row in range(d2.shape[0]):
            below = torch.bincount(torch.searchsorted(dn[row], d2[row][keep[row]], right=True), minlength=kk + 1)
            total += int((below.cumsum(0)[:kk] - k).clamp_min(0).sum())
        return float(total)
    reached = torch.searchsorted(dn.contiguous(), d2, right=True)  # thresholds <= each distance: [c, N]
    below = torch.zeros(len(d2), kk + 1, dtype=torch.int64).scatter_add_(1, reached, torch.ones_like(reached))
    return float((below.cumsum(1)[:, :kk] - k).clamp_min(0).sum())


def landscape_agreement(
    classes: np.ndarray, bounds: tuple[float, float, float, float], Y: np.ndarray, pred: np.ndarray
) -> float | None:
    """Fraction of dots whose landscape pixel has the dot's predicted class (what a user sees as "on its colour").

    ``classes`` int [R, R] is the landscape's class per pixel over ``bounds`` (row 0 = y_max, as rendered);
    ``Y`` [N, 2] the dots and ``pred`` [N] the head's class of each dot's sample. Dots outside ``bounds`` are
    not on the map and are not counted; None when no dot is on it.
    """
    R = classes.shape[0]
    x0, y0, x1, y1 = bounds
    col = np.floor((np.asarray(Y[:, 0], np.float64) - x0) / (x1 - x0) * R).astype(np.int64)
    row = np.floor((y1 - np.asarray(Y[:, 1], np.float64)) / (y1 - y0) * R).astype(np.int64)
    inside = (col >= 0) & (col < R) & (row >= 0) & (row < R)
    if not inside.any():
        return None
    return float((classes[row[inside], col[inside]] == np.asarray(pred)[inside]).mean())


def _neighbour_stack(a: np.ndarray) -> np.ndarray:
    """The 8 neighbours of every interior pixel of a 2-D array, [8, R-2, R-2]."""
    R0, R1 = a.shape
    return np.stack([a[1 + dy : R0 - 1 + dy, 1 + dx : R1 - 1 + dx]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)])


def speckle(classes: np.ndarray, boundary: np.ndarray) -> float:
    """Fraction of coloured interior pixels whose class (argmax) differs from at least 5 of their 8 neighbours'.

    ``classes`` int [R, R] per pixel, ``boundary`` bool [R, R] the white (decision-boundary) pixels. A white
    pixel whose 8 neighbours are all coloured with one class (a white hole inside a confident region) counts as
    a speckle too. Pixels on the image's edge (fewer than 8 neighbours) are not judged. 0 for a clean landscape.
    """
    if classes.shape[0] < 3 or classes.shape[1] < 3:
        return 0.0
    c, w = classes[1:-1, 1:-1], boundary[1:-1, 1:-1]
    nc, nw = _neighbour_stack(classes), _neighbour_stack(boundary)
    lonely = ~w & ((nc != c[None]).sum(0) >= 5)
    hole = w & ~nw.any(0) & (nc == nc[0][None]).all(0)
    coloured = int((~w).sum())
    return float((lonely.sum() + hole.sum()) / max(coloured, 1))


def _graph_rows(step: StepProjection, X: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """k nearest neighbours [len(rows), k] of the rows ``rows`` of ``X`` within ``X``: from the step's stored graph
    when ``X`` is what it was fit on, else an exact search of those rows only."""
    if step.knn_ is not None and step.knn_.shape == (len(X), k) and step.features_digest_ == features_digest(X):
        return np.asarray(step.knn_)[rows]
    return knn_rows(X, rows, k, device=step.device)[0]


def evaluate_step(
    step: StepProjection,
    head: torch.nn.Module,
    train_features: np.ndarray,
    *,
    test_features: np.ndarray | None = None,
    boundary: np.ndarray | None = None,
    test_boundary: np.ndarray | None = None,
    prev: StepProjection | None = None,
    prev_train_features: np.ndarray | None = None,
    prev_test_features: np.ndarray | None = None,
    k: int = 15,
    train_embedding: np.ndarray | None = None,
    test_embedding: np.ndarray | None = None,
    prev_train_embedding: np.ndarray | None = None,
    prev_test_embedding: np.ndarray | None = None,
    boundary_embedding: np.ndarray | None = None,
    bounds: tuple[float, float, float, float] | None = None,
    resolution: int = 256,
    max_samples: int | None = EVAL_MAX_N,
    seed: int = 0,
) -> dict[str, dict[str, float | None]]:
    """All metrics of one step for the train split and (when given) the test split.

    ``train_embedding`` / ``test_embedding``: ``step.transform`` of the split when the caller already has it;
    ``prev_train_embedding`` / ``prev_test_embedding``: ``prev.transform`` of the previous features (step t-1's
    positions of the same samples, e.g. from its stored result).
    ``boundary_embedding``: ``step.transform(boundary)`` when the caller already has it, e.g.
    ``step.boundary_embedding_`` when ``boundary`` are the points the step was fit with (references map exactly
    onto their layout positions, so this is the same quantity without placing them again).
    ``bounds``: the square box (x0, y0, x1, y1) of the landscape the user is shown (default ``step.bounds_``);
    the landscape metrics render it at ``resolution`` px.
    Returns ``{"train": {...}, "test": {...}}`` with keys nn, boundary, ppr, ccr, temporal, trustworthiness,
    landscape_agreement (fraction of the split's dots inside ``bounds`` lying on a pixel of their own predicted
    class) and speckle (fraction of the landscape's coloured pixels that are speckles or white holes, the same
    value in both splits); a value is None when its inputs are missing (temporal on the first step).

    Subsampled above ``max_samples`` samples in a split (default :data:`EVAL_MAX_N`; None: never): nn,
    boundary, ppr, ccr, temporal and trustworthiness are then averaged over a fixed seeded random subsample of
    :data:`EVAL_SAMPLES` of the split's samples (:func:`subsample_rows`, the same rows at every step), each sample's
    neighbours still being found among all samples of its split (and all boundary samples): unbiased estimates
    of the full-N means (temporal, a rank correlation, is computed on the subsample). landscape_agreement and
    speckle always use every dot and pixel.
    """
    from .landscape import class_grid

    box = tuple(bounds) if bounds is not None else step.bounds_
    classes, white = class_grid(step, head, bounds=box, resolution=resolution)
    spk = speckle(classes, white)
    out: dict[str, dict[str, float | None]] = {}
    splits = [("train", train_features, train_embedding, boundary, boundary_embedding, prev_train_features,
               prev_train_embedding),
              ("test", test_features, test_embedding, test_boundary, None, prev_test_features, prev_test_embedding)]
    if boundary is not None and boundary_embedding is not None and len(boundary_embedding) != len(boundary):
        raise ValueError(
            f"The 'boundary_embedding' parameter of evaluate_step must hold one position per boundary sample "
            f"({len(boundary)}). Got {len(boundary_embedding)} instead."
        )
    for name, X, Y, Bd, Bd_y, Xp, Yp in splits:
        if X is None:
            out[name] = dict.fromkeys(("nn", "boundary", "ppr", "ccr", "temporal", "trustworthiness",
                                       "landscape_agreement", "speckle"))
            continue
        X = np.asarray(X, np.float32)
        Y = step.transform(X) if Y is None else np.asarray(Y, np.float32)
        rows = subsample_rows(len(X), max_samples, seed, size=EVAL_SAMPLES)
        sub = len(rows) < len(X)
        # each graph once, only for the evaluated rows; the step's own stored graph when X is its data
        knn_x = _graph_rows(step, X, rows, k) if sub else step.knn_of(X, k)
        knn_y = knn_rows(Y, rows, k)[0] if sub else knn(Y, k)[0]
        Xs, Ys = (X[rows], Y[rows]) if sub else (X, Y)
        p, q = _predict(head, Xs), _predict(head, step.inverse_transform(Ys))
        r = np.arange(len(p))
        c = p.argmax(1)
        res: dict[str, float | None] = {
            "nn": float(_overlap(knn_x, knn_y).mean()),
            "boundary": None if Bd is None else boundary_preservation(
                Xs, Bd, Ys, step.transform(Bd) if Bd_y is None else np.asarray(Bd_y, np.float32), k),
            "ppr": float((c == q.argmax(1)).mean()),
            "ccr": float(np.abs(p[r, c] - q[r, c]).mean()),
            "temporal": None,
            "trustworthiness": trustworthiness(X, Y, k, knn_y=knn_y, rows=rows),
            "landscape_agreement": landscape_agreement(classes, box, Y, _predict(head, X).argmax(1) if sub else c),
            "speckle": spk,
        }
        if prev is not None and Xp is not None:
            knn_p = _graph_rows(prev, Xp, rows, k) if sub else prev.knn_of(Xp, k)
            Yp_rows = prev.transform(Xp[rows]) if Yp is None else np.asarray(Yp)[rows]
            change = 1.0 - neighbor_preserving_rate(knn_p, knn_x)
            move = np.linalg.norm(np.asarray(Ys, np.float64) - np.asarray(Yp_rows, np.float64), axis=1)
            res["temporal"] = _spearman(change, move)
        out[name] = res
    return out
