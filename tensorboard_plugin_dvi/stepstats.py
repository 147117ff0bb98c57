"""Per-step geometry and accuracy statistics of a run (SentryCam's signals), folded in one step at a time.

For every logged step, from its features ``x`` [N, D], logits, labels ``y`` and split:

* ``spread[c]``: the root-mean-square distance of class ``c``'s samples to their centroid ``mu_c``;
* ``centroid_dist[a, b]``: ``||mu_a - mu_b||``;
* ``separation[c]``: ``min_{b != c} ||mu_c - mu_b|| / sqrt((spread_c^2 + spread_b^2) / 2)``, how many pooled spreads
  away the nearest other class's centroid is. It does not change when the features are scaled, rotated or
  translated, so it can be compared across steps although the representation itself moves;
  ``mean_separation`` is its mean over the classes present;
* ``accuracy[s, c]``: per-class accuracy on each split (0 test, 1 train), and ``confusion[a, b]``, how many samples
  of class ``a`` (on the watched split, below) are predicted as ``b``; ``grown`` lists the confusions whose rate
  rose most since the previous step;
* ``neighbour_change``: over a fixed probe of at most ``probe`` samples (chosen once, from the first step), the mean
  fraction of each sample's ``k`` nearest neighbours (within the probe, in feature space) that are new since the
  previous step. 0 means the representation kept its local structure, 1 that it was reshuffled.

The *watched* split, on which accuracies and confusions feed the alarms, is the test split when the step logged
test samples (held-out data, as SentryCam monitors) and the training split otherwise.

Where a step is projected (:meth:`StepStatistics.add_positions`), the same spread and separation are computed on
the map, and ``displacement``, the mean distance a sample moved on the map since the previous projected step, in
map widths (estimated over the probe samples, so that a long log keeps only probe x 2 coordinates per step).

Every statistic of a step depends only on that step (and the previous one), so :meth:`StepStatistics.add_step` costs
one pass over the step's features: about one [C, N] x [N, D] product for the centroids plus a probe x probe
distance matrix for the neighbours.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tensorboard_plugin_dvi.dynamics import Positions, StepInput, class_accuracy, step_quantities

PROBE = 1000
"""Samples in the fixed neighbour probe (``k``-NN sets are computed within it: probe^2 distances a step)."""

K_NEIGHBOURS = 10
"""Neighbours per probe sample for ``neighbour_change``."""

GROWN_MIN = 0.05
"""A confusion rate must have risen by at least this much since the previous step to be listed in ``grown``."""

GROWN_TOP = 5
"""At most this many grown confusions are listed per step."""


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Class geometry of one point cloud: per-class counts, spread, centroid distances and separation."""

    counts: np.ndarray  # [C] samples per class
    spread: np.ndarray  # [C] RMS distance to the class centroid, NaN for an empty class
    centroid_dist: np.ndarray  # [C, C], NaN where a class is empty
    separation: np.ndarray  # [C], NaN for an empty class or when no other class is present

    @property
    def mean_separation(self) -> float:
        """Mean separation over the classes where it is defined (NaN when none is)."""
        ok = np.isfinite(self.separation)
        return float(self.separation[ok].mean()) if ok.any() else float("nan")


@dataclasses.dataclass(frozen=True)
class MapStats:
    """Geometry of one projected step on the map, and how far samples moved since the previous projected step."""

    step: int
    geometry: Geometry
    displacement: float  # mean move in map widths; NaN at the first projected step
    since: int | None  # the previous projected step the displacement is measured from


