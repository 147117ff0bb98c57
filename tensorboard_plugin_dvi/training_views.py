"""Route logic of the training routes (``stepstats``, ``alarms``, ``layers``), free of HTTP.

Like :mod:`diagnosis`, each run's running state is kept in memory and keyed by its steps' record hashes: a newly
logged step is folded in on the next request (its features read once), a re-logged or removed step rebuilds the run
from its files; a request folds new steps for at most ``budget_s`` seconds (at least one step) and reports how many
are still pending, so that a long log answers at once and fills in over the next requests. Projected steps are
folded into the map statistics as they become ready, in any order. Layer statistics come from the run's
``dvi/layers`` records (``index.layer_records`` when the catalog provides them, else the JSON records in the run's
``layers`` folder). Every method returns ``(body, mime)`` and raises ``tensorboard.errors`` for bad input (404 no
such data, 400 bad parameter).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import threading
import time
from typing import Any

import numpy as np
from tensorboard import errors

from tensorboard_plugin_dvi import alarms, layers, storage
from tensorboard_plugin_dvi.catalog import RunIndex
from tensorboard_plugin_dvi.diagnosis import PositionSource, RunStates
from tensorboard_plugin_dvi.dynamics import StepInput
from tensorboard_plugin_dvi.stepstats import StepStatistics

_MAX_RUNS = 8
BUDGET_S = 10.0
"""Seconds a request spends folding new steps in (at least one step); the rest are folded by the next requests,
so a long log's first answer comes quickly and says how many steps are still ``pending_steps``."""
JSON, CSV = "application/json", "text/csv; charset=utf-8"

logger = logging.getLogger(__name__)


class _RunState:
    """One run's step statistics, alarm detector, folded step keys and projected-step keys."""

    def __init__(self, n_classes: int | None, classes: list[str], rules: alarms.Rules) -> None:
        self.lock = threading.Lock()
        self.keys: list[tuple[int, str]] = []
        self.pending = 0  # servable steps not folded in yet (a request's time budget ran out)
        self.stats = StepStatistics(n_classes)
        self.detector = alarms.AlarmDetector(classes, rules)
        self.skipped: list[dict[str, Any]] = []
        self.position_keys: dict[int, str] = {}
        self.layer_keys: list[tuple[int, str]] = []
        self.layer_steps: list[tuple[int, dict[str, np.ndarray]]] = []
        self.layer_skipped: list[dict[str, Any]] = []


