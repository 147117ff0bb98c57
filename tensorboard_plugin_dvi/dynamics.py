"""Per-sample training dynamics from the logits logged at each step, kept up to date one step at a time.

For every sample and every logged step where it appears, the step's logits ``z`` and the sample's given label ``y``
yield: whether it is predicted correctly, the predicted class, the softmax confidence in the given label
``p_y = softmax(z)_y`` and the logit margin of the given label ``m = z_y - max_{j != y} z_j``. Over the steps where a
sample appears these give:

* ``aum``: the area under the margin, the mean of ``m`` (Pleiss et al. 2020). Negative means the model, on average,
  prefers another class to the given label.
* ``confidence`` and ``variability``: the mean and the population standard deviation of ``p_y`` (the two axes of a
  data map, Swayamdipta et al. 2020).
* ``correctness``: the fraction of steps predicted correctly.
* ``forgetting``: the number of forgetting events, a step predicted correctly followed (at the sample's next
  appearance) by a wrong one (Toneva et al. 2019).
* ``learned_from``: the step from which the sample stays predicted correctly up to its latest appearance, or -1 when
  its latest prediction is wrong (not learned).
* ``flips``: how often the predicted class changed between consecutive appearances.
* ``mode_pred`` / ``mode_count``: the wrong class predicted most often and at how many steps (for reasons in words).
* the latest step's prediction, self-confidence ``p_y`` and confidence in the prediction.

Where steps have been projected (:meth:`Dynamics.add_positions`), each sample's 2-D path gives ``path_length`` and
``max_jump`` (in map widths, between consecutive projected steps) and ``steps_other_region``, the projected steps
at which the sample lay in the region of a class other than its label (when the map's region classes are known).

Every statistic is a running sum or a last value, so :meth:`Dynamics.add_step` updates them in O(N) for a new step
without revisiting old ones. Samples are matched across steps by their logged ids; a sample absent from some steps
is summarised over the steps where it appears (``n_steps``), and samples first seen at a later step are appended.

The correctness and prediction of every (sample, step) pair are kept too (int8/int16, one array per step), for the
correctness cube (:mod:`cube`) and the per-class accuracy curves.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

ABSENT = -1
"""Value of a (sample, step) cell in the histories when the sample was not logged at that step."""

_MODE_CELLS = 1 << 26
"""Largest samples x classes count for which exact per-class prediction counts are kept (128 MiB of uint16)."""


@dataclasses.dataclass(frozen=True)
class Positions:
    """Where a projected step put its samples: ids [N], coordinates [N, 2], the map's width at that step.

    ``region`` is, when known, the class of the map region under each sample (the landscape's class there);
    ``key`` identifies the projection (a re-projection with other settings has another key).
    """

    step: int
    ids: np.ndarray
    xy: np.ndarray
    width: float
    region: np.ndarray | None = None
    key: str = ""


@dataclasses.dataclass(frozen=True)
class StepInput:
    """What one logged step contributes: ids [N], labels [N], split [N] (1 = train) and logits [N, C]."""

    step: int
    ids: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    logits: np.ndarray

    @classmethod
    def from_arrays(cls, step: int, arrays: dict[str, np.ndarray]) -> StepInput:
        """From a step's stored arrays (``ids``, ``labels``, ``split``, ``logits``), as ``load_arrays`` returns.

        Raises ``ValueError`` saying what is wrong when the arrays are missing, of the wrong kind or inconsistent
        (a log written by someone else is not trusted to be well formed).
        """
        missing = [k for k in ("ids", "labels", "split", "logits") if k not in arrays]
        if missing:
            raise ValueError(f"step {step} has no {', '.join(missing)} array")
        item = cls(int(step), np.asarray(arrays["ids"]), np.asarray(arrays["labels"]), np.asarray(arrays["split"]),
                   np.asarray(arrays["logits"]))
        item.check()
        return item

    def check(self) -> None:
        """Raise ``ValueError`` unless the arrays have matching shapes, integer ids and labels within the classes,
        and finite logits."""
        z = self.logits
        if z.ndim != 2 or z.shape[1] < 2 or z.dtype.kind not in "fiu":
            raise ValueError(f"step {self.step}: logits must be a numeric [N, C] array with C >= 2, got {z.dtype} "
                             f"{z.shape}")
        n, c = z.shape
        for name in ("ids", "labels", "split"):
            values = getattr(self, name)
            if values.shape != (n,) or values.dtype.kind not in "biu":
                raise ValueError(f"step {self.step}: {name} must be {n} integers, got {values.dtype} {values.shape}")
        if n and (self.labels.min() < 0 or self.labels.max() >= c):
            raise ValueError(f"step {self.step}: labels must lie in [0, {c}), got {self.labels.min()}..."
                             f"{self.labels.max()}")
        if not np.isfinite(z).all():
            raise ValueError(f"step {self.step}: logits hold NaN or infinite values")


def step_quantities(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample quantities of one step: prediction, correctness, margin, ``p_y`` and confidence in the prediction.

    The margin is computed on logits (as AUM defines it). Work is done on the transposed [C, N] logits in float32,
    where reductions over classes are fast vector operations (about 3 ms for 60,000 x 10).
    """
    z = np.asarray(logits, dtype=np.float32)
    y = np.asarray(labels, dtype=np.int64)
    if len(z) == 0:
        empty = np.zeros(0)
        return {"pred": np.zeros(0, np.int64), "correct": np.zeros(0, bool), "margin": empty, "p_label": empty,
                "p_pred": empty}
    cols = np.arange(len(z))
    zt = np.ascontiguousarray(z.T)
    top = zt.max(0)
    pred = _argmax_rows(zt, top)
    z_y = zt[y, cols]
    zt[y, cols] = -np.inf
    margin = z_y - zt.max(0)
    zt[y, cols] = z_y
    total = np.exp(zt - top).sum(0, dtype=np.float64)
    return {"pred": pred, "correct": pred == y, "margin": margin.astype(np.float64),
            "p_label": np.exp((z_y - top).astype(np.float64)) / total, "p_pred": 1.0 / total}


def _argmax_rows(zt: np.ndarray, top: np.ndarray) -> np.ndarray:
    """``argmax`` over classes of transposed logits [C, N] (the first on ties), given their maximum ``top``.

    Scanning classes from the last to the first is one vector comparison per class, several times faster than
    ``argmax(axis=1)`` on [N, C] when C is small; for many classes the plain ``argmax`` is used.
    """
    if zt.shape[0] > 64:
        return zt.argmax(0)
    pred = np.zeros(zt.shape[1], np.int64)
    for j in range(zt.shape[0] - 1, 0, -1):
        pred[zt[j] == top] = j
    pred[zt[0] == top] = 0
    return pred


class _Columns:
    """Growable per-sample arrays (one row per sample id ever seen)."""

    def __init__(self, specs: dict[str, tuple[Any, Any]]) -> None:
        self.specs = specs
        self.size = 0
        self.data = {name: np.full(0, fill, dtype) for name, (dtype, fill) in specs.items()}

    def grow(self, size: int) -> None:
        if size <= self.size:
            return
        capacity = len(next(iter(self.data.values())))
        if size > capacity:
            new_cap = max(size, 2 * capacity, 1024)
            for name, (dtype, fill) in self.specs.items():
                fresh = np.full(new_cap, fill, dtype)
                fresh[:self.size] = self.data[name][:self.size]
                self.data[name] = fresh
        self.size = size

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name][:self.size]


