"""Quality metrics of a projection, as plain typed functions on arrays.

All values are fractions in [0, 1] except ``temporal_correlation`` (a Spearman correlation in
[-1, 1]). ``evaluate_step`` bundles them for one step, train and test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from .boundary import device_of, eval_mode
from .neighbors import exact_query, knn

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


def trustworthiness(X: np.ndarray, Y: np.ndarray, k: int = 15, *, knn_y: np.ndarray | None = None,
                    max_queries: int | None = TRUST_QUERIES, seed: int = 0) -> float:
    """Trustworthiness (Venna & Kaski), as sklearn.manifold.trustworthiness, computed in chunks.

    For every 2-D neighbour that is not a high-dim neighbour, penalise its high-dim rank beyond k.
    ``knn_y``: the kNN graph of ``Y`` when the caller already has it. With more than ``max_queries`` points the
    penalty is averaged over a seeded random subset of that many points (each still ranked against all points):
    an unbiased estimate whose cost grows as N x max_queries instead of N^2 (at 60,000 points the exact sum took
    two thirds of a projected step).
    """
    n = len(X)
    Xt = torch.as_tensor(np.asarray(X, np.float32))
    nn_y = torch.as_tensor(knn(Y, k)[0] if knn_y is None else knn_y)
    rows_all = np.arange(n)
    if max_queries is not None and n > max_queries:
        rows_all = np.sort(np.random.default_rng(seed).choice(n, size=max_queries, replace=False))
    x2 = (Xt * Xt).sum(1)
    penalty = 0.0
    for s in range(0, len(rows_all), _CHUNK):
        idx = torch.as_tensor(rows_all[s : s + _CHUNK])
        q = Xt[idx]
        d2 = (q * q).sum(1, keepdim=True) + x2[None] - 2 * q @ Xt.T
        d2[torch.arange(len(q)), idx] = -1.0
        dn = d2.gather(1, nn_y[idx])  # [c, k] high-dim distances of 2-D neighbours
        for j in range(dn.shape[1]):  # one neighbour at a time: a [c, N] comparison, not [c, k, N]
            rank = (d2 < dn[:, j : j + 1]).sum(1)  # self (-1) counts: 1-based rank among others
            penalty += float((rank - k).clamp_min(0).sum())
    penalty *= n / len(rows_all)
    return 1.0 - penalty * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))


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
    bounds: tuple[float, float, float, float] | None = None,
    resolution: int = 256,
) -> dict[str, dict[str, float | None]]:
    """All metrics of one step for the train split and (when given) the test split.

    ``train_embedding`` / ``test_embedding``: ``step.transform`` of the split when the caller already has it.
    ``bounds``: the square box (x0, y0, x1, y1) of the landscape the user is shown (default ``step.bounds_``);
    the landscape metrics render it at ``resolution`` px.
    Returns ``{"train": {...}, "test": {...}}`` with keys nn, boundary, ppr, ccr, temporal, trustworthiness,
    landscape_agreement (fraction of the split's dots inside ``bounds`` lying on a pixel of their own predicted
    class) and speckle (fraction of the landscape's coloured pixels that are speckles or white holes, the same
    value in both splits); a value is None when its inputs are missing (temporal on the first step).
    """
    from .landscape import class_grid

    box = tuple(bounds) if bounds is not None else step.bounds_
    classes, white = class_grid(step, head, bounds=box, resolution=resolution)
    spk = speckle(classes, white)
    out: dict[str, dict[str, float | None]] = {}
    splits = [("train", train_features, train_embedding, boundary, prev_train_features),
              ("test", test_features, test_embedding, test_boundary, prev_test_features)]
    for name, X, Y, Bd, Xp in splits:
        if X is None:
            out[name] = dict.fromkeys(("nn", "boundary", "ppr", "ccr", "temporal", "trustworthiness",
                                       "landscape_agreement", "speckle"))
            continue
        Y = step.transform(X) if Y is None else Y
        X_hat = step.inverse_transform(Y)
        knn_x, knn_y = step.knn_of(X, k), knn(Y, k)[0]  # each graph once; the step's own when X is its data
        p, q = _predict(head, X), _predict(head, X_hat)
        rows = np.arange(len(p))
        c = p.argmax(1)
        res: dict[str, float | None] = {
            "nn": float(_overlap(knn_x, knn_y).mean()),
            "boundary": None if Bd is None else boundary_preservation(X, Bd, Y, step.transform(Bd), k),
            "ppr": float((c == q.argmax(1)).mean()),
            "ccr": float(np.abs(p[rows, c] - q[rows, c]).mean()),
            "temporal": None,
            "trustworthiness": trustworthiness(X, Y, k, knn_y=knn_y),
            "landscape_agreement": landscape_agreement(classes, box, Y, c),
            "speckle": spk,
        }
        if prev is not None and Xp is not None:
            res["temporal"] = temporal_correlation(Xp, X, prev.transform(Xp), Y, k,
                                                   knn_prev=prev.knn_of(Xp, k), knn_now=knn_x)
        out[name] = res
    return out