class TrainingViews:
    """In-memory, incremental step statistics, alarms and layer statistics for the plugin's runs."""

    def __init__(self, positions: PositionSource | None = None, rules: alarms.Rules | None = None,
                 max_runs: int = _MAX_RUNS, budget_s: float = BUDGET_S) -> None:
        self._positions = positions
        self.rules = rules or alarms.Rules()
        self.budget_s = budget_s
        self._runs = RunStates(max_runs)

    # -- state -----------------------------------------------------------------------------------------------------

    def state(self, index: RunIndex) -> _RunState:
        """The run's statistics brought up to date with its servable steps (new steps only, when possible)."""
        state, keys = self._runs.current(
            index, lambda latest: _RunState(latest.get("n_classes"), _classes(latest), self.rules))
        with state.lock:
            deadline = time.monotonic() + self.budget_s
            for step, digest in keys[len(state.keys):]:
                self._fold(index, state, step)
                state.keys.append((step, digest))
                if time.monotonic() > deadline:
                    break
            state.pending = len(keys) - len(state.keys)
            if self._positions is not None:
                self._fold_positions(index, state)
        return state

    @staticmethod
    def _fold(index: RunIndex, state: _RunState, step: int) -> None:
        """Add one step; a step whose files cannot be read or whose arrays are malformed is skipped and reported."""
        try:
            arrays = index.store.load_arrays(index.records[step])
        except storage.StepError as err:
            state.skipped.append({"step": step, "error": str(err)})
            return
        if "logits" not in arrays:
            raise errors.NotFoundError(f"Run {index.name!r} logged no logits (imported without its classifier), so "
                                       "it has no step statistics.")
        try:
            stats = state.stats.add_step(StepInput.from_arrays(step, arrays), arrays["features"])
        except ValueError as err:
            state.skipped.append({"step": step, "error": str(err)})
            return
        state.detector.add(stats)

    def _fold_positions(self, index: RunIndex, state: _RunState) -> None:
        """Fold projected steps that are new or were projected again into the map statistics."""
        folded = {s.step for s in state.stats.steps}
        for step in index.steps:
            if step not in folded:
                continue
            key = self._positions.key(index, step)
            if key is None or state.position_keys.get(step) == key:
                continue
            try:
                state.stats.add_positions(self._positions.load(index, step))
            except (OSError, ValueError, storage.StepError) as err:  # e.g. a cache file removed meanwhile
                logger.warning("DVI: positions of step %s of %s not used: %s", step, index.name, err)
                continue
            state.position_keys[step] = key

    def _layers(self, index: RunIndex, state: _RunState) -> None:
        """Fold the run's new layer statistics records in (all of them again when an earlier one changed)."""
        records = getattr(index, "layer_records", None)
        problems: list[storage.StepProblem] = []
        if records is None:
            records, problems = layers.disk_records(index.store)
        keys = [(s, str(records[s]["file"]["sha256"])) for s in sorted(records)]
        if keys[:len(state.layer_keys)] != state.layer_keys:
            state.layer_keys, state.layer_steps, state.layer_skipped = [], [], []
        for step, digest in keys[len(state.layer_keys):]:
            try:
                state.layer_steps.append((step, layers.load_step(index.store, records[step])))
            except storage.StepError as err:
                state.layer_skipped.append({"step": step, "error": str(err)})
            state.layer_keys.append((step, digest))
        known = {p["step"] for p in state.layer_skipped}
        state.layer_skipped += [p.to_json() for p in problems if p.step not in known]

    # -- routes ----------------------------------------------------------------------------------------------------

    def stepstats(self, index: RunIndex, fmt: str = "json", start: int | None = None,
                  end: int | None = None) -> tuple[dict[str, Any] | bytes, str]:
        """Per-step statistics: an overview of every step, per-class detail for the steps in [start, end]."""
        _choice("format", fmt, ("json", "csv"))
        state = self.state(index)
        with state.lock:
            steps = list(state.stats.steps)
            maps = dict(state.stats.maps)
            header = _header(index, state)
        if fmt == "csv":
            return stepstats_csv(steps, maps, header["classes"]), CSV
        return {**header, **stepstats_json(steps, maps, start, end)}, JSON

    def alarms(self, index: RunIndex, fmt: str = "json") -> tuple[dict[str, Any] | bytes, str]:
        """Every alarm of the run so far (features, map and layers), in step order."""
        _choice("format", fmt, ("json", "csv"))
        state = self.state(index)
        with state.lock:
            self._layers(index, state)
            found = list(state.detector.alarms)
            maps = [state.stats.maps[s] for s in sorted(state.stats.maps)]
            found += alarms.map_jumps([m.step for m in maps], [m.displacement for m in maps], self.rules)
            if state.layer_steps:
                table = layer_table(state.layer_steps)
                found += alarms.layer_jumps(table["steps"], table["names"], table["rel_change"], self.rules)
            header = _header(index, state)
        rows = [a.to_json(header["classes"]) for a in alarms.sort_alarms(found)]
        if fmt == "csv":
            return alarms_csv(rows), CSV
        counts = {kind: sum(r["kind"] == kind for r in rows) for kind in alarms.KINDS}
        return {**header, "alarms": rows, "counts": counts, "rules": dataclasses.asdict(self.rules)}, JSON

    def layers(self, index: RunIndex, fmt: str = "json") -> tuple[dict[str, Any] | bytes, str]:
        """Per-layer norms, relative changes and gradient norms at every step that logged them, and outliers."""
        _choice("format", fmt, ("json", "csv"))
        state = self.state(index)
        with state.lock:
            self._layers(index, state)
            if not state.layer_steps:
                raise errors.NotFoundError(f"Run {index.name!r} logged no layer statistics (dvi.layers.log_layers).")
            table = layer_table(state.layer_steps)
            skipped = list(state.layer_skipped)
        flags, _ = alarms.layer_outliers(table["steps"], table["rel_change"], self.rules)
        if fmt == "csv":
            return layers_csv(table, flags), CSV
        jumps = alarms.layer_jumps(table["steps"], table["names"], table["rel_change"], self.rules)
        return {"run": index.name, "steps": table["steps"], "skipped_steps": skipped,
                "layers": [{"name": n, "block": b, "params": int(p)} for n, b, p in
                           zip(table["names"], table["blocks"], table["params"], strict=True)],
                "blocks": list(dict.fromkeys(table["blocks"])),
                **{key: _nested(table[key]) for key in ("norm", "rel_change", "grad_norm")},
                "outliers": [[int(t), int(i)] for t, i in zip(*np.nonzero(flags), strict=True)],
                "alarms": [a.to_json() for a in jumps]}, JSON


# -- shaping answers -------------------------------------------------------------------------------------------------

def _classes(record: dict[str, Any]) -> list[str]:
    names, c = record.get("classes") or [], record.get("n_classes") or 0
    return [str(n) for n in names] if len(names) == c else [str(i) for i in range(c)]


def _header(index: RunIndex, state: _RunState) -> dict[str, Any]:
    c = state.stats.n_classes or 0
    names = state.detector.classes or []
    return {"run": index.name, "steps": [s.step for s in state.stats.steps],
            "classes": names if len(names) == c else [str(i) for i in range(c)],
            "skipped_steps": list(state.skipped), "pending_steps": state.pending}


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise errors.InvalidArgumentError(
            f"Parameter '{name}' must be one of {', '.join(repr(a) for a in allowed)}, got {str(value)[:20]!r}.")


def _nested(values: Any) -> Any:
    """An array as nested JSON lists, floats rounded to 5 decimals, NaN and infinities as null."""
    arr = np.asarray(values, dtype=np.float64)
    rounded = np.round(arr, 5).astype(object)
    rounded[~np.isfinite(arr)] = None
    return rounded.tolist()