_SPECS: dict[str, tuple[Any, Any]] = {
    "id": (np.int64, 0), "label": (np.int64, 0), "split": (np.uint8, 0),
    "first_step": (np.int64, 0), "last_step": (np.int64, 0), "n_steps": (np.int32, 0),
    "n_correct": (np.int32, 0), "sum_margin": (np.float64, 0.0), "sum_p": (np.float64, 0.0),
    "sum_p2": (np.float64, 0.0), "forgetting": (np.int32, 0), "flips": (np.int32, 0),
    "learned_from": (np.int64, ABSENT), "last_pred": (np.int64, ABSENT), "last_correct": (np.int8, ABSENT),
    "last_p_label": (np.float64, np.nan), "last_p_pred": (np.float64, np.nan),
    "mode_pred": (np.int64, ABSENT), "mode_count": (np.int32, 0),
    # 2-D trajectories over projected steps
    "n_projected": (np.int32, 0), "last_x": (np.float64, np.nan), "last_y": (np.float64, np.nan),
    "path": (np.float64, 0.0), "max_jump": (np.float64, 0.0), "n_region": (np.int32, 0),
    "other_region": (np.int32, 0),
}
_TRAJECTORY = ("n_projected", "last_x", "last_y", "path", "max_jump", "n_region", "other_region")


