"""Alarm rules over a run's step statistics (SentryCam): each alarm says in words what happened and to which classes.

Rules, evaluated on each new step against the earlier steps only (so alarms already raised never change when more
steps arrive, and a live run is checked step by step). A class's *best* accuracy is the highest level it held over
two consecutive logged steps (``min`` of the pair: one lucky step early in training is no reference), and its best
separation the highest at a single step, both over the steps where it was *learned*: its informedness (accuracy
minus the fraction of other classes' samples predicted as it) at least ``learned``. An untrained model that predicts
one class for everything gives that class an accuracy of 1 but an informedness of 0, so it sets no reference to fall
from; the separation rules watch only classes learned at some step (the geometry of a class the model never learned
is noise).

* ``forgetting``: a class's accuracy on the watched split fell from its best by at least
  ``max(acc_drop, acc_sigmas * sqrt(best * (1 - best) / n))`` (``n`` its samples: the drop must also be far outside
  the binomial noise of a small class).
* ``collapse``: a class's separation fell to at most ``1 - sep_collapse`` of its best so far.
* ``early_warning``: a class's separation fell by at least ``sep_warn`` of its best so far while its accuracy still
  holds (less than half the forgetting threshold below its best, and still learned): the geometry degrades before
  the accuracy does. A class that collapses at the same step gets the collapse alarm only.
* ``jump``: the representation moved much more than usual: the step's neighbour change (or, on the map, its mean
  2-D displacement) is an outlier for the run, ``x > median + jump_z * 1.4826 * MAD`` over the last
  ``jump_window`` earlier values over the same gap between steps (at least ``jump_history`` of them) and
  ``x >= jump_ratio * median``.
* ``layer_jump`` (with layer statistics): at least ``layer_fraction`` of the layers changed by an outlier amount
  (same test on each layer's relative change, against that layer's own history).

A rule fires once per episode: after a class raised an alarm of a kind, that kind is re-armed for the class only
when the quantity has come back (accuracy within half the threshold of its best, separation within half the
fall); a jump is not raised again at the step right after an outlier, and the value that raised it is left out of
the baseline (later ones are not, so the baseline follows a lasting change of regime).
All classes that fire the same rule at the same step share one alarm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tensorboard_plugin_dvi.stepstats import StepStats

KINDS = ("forgetting", "collapse", "early_warning", "jump", "layer_jump")
"""Alarm kinds, in the order they are listed within a step."""


@dataclasses.dataclass(frozen=True)
class Rules:
    """Thresholds of the alarm rules (see the module docstring)."""

    acc_drop: float = 0.2
    acc_sigmas: float = 4.0
    sep_collapse: float = 0.4
    sep_warn: float = 0.25
    jump_z: float = 6.0
    jump_ratio: float = 1.5
    jump_window: int = 10
    jump_history: int = 3
    layer_fraction: float = 0.25
    learned: float = 0.5


@dataclasses.dataclass(frozen=True)
class Alarm:
    """One alarm: a step, a kind, the classes (or layers) concerned, a measured value and a reason in words."""

    step: int
    kind: str
    source: str  # "features", "map" or "layers"
    reason: str
    classes: tuple[int, ...] = ()
    layers: tuple[str, ...] = ()
    value: float = float("nan")
    threshold: float = float("nan")

    def to_json(self, classes: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON form (``class_names`` from ``classes`` when given); NaN as None."""
        names = [_label(classes, c) for c in self.classes]
        return {"step": self.step, "kind": self.kind, "source": self.source, "classes": list(self.classes),
                "class_names": names, "layers": list(self.layers), "value": _num(self.value),
                "threshold": _num(self.threshold), "reason": self.reason}


def _num(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 5)


def _label(classes: Sequence[str] | None, c: int) -> str:
    return str(classes[c]) if classes is not None and 0 <= c < len(classes) else str(c)


def _names(classes: Sequence[str] | None, cs: Iterable[int]) -> str:
    return ", ".join(f"'{_label(classes, c)}'" for c in cs)