@dataclasses.dataclass(frozen=True)
class StepStats:
    """Everything :class:`StepStatistics` computes for one logged step (see the module docstring)."""

    step: int
    n: int
    geometry: Geometry
    accuracy: np.ndarray  # [2, C] per split (0 test, 1 train) and class; NaN where a class has no sample
    watched: int  # split the alarms read: 0 test, 1 train
    watched_counts: np.ndarray  # [C] samples per class on the watched split
    confusion: np.ndarray  # [C, C] int64 counts label -> prediction on the watched split
    grown: list[dict[str, Any]]  # confusions whose rate rose most since the previous step
    neighbour_change: float  # NaN at the first step or when the probe is too small

    @property
    def watched_accuracy(self) -> np.ndarray:
        """Per-class accuracy on the watched split [C]."""
        return self.accuracy[self.watched]

    @property
    def watched_informedness(self) -> np.ndarray:
        """Per-class informedness on the watched split [C]: its accuracy minus the fraction of the *other* classes'
        samples predicted as it (Youden's J). 0 for a model that predicts the class for everything or at random."""
        hits = np.diag(self.confusion)
        others = self.confusion.sum() - self.confusion.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            false_rate = np.where(others > 0, (self.confusion.sum(0) - hits) / others, 0.0)
        return self.watched_accuracy - false_rate

    @property
    def overall_accuracy(self) -> float:
        """Accuracy over all samples of the watched split."""
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")


def geometry(x: np.ndarray, labels: np.ndarray, n_classes: int) -> Geometry:
    """Per-class spread, centroid distances and separation of points ``x`` [N, D] labelled ``labels``.

    Centroids come from one [D, N] x [N, C] one-hot product; spreads from per-class sums of squared norms
    (``E||x||^2 - ||mu||^2``, in float64).
    """
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y, minlength=n_classes)[:n_classes].astype(np.int64)
    onehot = np.zeros((n_classes, len(y)), np.float32)
    onehot[y, np.arange(len(y))] = 1.0
    present = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        # x.T @ onehot.T rather than onehot @ x: the same product, but OpenBLAS runs the wide-and-short form up to
        # 25x slower with two threads on a busy machine (550 ms against 20 ms for 10,000 x 256).
        mu = (x.T @ onehot.T).T.astype(np.float64) / counts[:, None]
        sq = np.bincount(y, weights=np.einsum("ij,ij->i", x, x, dtype=np.float64), minlength=n_classes)[:n_classes]
        spread = np.sqrt(np.maximum(sq / counts - (mu ** 2).sum(1), 0.0))
    spread[~present] = np.nan
    gram = mu @ mu.T
    norms = np.diag(gram)
    dist = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0.0))
    np.fill_diagonal(dist, 0.0)
    dist[~present, :] = np.nan
    dist[:, ~present] = np.nan
    scale = float(np.sqrt(sq.sum() / max(len(y), 1))) if len(y) else 0.0
    return Geometry(counts, spread, dist, _separation(dist, spread, 1e-6 * scale))


def _separation(dist: np.ndarray, spread: np.ndarray, tiny: float = 0.0) -> np.ndarray:
    """``min_{b != c} dist[c, b] / sqrt((spread_c^2 + spread_b^2) / 2)`` per class (NaN when undefined).

    Distances and spreads below ``tiny`` (a millionth of the points' RMS norm) are rounding noise: a pair of
    classes whose centroids coincide has separation 0 even when their spreads vanish too (features that all died).
    """
    pooled = np.sqrt((spread[:, None] ** 2 + spread[None, :] ** 2) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(dist <= tiny, 0.0, dist / np.maximum(pooled, max(tiny, 1e-30)))
    np.fill_diagonal(ratio, np.nan)
    ratio[~np.isfinite(ratio)] = np.inf
    best = ratio.min(1) if len(ratio) else np.zeros(0)
    return np.where(np.isfinite(best), best, np.nan)


def knn_sets(x: np.ndarray, k: int) -> np.ndarray:
    """Indices [M, k] of each point's ``k`` nearest other points among ``x`` [M, D] (Euclidean, unordered)."""
    x = np.asarray(x, dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x)
    d = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d, np.inf)
    return np.argpartition(d, k - 1, axis=1)[:, :k]


def neighbour_overlap(before: np.ndarray, after: np.ndarray, m: int) -> float:
    """Mean fraction of each point's neighbours (rows of two [M, k] index sets over ``m`` points) kept."""
    if len(before) == 0:
        return float("nan")
    rows = np.arange(len(before))[:, None]
    member = np.zeros((len(before), m), bool)
    member[rows, before] = True
    return float(member[rows, after].mean())