def stepstats_json(steps: list, maps: dict, start: int | None, end: int | None) -> dict[str, Any]:
    """The ``stepstats`` answer: ``overview`` (one value per step), ``detail`` for the steps in range, ``map``."""
    lo = -np.inf if start is None else start
    hi = np.inf if end is None else end
    shown = [s for s in steps if lo <= s.step <= hi]
    overview = {
        "accuracy": _nested([s.overall_accuracy for s in steps]),
        "mean_separation": _nested([s.geometry.mean_separation for s in steps]),
        "neighbour_change": _nested([s.neighbour_change for s in steps]),
        "displacement": _nested([maps[s.step].displacement if s.step in maps else np.nan for s in steps]),
        "watched": ["test" if s.watched == 0 else "train" for s in steps],
    }
    detail = {
        "steps": [s.step for s in shown],
        "counts": [s.watched_counts.tolist() for s in shown],
        "accuracy": _nested([s.watched_accuracy for s in shown]),
        "accuracy_test": _nested([s.accuracy[0] for s in shown]),
        "accuracy_train": _nested([s.accuracy[1] for s in shown]),
        "spread": _nested([s.geometry.spread for s in shown]),
        "separation": _nested([s.geometry.separation for s in shown]),
        "centroid_dist": _nested([s.geometry.centroid_dist for s in shown]),
        "grown": [s.grown for s in shown],
    }
    projected = [maps[k] for k in sorted(maps)]
    map_part = {"steps": [m.step for m in projected], "since": [m.since for m in projected],
                "displacement": _nested([m.displacement for m in projected]),
                "spread": _nested([m.geometry.spread for m in projected]),
                "separation": _nested([m.geometry.separation for m in projected])}
    return {"overview": overview, "detail": detail, "map": map_part}


def stepstats_csv(steps: list, maps: dict, classes: list[str]) -> bytes:
    """One row per (step, class): the step's overview values, then the class's statistics."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "watched", "accuracy", "mean_separation", "neighbour_change", "displacement", "class",
                     "class_name", "count", "class_accuracy", "accuracy_test", "accuracy_train", "spread",
                     "separation", "map_spread", "map_separation"])
    for s in steps:
        m = maps.get(s.step)
        head = [s.step, "test" if s.watched == 0 else "train", *_nested([s.overall_accuracy,
                s.geometry.mean_separation, s.neighbour_change, m.displacement if m else np.nan])]
        for c, name in enumerate(classes):
            values = _nested([s.watched_accuracy[c], s.accuracy[0, c], s.accuracy[1, c], s.geometry.spread[c],
                              s.geometry.separation[c], m.geometry.spread[c] if m else np.nan,
                              m.geometry.separation[c] if m else np.nan])
            writer.writerow([*head, c, name, int(s.watched_counts[c]), *values])
    return out.getvalue().encode("utf-8")


def alarms_csv(rows: list[dict[str, Any]]) -> bytes:
    """Alarms as CSV: step, kind, source, classes and layers (``;``-separated), value, threshold, reason."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "kind", "source", "classes", "class_names", "layers", "value", "threshold", "reason"])
    for r in rows:
        writer.writerow([r["step"], r["kind"], r["source"], ";".join(map(str, r["classes"])),
                         ";".join(r["class_names"]), ";".join(r["layers"]), r["value"], r["threshold"], r["reason"]])
    return out.getvalue().encode("utf-8")


def layer_table(steps: list[tuple[int, dict[str, np.ndarray]]]) -> dict[str, Any]:
    """Layer statistics of several steps as [T, L] matrices over the union of layer names (first seen first; NaN
    where a step did not record a layer)."""
    names: dict[str, int] = {}
    blocks, params = [], []
    for _, arrays in steps:
        for name, block, count in zip(arrays["names"].tolist(), arrays["blocks"].tolist(),
                                      arrays["params"].tolist(), strict=True):
            if name not in names:
                names[name] = len(names)
                blocks.append(block)
                params.append(count)
    out: dict[str, Any] = {"steps": [s for s, _ in steps], "names": list(names), "blocks": blocks,
                           "params": params}
    for key in ("norm", "rel_change", "grad_norm"):
        matrix = np.full((len(steps), len(names)), np.nan)
        for t, (_, arrays) in enumerate(steps):
            cols = [names[n] for n in arrays["names"].tolist()]
            matrix[t, cols] = arrays[key]
        out[key] = matrix
    return out


def layers_csv(table: dict[str, Any], flags: np.ndarray) -> bytes:
    """One row per (step, layer): block, parameter count, norm, relative change, gradient norm, outlier flag."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "layer", "block", "params", "norm", "rel_change", "grad_norm", "outlier"])
    for t, step in enumerate(table["steps"]):
        values = zip(*(_nested(table[k][t]) for k in ("norm", "rel_change", "grad_norm")), strict=True)
        for i, (norm, change, grad) in enumerate(values):
            writer.writerow([step, table["names"][i], table["blocks"][i], table["params"][i], norm, change, grad,
                             int(flags[t, i])])
    return out.getvalue().encode("utf-8")