def is_outlier(value: float, history: Sequence[float], rules: Rules) -> tuple[bool, float]:
    """Whether ``value`` is an upward outlier of the last ``rules.jump_window`` values of ``history``, and the
    threshold it was compared with (NaN when the history is too short to judge)."""
    past = np.asarray([h for h in history if np.isfinite(h)][-rules.jump_window:], np.float64)
    if len(past) < rules.jump_history or not np.isfinite(value):
        return False, float("nan")
    med = float(np.median(past))
    mad = float(np.median(np.abs(past - med)))
    limit = max(med + rules.jump_z * 1.4826 * mad, rules.jump_ratio * med)
    return value > limit, limit


class _JumpSeries:
    """One scalar series checked for upward outliers, with one baseline per gap between steps.

    A change measured over 8 training batches is not comparable with one measured over 1 (a log that is denser
    around some event), so each value is judged against earlier values over the same gap only. An outlier right
    after another one (the same episode) raises nothing. The value that raised an alarm is kept out of the
    baseline; later values are kept in it even when they are outliers, so that the baseline follows a lasting change
    of regime instead of flagging it forever.
    """

    def __init__(self) -> None:
        self.history: dict[int | None, list[float]] = {}
        self.count = 0
        self.last_outlier: int | None = None  # position in the series of the latest outlier

    def check(self, value: float, rules: Rules, gap: int | None = None) -> tuple[bool, float]:
        """``(raise, limit)`` for the next value of the series, measured over ``gap`` steps."""
        past = self.history.setdefault(gap, [])
        hit, limit = is_outlier(value, past, rules)
        index, self.count = self.count, self.count + 1
        following = self.last_outlier is not None and self.last_outlier == index - 1
        if hit:
            self.last_outlier = index
        raised = hit and not following
        past.append(float("nan") if raised else value)
        return raised, limit


def _gaps(steps: Sequence[int]) -> list[int | None]:
    """Step differences to the previous entry (None for the first)."""
    return [None, *(int(b) - int(a) for a, b in zip(steps[:-1], steps[1:], strict=True))] if len(steps) else []