def grown_confusions(rate: np.ndarray, previous: np.ndarray | None) -> list[dict[str, Any]]:
    """The off-diagonal confusion rates (label -> prediction) that rose by at least :data:`GROWN_MIN`, largest
    rise first, at most :data:`GROWN_TOP`."""
    if previous is None:
        return []
    rise = np.nan_to_num(rate - previous, nan=0.0)
    np.fill_diagonal(rise, 0.0)
    flat = np.argsort(-rise, axis=None)[:GROWN_TOP]
    out = []
    for a, b in zip(*np.unravel_index(flat, rise.shape), strict=True):
        if rise[a, b] >= GROWN_MIN:
            out.append({"label": int(a), "pred": int(b), "before": round(float(previous[a, b]), 4),
                        "now": round(float(rate[a, b]), 4)})
    return out


def _confusion(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(labels * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _rates(confusion: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return confusion / confusion.sum(1, keepdims=True)


class StepStatistics:
    """Running per-step statistics of one run, steps added in increasing order (see the module docstring).

    ``probe`` and ``k`` set the neighbour probe; ``seed`` chooses its samples (among the first step's ids).
    """

    def __init__(self, n_classes: int | None = None, *, probe: int = PROBE, k: int = K_NEIGHBOURS,
                 seed: int = 0) -> None:
        self.n_classes = n_classes
        self.probe, self.k, self.seed = probe, k, seed
        self.steps: list[StepStats] = []
        self.maps: dict[int, MapStats] = {}
        self._probe_ids: np.ndarray | None = None
        self._probe_knn: tuple[np.ndarray, np.ndarray] | None = None  # (probe ids present, their k-NN as ids)
        self._prev_rate: np.ndarray | None = None
        self._label_ids = np.zeros(0, np.int64)  # sorted ids seen so far and their latest labels (for positions)
        self._label_values = np.zeros(0, np.int64)
        self._xy: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # projected step -> probe ids, their map positions

    def add_step(self, item: StepInput, features: np.ndarray) -> StepStats:
        """Fold one step (its arrays and features [N, D]) in; returns its statistics."""
        if self.steps and item.step <= self.steps[-1].step:
            raise ValueError(f"Steps must be added in increasing order: got {item.step} after "
                             f"{self.steps[-1].step}.")
        x = np.asarray(features)
        if x.ndim != 2 or len(x) != len(item.ids) or x.dtype.kind != "f" or not np.isfinite(x).all():
            raise ValueError(f"step {item.step}: features must be finite floats [{len(item.ids)}, D], got "
                             f"{x.dtype} {x.shape}")
        ids = np.asarray(item.ids, np.int64)
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"step {item.step}: sample ids within a step must be unique")
        c = item.logits.shape[1]
        if self.n_classes is None:
            self.n_classes = c
        if c != self.n_classes:
            raise ValueError(f"Step {item.step} has {c} classes; earlier steps had {self.n_classes}.")
        labels = np.asarray(item.labels, np.int64)
        q = step_quantities(item.logits, labels)
        accuracy = class_accuracy(labels, q["correct"], item.split, c)
        train = np.asarray(item.split).astype(bool)
        watched = 0 if (~train).any() else 1
        mask = train if watched else ~train
        confusion = _confusion(labels[mask], q["pred"][mask], c)
        rate = _rates(confusion)
        stats = StepStats(item.step, len(labels), geometry(x, labels, c), accuracy, watched,
                          confusion.sum(1), confusion, grown_confusions(rate, self._prev_rate),
                          self._neighbour_change(ids, x))
        self._prev_rate = rate
        self._remember_labels(ids, labels)
        self.steps.append(stats)
        return stats

    def _neighbour_change(self, ids: np.ndarray, x: np.ndarray) -> float:
        """``1 - overlap`` of the probe's k-NN sets with the previous step's (the probe samples both steps hold)."""
        if self._probe_ids is None:
            rng = np.random.default_rng(self.seed)
            chosen = rng.choice(len(ids), size=min(self.probe, len(ids)), replace=False)
            self._probe_ids = np.sort(ids[chosen])
        order = np.argsort(ids)
        pos = np.searchsorted(ids, self._probe_ids, sorter=order)
        pos = np.minimum(pos, len(ids) - 1)
        found = ids[order[pos]] == self._probe_ids
        present, rows = self._probe_ids[found], order[pos[found]]
        if len(present) <= self.k:
            self._probe_knn = None
            return float("nan")
        knn = present[knn_sets(x[rows], self.k)]
        previous, self._probe_knn = self._probe_knn, (present, knn)
        if previous is None:
            return float("nan")
        return self._change(previous, (present, knn))

    def _change(self, before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]) -> float:
        """Neighbour change over the probe samples present at both steps (neighbour sets given as ids)."""
        ids_b, knn_b = before
        ids_a, knn_a = after
        if not np.array_equal(ids_b, ids_a):  # some probe samples came or went: compare the common ones
            common = np.intersect1d(ids_b, ids_a)
            knn_b, knn_a = knn_b[np.searchsorted(ids_b, common)], knn_a[np.searchsorted(ids_a, common)]
            ids_a = common
        universe = np.union1d(ids_b, ids_a)
        kept = neighbour_overlap(np.searchsorted(universe, knn_b), np.searchsorted(universe, knn_a), len(universe))
        return 1.0 - kept

    def _remember_labels(self, ids: np.ndarray, labels: np.ndarray) -> None:
        if np.array_equal(self._label_ids, ids):
            self._label_values = labels.copy()
            return
        merged = np.concatenate([ids, self._label_ids])
        values = np.concatenate([labels, self._label_values])
        self._label_ids, first = np.unique(merged, return_index=True)  # the newest label of each id wins
        self._label_values = values[first]

    def labels_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(known, labels)``: which ``ids`` were logged at some step, and their latest labels."""
        ids = np.asarray(ids, np.int64)
        pos = np.minimum(np.searchsorted(self._label_ids, ids), max(len(self._label_ids) - 1, 0))
        known = (self._label_ids[pos] == ids) if len(self._label_ids) else np.zeros(len(ids), bool)
        return known, self._label_values[pos[known]] if len(self._label_ids) else np.zeros(0, np.int64)

    # -- the map ---------------------------------------------------------------------------------------------------

    def add_positions(self, pos: Positions) -> MapStats:
        """Geometry of a projected step on the map (coordinates in map widths) and its displacement since the
        previous projected step held here; a step may be added again (re-projected) or out of order."""
        width = pos.width if pos.width > 0 else 1.0
        known, labels = self.labels_of(pos.ids)
        ids = np.asarray(pos.ids, np.int64)[known]
        xy = np.asarray(pos.xy, np.float64)[known] / width
        geo = geometry(xy, labels, self.n_classes or int(labels.max(initial=0)) + 1)
        keep = np.isin(ids, self._probe_ids if self._probe_ids is not None else ids)
        order = np.argsort(ids[keep])
        self._xy[pos.step] = (ids[keep][order], xy[keep][order].astype(np.float32))
        self.maps[pos.step] = self._map_stats(pos.step, geo)
        later = [s for s in sorted(self._xy) if s > pos.step]
        if later:  # the next projected step's displacement is now measured from this one
            nxt = later[0]
            self.maps[nxt] = self._map_stats(nxt, self.maps[nxt].geometry)
        return self.maps[pos.step]

    def _map_stats(self, step: int, geo: Geometry) -> MapStats:
        earlier = [s for s in self._xy if s < step]
        if not earlier:
            return MapStats(step, geo, float("nan"), None)
        since = max(earlier)
        return MapStats(step, geo, mean_displacement(*self._xy[since], *self._xy[step]), since)


def mean_displacement(ids_a: np.ndarray, xy_a: np.ndarray, ids_b: np.ndarray, xy_b: np.ndarray) -> float:
    """Mean distance between the two positions of the samples present in both ``(ids, xy)`` sets."""
    _, ia, ib = np.intersect1d(ids_a, ids_b, assume_unique=True, return_indices=True)
    if not len(ia):
        return float("nan")
    return float(np.sqrt(((xy_a[ia].astype(np.float64) - xy_b[ib]) ** 2).sum(1)).mean())