class _History:
    """A [steps, samples] matrix that grows by whole rows (one per step) and columns (new samples) in place.

    Capacity doubles in both directions, so adding a step costs O(samples) and reading the matrix is a view, even
    for a long log of 1,000 steps.
    """

    def __init__(self, dtype: Any) -> None:
        self.data = np.full((0, 0), ABSENT, dtype)
        self.steps = 0

    def append(self, size: int, rows: np.ndarray | slice, values: np.ndarray) -> None:
        cap_t, cap_n = self.data.shape
        if self.steps == cap_t or size > cap_n:
            grown = np.full((max(16, 2 * cap_t) if self.steps == cap_t else cap_t,
                             max(size, 2 * cap_n) if size > cap_n else cap_n), ABSENT, self.data.dtype)
            grown[:self.steps, :cap_n] = self.data[:self.steps]
            self.data = grown
        self.data[self.steps, rows] = values
        self.steps += 1

    def view(self, size: int) -> np.ndarray:
        return self.data[:self.steps, :size]


class Dynamics:
    """Running per-sample statistics over a run's steps, in the order they were logged.

    ``add_step`` must be called with increasing steps; a step logged again or out of order needs a fresh object
    (the diagnosis cache does that). ``table()`` gives the per-sample statistics, ``correct_matrix()`` the
    samples x steps correctness for the cube.
    """

    def __init__(self, n_classes: int | None = None) -> None:
        self.n_classes = n_classes
        self.steps: list[int] = []
        self.projected_steps: list[int] = []
        self._cols = _Columns(_SPECS)
        self._row_of: dict[int, int] = {}
        self._last_ids: np.ndarray | None = None
        self._last_rows: np.ndarray | None = None
        self._exact_mode = True
        self._counts: np.ndarray | None = None  # [rows, C] uint16 wrong-prediction counts, when small enough
        self._correct_hist = _History(np.int8)  # [T, samples]: ABSENT / 0 / 1
        self._pred_hist: _History | None = None  # [T, samples] predicted class, ABSENT when not logged
        self._curves: list[np.ndarray] = []  # per step: [2 splits (test, train), C] accuracy, NaN when empty

    # -- building --------------------------------------------------------------------------------------------------

    @classmethod
    def from_steps(cls, steps: Any, n_classes: int | None = None) -> Dynamics:
        """Statistics of an iterable of :class:`StepInput` (in increasing step order)."""
        dyn = cls(n_classes)
        for item in steps:
            dyn.add_step(item)
        return dyn

    @property
    def n_samples(self) -> int:
        """Samples seen at any step so far."""
        return self._cols.size

    # -- saving and restoring (a run's statistics survive a restart without folding every step again) --------------

    def to_arrays(self, copy: bool = False) -> dict[str, np.ndarray]:
        """Everything the statistics hold, as plain numeric arrays (for an ``.npz``; see :meth:`from_arrays`);
        ``copy`` detaches them from the running state (to write them while more steps are folded in)."""
        size, c = self._cols.size, self.n_classes or 0
        take = np.array if copy else np.ascontiguousarray
        out = {f"col_{name}": take(self._cols[name]) for name in _SPECS}
        out.update(steps=np.asarray(self.steps, np.int64), projected_steps=np.asarray(self.projected_steps, np.int64),
                   n_classes=np.asarray([c], np.int64), exact_mode=np.asarray([self._exact_mode], np.uint8),
                   correct_hist=take(self._correct_hist.view(size)), pred_hist=take(self.pred_matrix()),
                   curves=self.class_curves().astype(np.float64))
        if self._counts is not None:
            out["counts"] = take(self._counts[:size])
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Dynamics:
        """The statistics :meth:`to_arrays` saved. Raises ``ValueError`` for arrays that are not such a save (the file
        may have been written or altered by someone else): missing, of the wrong kind or of inconsistent sizes."""
        try:
            c = int(arrays["n_classes"][0])
            steps = [int(s) for s in arrays["steps"]]
            size = len(arrays["col_id"])
            t = len(steps)
            correct, pred, curves = arrays["correct_hist"], arrays["pred_hist"], arrays["curves"]
        except (KeyError, IndexError, TypeError) as err:
            raise ValueError(f"not a saved dynamics state ({err})") from None
        if c < 1 or correct.shape != (t, size) or correct.dtype != np.int8 or pred.shape != (t, size) \
                or pred.dtype.kind != "i" or curves.shape != (t, 2, c) or steps != sorted(set(steps)):
            raise ValueError("saved dynamics arrays have inconsistent shapes")
        dyn = cls(c)
        dyn.steps, dyn.projected_steps = steps, [int(s) for s in arrays.get("projected_steps", [])]
        for name, (dtype, _) in _SPECS.items():  # the arrays become the columns (capacity grows on the next step)
            column = arrays.get(f"col_{name}")
            if column is None or column.shape != (size,) or column.dtype != np.dtype(dtype):
                raise ValueError(f"saved dynamics column {name} is missing or malformed")
            dyn._cols.data[name] = np.require(column, requirements=["C", "W"])
        dyn._cols.size = size
        dyn._row_of = dict(zip(dyn._cols["id"].tolist(), range(size), strict=True))
        if len(dyn._row_of) != size:
            raise ValueError("saved dynamics ids are not unique")
        dyn._exact_mode = bool(arrays["exact_mode"][0]) if "exact_mode" in arrays else False
        counts = arrays.get("counts")
        if dyn._exact_mode:
            if counts is None or counts.shape != (size, c) or counts.dtype != np.uint16:
                raise ValueError("saved dynamics counts are missing or malformed")
            dyn._counts = np.require(counts, requirements=["C", "W"])
        dyn._correct_hist.data, dyn._correct_hist.steps = np.require(correct, requirements=["C", "W"]), t
        dyn._pred_hist = _History(pred.dtype)
        dyn._pred_hist.data, dyn._pred_hist.steps = np.require(pred, requirements=["C", "W"]), t
        dyn._curves = list(np.array(curves))
        return dyn

    def add_step(self, item: StepInput) -> None:
        """Fold one step into the running statistics (O(N) in the step's samples)."""
        if self.steps and item.step <= self.steps[-1]:
            raise ValueError(f"Steps must be added in increasing order: got {item.step} after {self.steps[-1]}.")
        logits = np.asarray(item.logits)
        self.add_quantities(item, step_quantities(logits, item.labels), logits.shape[1])

    def add_quantities(self, item: StepInput, q: dict[str, np.ndarray], n_classes: int) -> None:
        """Fold one step whose per-sample quantities (``pred``, ``margin``, ``p_label``, ``p_pred``, as
        :func:`step_quantities` gives them) were computed before, e.g. read from a step's digest; ``item.logits``
        is not used. Same order rule as :meth:`add_step`."""
        if self.steps and item.step <= self.steps[-1]:
            raise ValueError(f"Steps must be added in increasing order: got {item.step} after {self.steps[-1]}.")
        c = int(n_classes)
        if self.n_classes is None:
            self.n_classes = c
        if c != self.n_classes:
            raise ValueError(f"Step {item.step} has {c} classes; earlier steps had {self.n_classes}.")
        q = {**q, "correct": np.asarray(q["pred"]) == np.asarray(item.labels)}
        rows = self._rows_for(np.asarray(item.ids, dtype=np.int64))
        self._update(rows, item, q)
        self._record_history(rows, item, q)
        self.steps.append(item.step)

    def _rows_for(self, ids: np.ndarray) -> np.ndarray | slice:
        """Row of each id, appending ids never seen before.

        Returns a slice when the step's samples are exactly rows ``0..N-1`` in order (the usual case: the same
        samples every step), so the updates work on views instead of gathering and scattering.
        """
        if self._last_ids is not None and np.array_equal(ids, self._last_ids):
            return self._last_rows
        if len(np.unique(ids)) != len(ids):
            raise ValueError("Sample ids within a step must be unique.")
        lookup = self._row_of
        rows = np.fromiter((lookup.get(i, -1) for i in ids.tolist()), dtype=np.int64, count=len(ids))
        new = rows < 0
        if new.any():
            start = self._cols.size
            rows[new] = np.arange(start, start + int(new.sum()))
            self._cols.grow(start + int(new.sum()))
            self._cols["id"][rows[new]] = ids[new]
            lookup.update(zip(ids[new].tolist(), rows[new].tolist(), strict=True))
        identity = len(rows) == self._cols.size and bool((rows == np.arange(len(rows))).all())
        self._last_ids, self._last_rows = ids.copy(), (slice(0, len(rows)) if identity else rows)
        return self._last_rows

    def _grow_counts(self) -> None:
        """Make room in the wrong-prediction counts for every row (capacity doubles, like the columns)."""
        size = self._cols.size
        if self._counts is None:
            self._counts = np.zeros((max(size, 1024), self.n_classes), np.uint16)
        elif len(self._counts) < size:
            grown = np.zeros((max(size, 2 * len(self._counts)), self.n_classes), np.uint16)
            grown[:len(self._counts)] = self._counts
            self._counts = grown

    def _update(self, rows: np.ndarray | slice, item: StepInput, q: dict[str, np.ndarray]) -> None:
        cols = self._cols
        index = np.arange(cols.size)[rows] if isinstance(rows, slice) else rows
        correct = q["correct"]
        cols["first_step"][index[cols["n_steps"][rows] == 0]] = item.step
        cols["last_step"][rows] = item.step
        cols["label"][rows] = item.labels
        cols["split"][rows] = item.split
        cols["n_steps"][rows] += 1
        cols["n_correct"][rows] += correct
        cols["sum_margin"][rows] += q["margin"]
        cols["sum_p"][rows] += q["p_label"]
        cols["sum_p2"][rows] += q["p_label"] ** 2
        prev_correct = cols["last_correct"][rows]
        prev_pred = cols["last_pred"][rows]
        cols["forgetting"][rows] += (prev_correct == 1) & ~correct
        cols["flips"][rows] += (prev_pred != ABSENT) & (prev_pred != q["pred"])
        cols["learned_from"][index[correct & (prev_correct != 1)]] = item.step
        cols["learned_from"][index[~correct]] = ABSENT
        cols["last_pred"][rows] = q["pred"]
        cols["last_correct"][rows] = correct
        cols["last_p_label"][rows] = q["p_label"]
        cols["last_p_pred"][rows] = q["p_pred"]
        self._update_mode(index[~correct], q["pred"][~correct])

    def _update_mode(self, rows: np.ndarray, wrong_pred: np.ndarray) -> None:
        """Most frequent wrong prediction: exact counts while samples x classes is small, then a majority vote.

        With counts, only the incremented class can overtake the current mode (ties go to the lower class index,
        as ``argmax`` would). Past ``_MODE_CELLS`` the counts are dropped for Boyer-Moore's streaming majority vote,
        which names the right class whenever one wrong class is predicted at more than half of the sample's wrong
        steps (the case a reason in words describes); its ``mode_count`` is then a lower bound.
        """
        cols = self._cols
        if self._exact_mode and cols.size * self.n_classes > _MODE_CELLS:
            self._exact_mode, self._counts = False, None
        mode, count = cols["mode_pred"][rows], cols["mode_count"][rows]
        if self._exact_mode:
            if self._counts is None or len(self._counts) < cols.size:
                self._grow_counts()
            self._counts[rows, wrong_pred] += 1  # rows are distinct, so each (row, class) cell once
            new = self._counts[rows, wrong_pred].astype(np.int32)
            take = (new > count) | ((new == count) & (wrong_pred < mode))
            cols["mode_pred"][rows] = np.where(take, wrong_pred, mode)
            cols["mode_count"][rows] = np.where(take, new, count)
            return
        same = mode == wrong_pred
        take = ~same & (count <= 0)
        cols["mode_count"][rows] = np.where(same | take, np.maximum(count, 0) + 1, count - 1)
        cols["mode_pred"][rows] = np.where(take, wrong_pred, mode)

    def _record_history(self, rows: np.ndarray | slice, item: StepInput, q: dict[str, np.ndarray]) -> None:
        if self._pred_hist is None:
            self._pred_hist = _History(np.int8 if self.n_classes < 128 else np.int16 if self.n_classes < 32768
                                       else np.int32)
        size = self._cols.size
        self._correct_hist.append(size, rows, q["correct"])
        self._pred_hist.append(size, rows, q["pred"])
        self._curves.append(class_accuracy(item.labels, q["correct"], item.split, self.n_classes))

    # -- reading ---------------------------------------------------------------------------------------------------

    def table(self) -> dict[str, np.ndarray]:
        """Per-sample statistics (one entry per sample ever seen, in first-seen order); see the module docstring."""
        cols = self._cols
        n = np.maximum(cols["n_steps"], 1)
        mean_p = cols["sum_p"] / n
        return {
            "id": cols["id"].copy(), "label": cols["label"].copy(), "split": cols["split"].copy(),
            "n_steps": cols["n_steps"].copy(), "first_step": cols["first_step"].copy(),
            "last_step": cols["last_step"].copy(),
            "correctness": cols["n_correct"] / n,
            "aum": cols["sum_margin"] / n,
            "confidence": mean_p,
            "variability": np.sqrt(np.maximum(cols["sum_p2"] / n - mean_p ** 2, 0.0)),
            "forgetting": cols["forgetting"].copy(), "learned_from": cols["learned_from"].copy(),
            "flips": cols["flips"].copy(), "never_learned": cols["n_correct"] == 0,
            "last_pred": cols["last_pred"].copy(), "last_correct": cols["last_correct"] == 1,
            "last_p_label": cols["last_p_label"].copy(), "last_p_pred": cols["last_p_pred"].copy(),
            "mode_pred": cols["mode_pred"].copy(), "mode_count": np.maximum(cols["mode_count"], 0),
            **self._trajectory_columns(),
        }

    def _trajectory_columns(self) -> dict[str, np.ndarray]:
        cols = self._cols
        projected = cols["n_projected"] > 0
        moved = cols["n_projected"] > 1
        return {
            "n_projected": cols["n_projected"].copy(),
            "path_length": np.where(moved, cols["path"], np.nan),
            "max_jump": np.where(moved, cols["max_jump"], np.nan),
            "steps_other_region": np.where(projected & (cols["n_region"] > 0), cols["other_region"], -1),
        }

    # -- 2-D trajectories ------------------------------------------------------------------------------------------

    def add_positions(self, pos: Positions) -> None:
        """Fold one projected step's coordinates into the trajectory statistics (steps in increasing order).

        Movement is measured in map widths (coordinates divided by ``pos.width``) between a sample's consecutive
        projected steps; samples not seen in any logged step yet are ignored.
        """
        if self.projected_steps and pos.step <= self.projected_steps[-1]:
            raise ValueError(f"Projected steps must be added in increasing order: got {pos.step} after "
                             f"{self.projected_steps[-1]}.")
        lookup = self._row_of
        rows = np.fromiter((lookup.get(i, -1) for i in np.asarray(pos.ids).tolist()), np.int64, len(pos.ids))
        known = rows >= 0
        rows = rows[known]
        xy = np.asarray(pos.xy, np.float64)[known] / (pos.width if pos.width > 0 else 1.0)
        cols = self._cols
        prev = np.stack([cols["last_x"][rows], cols["last_y"][rows]], 1)
        jump = np.sqrt(((xy - prev) ** 2).sum(1))
        had = np.isfinite(jump)
        cols["path"][rows[had]] += jump[had]
        cols["max_jump"][rows[had]] = np.maximum(cols["max_jump"][rows[had]], jump[had])
        cols["last_x"][rows], cols["last_y"][rows] = xy[:, 0], xy[:, 1]
        cols["n_projected"][rows] += 1
        if pos.region is not None:
            region = np.asarray(pos.region)[known]
            cols["n_region"][rows] += 1
            cols["other_region"][rows] += region != cols["label"][rows]
        self.projected_steps.append(pos.step)

    def reset_positions(self) -> None:
        """Forget the trajectory statistics (before folding projected steps again from the first)."""
        for name in _TRAJECTORY:
            self._cols[name][:] = _SPECS[name][1]
        self.projected_steps = []

    def correct_matrix(self) -> np.ndarray:
        """Correctness of every (step, sample): int8 [T, samples], 1 correct, 0 wrong, ``ABSENT`` not logged.

        A view into the running history (no copy): do not modify it.
        """
        return self._correct_hist.view(self._cols.size)

    def pred_matrix(self) -> np.ndarray:
        """Predicted class of every (step, sample), ``ABSENT`` where not logged ([T, samples], a view)."""
        if self._pred_hist is None:
            return np.zeros((0, self._cols.size), np.int8)
        return self._pred_hist.view(self._cols.size)

    def class_curves(self) -> np.ndarray:
        """Per-class accuracy at every step: float [T, 2, C] (split 0 test, 1 train; NaN where a class is empty)."""
        c = self.n_classes or 0
        return np.stack(self._curves) if self._curves else np.zeros((0, 2, c))


def class_accuracy(labels: np.ndarray, correct: np.ndarray, split: np.ndarray, n_classes: int) -> np.ndarray:
    """Accuracy per (split, class) of one step: float [2, C], NaN where the split has no sample of the class."""
    out = np.full((2, n_classes), np.nan)
    train = np.asarray(split).astype(bool)
    labels = np.asarray(labels, dtype=np.int64)
    for s, mask in ((0, ~train), (1, train)):
        total = np.bincount(labels[mask], minlength=n_classes)[:n_classes]
        hits = np.bincount(labels[mask], weights=correct[mask], minlength=n_classes)[:n_classes]
        out[s, total > 0] = hits[total > 0] / total[total > 0]
    return out


def load(run_dir: str, **kwargs: Any) -> Any:
    """Per-sample dynamics of a run directory for notebooks; see :func:`tensorboard_plugin_dvi.notebook.load`."""
    from tensorboard_plugin_dvi import notebook

    return notebook.load(run_dir, **kwargs)