class AlarmDetector:
    """Raises alarms on feature-space step statistics, one step at a time (:meth:`add`), in step order.

    ``classes`` names the classes in reasons; ``rules`` sets the thresholds.
    """

    def __init__(self, classes: Sequence[str] | None = None, rules: Rules | None = None) -> None:
        self.classes = list(classes) if classes is not None else None
        self.rules = rules or Rules()
        self.alarms: list[Alarm] = []
        self._acc_best: np.ndarray | None = None
        self._acc_best_step: np.ndarray | None = None
        self._sep_best: np.ndarray | None = None
        self._sep_best_step: np.ndarray | None = None
        self._down: dict[str, np.ndarray] = {}
        self._warned_at: np.ndarray | None = None
        self._jumps = _JumpSeries()
        self._prev_step: int | None = None
        self._n_steps = 0

    def add(self, stats: StepStats) -> list[Alarm]:
        """Check one step (after every earlier one); returns the alarms it raised (also kept in ``alarms``)."""
        acc, sep = stats.watched_accuracy, stats.geometry.separation
        if self._acc_best is None:
            self._start(len(acc))
        raised = [*self._accuracy(stats, acc, sep), *self._separation(stats, acc, sep), *self._jump(stats)]
        learned = self._learned_now(stats)
        held = np.fmin(self._prev_acc, acc)  # the level held over this step and the previous one
        with np.errstate(invalid="ignore"):
            acc_up = learned & self._prev_learned & ~(held <= self._acc_best)
            sep_up = learned & np.isfinite(sep) & ~(sep <= self._sep_best)
        self._acc_best_step[acc_up], self._acc_best[acc_up] = stats.step, held[acc_up]
        self._sep_best_step[sep_up], self._sep_best[sep_up] = stats.step, sep[sep_up]
        self._prev_acc, self._prev_learned = acc.copy(), learned
        self._n_steps += 1
        self.alarms += raised
        return raised

    def _learned_now(self, stats: StepStats) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return stats.watched_informedness >= self.rules.learned

    def _start(self, c: int) -> None:
        self._prev_acc = np.full(c, np.nan)
        self._prev_learned = np.zeros(c, bool)
        self._acc_best = np.full(c, np.nan)
        self._sep_best = np.full(c, np.nan)
        self._acc_best_step = np.full(c, -1)
        self._sep_best_step = np.full(c, -1)
        self._warned_at = np.full(c, -1)
        self._down = {kind: np.zeros(c, bool) for kind in ("forgetting", "collapse", "early_warning")}

    def acc_threshold(self, counts: np.ndarray) -> np.ndarray:
        """The accuracy fall that counts as forgetting for each class, given its samples ``counts``."""
        best = np.nan_to_num(self._acc_best, nan=0.0)
        noise = self.rules.acc_sigmas * np.sqrt(best * (1 - best) / np.maximum(counts, 1))
        return np.maximum(self.rules.acc_drop, noise)

    def _accuracy(self, stats: StepStats, acc: np.ndarray, sep: np.ndarray) -> list[Alarm]:
        threshold = self.acc_threshold(stats.watched_counts)
        drop = self._acc_best - acc
        down = self._down["forgetting"]
        down &= ~(drop < threshold / 2)  # recovered: re-armed
        fire = np.flatnonzero(~down & (drop >= threshold))
        down[fire] = True
        if not len(fire):
            return []
        parts = [f"'{_label(self.classes, c)}' {self._acc_best[c]:.2f} (step {self._acc_best_step[c]}) -> "
                 f"{acc[c]:.2f}" for c in fire]
        reason = (f"accuracy of {_names(self.classes, fire)} fell sharply (forgetting): " + "; ".join(parts)
                  + f" on the {'test' if stats.watched == 0 else 'training'} split")
        grown = [g for g in stats.grown if g["label"] in set(fire.tolist())]
        if grown:
            reason += "; confusions that grew: " + ", ".join(
                f"'{_label(self.classes, g['label'])}' as '{_label(self.classes, g['pred'])}' {g['before']:.2f} -> "
                f"{g['now']:.2f}" for g in grown[:3])
        warned = [int(c) for c in fire if 0 <= self._warned_at[c] < stats.step]
        if warned:
            first = min(int(self._warned_at[c]) for c in warned)
            reason += (f"; their separation had warned at step {first}, "
                       f"{stats.step - first} step{'s' if stats.step - first != 1 else ''} earlier")
        value = float(np.max(drop[fire]))
        return [Alarm(stats.step, "forgetting", "features", reason, tuple(int(c) for c in fire), (), value,
                      float(np.min(threshold[fire])))]

    def _separation(self, stats: StepStats, acc: np.ndarray, sep: np.ndarray) -> list[Alarm]:
        rules, out = self.rules, []
        fall = 1.0 - sep / self._sep_best
        holding = ((self._acc_best - acc) < self.acc_threshold(stats.watched_counts) / 2) & self._learned_now(stats)
        collapsed = np.zeros(len(sep), bool)
        for kind, limit, extra in (("collapse", rules.sep_collapse, np.ones(len(sep), bool)),
                                   ("early_warning", rules.sep_warn, holding)):
            down = self._down[kind]
            down &= ~(fall < limit / 2)
            fire = np.flatnonzero(~down & (fall >= limit) & extra & ~collapsed)  # a collapse says more than a warning
            down[fire] = True
            collapsed[fire] = True
            self._down["early_warning"][fire] = True  # a collapsed class is warned already, until it recovers
            if not len(fire):
                continue
            parts = [f"'{_label(self.classes, c)}' {self._sep_best[c]:.2f} (step {self._sep_best_step[c]}) -> "
                     f"{sep[c]:.2f}" for c in fire]
            if kind == "collapse":
                reason = (f"separation of {_names(self.classes, fire)} from the nearest other class collapsed "
                          f"(-{limit:.0%} or more): " + "; ".join(parts))
            else:
                self._warned_at[fire] = stats.step
                reason = (f"separation of {_names(self.classes, fire)} is falling while accuracy still holds "
                          f"(early warning): " + "; ".join(parts))
            out.append(Alarm(stats.step, kind, "features", reason, tuple(int(c) for c in fire), (),
                             float(np.max(fall[fire])), limit))
        return out

    def _jump(self, stats: StepStats) -> list[Alarm]:
        value = stats.neighbour_change
        gap = None if self._prev_step is None else stats.step - self._prev_step
        self._prev_step = stats.step
        hit, limit = self._jumps.check(value, self.rules, gap)
        if not hit:
            return []
        reason = (f"the representation jumped: {value:.0%} of the samples' nearest neighbours changed since the "
                  f"previous step (an outlier for this run: above {limit:.0%})")
        return [Alarm(stats.step, "jump", "features", reason, (), (), value, limit)]


def map_jumps(steps: Sequence[int], displacement: Sequence[float], rules: Rules | None = None) -> list[Alarm]:
    """``jump`` alarms on the map: projected steps whose mean 2-D displacement (in map widths, since the previous
    projected step) is an outlier for the run. Cheap (scalars), so it is recomputed as projections arrive."""
    rules = rules or Rules()
    series, out = _JumpSeries(), []
    for step, value, gap in zip(steps, displacement, _gaps(steps), strict=True):
        hit, limit = series.check(value, rules, gap)
        if hit:
            reason = (f"samples moved {value:.3f} map widths on average since the previous projected step (an outlier "
                      f"for this run: above {limit:.3f})")
            out.append(Alarm(int(step), "jump", "map", reason, (), (), value, limit))
    return out


def layer_outliers(steps: Sequence[int], rel_change: np.ndarray,
                   rules: Rules | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bool [T, L] twice: where a layer's relative change (``rel_change`` [T, L], NaN unknown) is an outlier for
    that layer (same test as ``jump``, against the layer's own earlier values), and where such an outlier starts an
    episode (the outlier before it was not at the previous step)."""
    rules = rules or Rules()
    outlier = np.zeros(rel_change.shape, bool)
    starts = np.zeros(rel_change.shape, bool)
    for layer in range(rel_change.shape[1]):
        series = _JumpSeries()
        for t, gap in enumerate(_gaps(steps)):
            starts[t, layer], _ = series.check(float(rel_change[t, layer]), rules, gap)
            outlier[t, layer] = series.last_outlier == t
    return outlier, starts


def layer_jumps(steps: Sequence[int], names: Sequence[str], rel_change: np.ndarray,
                rules: Rules | None = None) -> list[Alarm]:
    """``layer_jump`` alarms: steps where at least ``rules.layer_fraction`` of the layers start an outlier episode
    of relative change (the layers named, largest relative change first)."""
    rules = rules or Rules()
    _, flags = layer_outliers(steps, rel_change, rules)
    known = np.isfinite(rel_change).sum(1)
    out = []
    for t in np.flatnonzero(flags.sum(1) >= np.maximum(1, np.ceil(rules.layer_fraction * known))):
        hit = np.flatnonzero(flags[t])
        hit = hit[np.argsort(-rel_change[t, hit])]
        shown = ", ".join(f"'{names[i]}' {rel_change[t, i]:.2g}" for i in hit[:5])
        more = f" and {len(hit) - 5} more" if len(hit) > 5 else ""
        reason = (f"{len(hit)} of {int(known[t])} layers changed far more than usual since the previous logged step "
                  f"(relative change {shown}{more})")
        out.append(Alarm(int(steps[t]), "layer_jump", "layers", reason, (), tuple(names[i] for i in hit),
                         float(rel_change[t, hit].max()), rules.layer_fraction))
    return out


def sort_alarms(alarms: Iterable[Alarm]) -> list[Alarm]:
    """Alarms by step, then kind (in :data:`KINDS` order), then source."""
    return sorted(alarms, key=lambda a: (a.step, KINDS.index(a.kind), a.source))
