"""Route logic of the training-dynamics routes (``dynamics``, ``suspects``, ``cube``), free of HTTP.

Each run's :class:`dynamics.Dynamics` is kept in memory and keyed by its steps' record hashes: when training logs a
new step, the next request folds in that step only; when a step is re-logged, removed or arrives out of order, the
run is rebuilt from its files. Every method returns ``(body, mime)`` where ``body`` is a JSON-ready dict or bytes,
and raises ``tensorboard.errors`` for bad input (404 unknown run data, 400 bad parameter).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from tensorboard import errors

from tensorboard_plugin_dvi import binary, cube, storage, suspects, textcols
from tensorboard_plugin_dvi.catalog import RunIndex
from tensorboard_plugin_dvi.dynamics import Dynamics, Positions, StepInput

MAX_PIXELS = 4096
"""Largest ``rows`` or ``cols`` of a cube request."""

DEFAULT_ROWS, DEFAULT_COLS = 512, 512
MAX_K = 100_000
"""Largest ``k`` of a suspects request."""

COLUMNS = ("id", "label", "split", "n_steps", "first_step", "last_step", "correctness", "aum",
           "confidence", "variability", "forgetting", "learned_from", "flips", "never_learned", "last_pred",
           "last_correct", "last_p_label", "last_p_pred", "mode_pred", "mode_count", "n_projected", "path_length",
           "max_jump", "steps_other_region", "score", "category")
"""Columns of the per-sample table, in the order of the CSV and binary answers."""

_MAX_RUNS = 8

logger = logging.getLogger(__name__)


class PositionSource(Protocol):
    """Where projected steps put their samples (see :class:`ServicePositions`)."""

    def key(self, index: RunIndex, step: int) -> str | None:
        """A cheap identifier of the step's projection (changes when it is re-projected), None if not projected."""

    def load(self, index: RunIndex, step: int) -> Positions:
        """The step's positions (called only for projected steps not folded in yet)."""


QuantitySource = Callable[[RunIndex, int], "tuple[StepInput, dict[str, np.ndarray], int] | None"]
"""``(index, step) -> (item, quantities, n_classes)``: a step's ids, labels and split (``item``, its logits unused)
and per-sample ``pred``, ``margin``, ``p_label``, ``p_pred``; None to read the step's logits instead."""


class Checkpoints(Protocol):
    """Where a run's folded dynamics are saved, so that a restarted TensorBoard does not fold every step again."""

    def load(self, index: RunIndex) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """The last saved ``(meta, arrays)`` of the run, or None."""

    def save(self, index: RunIndex, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Save (may return before the files are written)."""


class _RunState:
    """One run's running dynamics and the (step, arrays hash) keys of the steps folded into it."""

    def __init__(self, n_classes: int | None) -> None:
        self.lock = threading.Lock()
        self.keys: list[tuple[int, str]] = []
        self.position_keys: list[tuple[int, str]] = []
        self.dynamics = Dynamics(n_classes)
        self.skipped: list[dict[str, Any]] = []
        self.cubes: dict[tuple[int, int, int, str | None], bytes] = {}  # answers for the current steps only
        # dynamics answers by format for the current version (100,000 samples are megabytes to encode)
        self.tables: dict[str, tuple[tuple, Any, str]] = {}


def step_keys(index: RunIndex) -> list[tuple[int, str]]:
    """``(step, arrays sha256)`` of every servable step, in step order: what identifies a run's content."""
    return [(s, str(index.records[s]["files"]["arrays"]["sha256"])) for s in index.steps]


def full_table(dyn: Dynamics) -> dict[str, np.ndarray]:
    """The dynamics table plus the suspicion ``score`` and the ``category`` name (empty when not a suspect)."""
    table = dyn.table()
    table["score"] = suspects.score(table)
    codes = suspects.categorize(table)
    names = np.asarray(("",) + suspects.CATEGORIES, dtype=object)
    table["category"] = names[codes.astype(np.int64) + 1]
    return table


class RunStates:
    """Per-run incremental states, kept for the ``max_runs`` most recently used runs.

    A state has ``keys``: the ``(step, hash)`` pairs folded into it so far. It is kept while those are a prefix of
    the run's current steps (new steps are folded in by the caller) and started afresh when an earlier step changed.
    Shared by the dynamics and the training (step statistics, alarms, layers) views.
    """

    def __init__(self, max_runs: int) -> None:
        self._runs: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._max_runs = max_runs
        self._lock = threading.Lock()

    def current(self, index: RunIndex, make: Callable[[dict[str, Any]], Any]) -> tuple[Any, list[tuple[int, str]]]:
        """``(state, keys)``: the run's state (``make(latest record)`` when new or outdated) and its step keys."""
        keys = step_keys(index)
        if not keys:
            raise errors.NotFoundError(f"Run {index.name!r} has no servable steps yet.")
        with self._lock:
            state = self._runs.get(index.directory)
            if state is None or state.keys != keys[:len(state.keys)]:
                state = self._runs[index.directory] = make(index.latest() or {})
            self._runs.move_to_end(index.directory)
            while len(self._runs) > self._max_runs:
                self._runs.popitem(last=False)
        return state, keys


class Diagnosis:
    """In-memory, incremental training-dynamics answers for the plugin's runs."""

    def __init__(self, max_runs: int = _MAX_RUNS, positions: PositionSource | None = None,
                 quantities: QuantitySource | None = None, checkpoints: Checkpoints | None = None) -> None:
        """``quantities``, when given, supplies each step's per-sample quantities ready-made (from the step's
        digest) instead of their being computed from the logged logits; ``checkpoints`` saves a run's statistics
        whenever steps were folded in and restores them when the run is first asked for."""
        self._positions = positions
        self._quantities = quantities
        self._checkpoints = checkpoints
        self._runs = RunStates(max_runs)

    # -- state -----------------------------------------------------------------------------------------------------

    def state(self, index: RunIndex, positions: bool = True) -> _RunState:
        """The run's dynamics, brought up to date with its servable steps (new steps only, when possible).

        ``positions=False`` leaves the 2-D trajectories as they are: only the ``dynamics`` table shows them, and
        folding a projected step in means the class of the map region under each of its samples (decoding every
        sample's position: about a second a step at 100,000 samples), which the cube and suspects never use.
        """
        state, keys = self._runs.current(index, lambda latest: _RunState(latest.get("n_classes")))
        with state.lock:
            if self._checkpoints is not None and not state.keys and not state.position_keys:
                self._restore(index, state, keys)
            before = (len(state.keys), list(state.position_keys))
            for step, digest in keys[len(state.keys):]:
                self._fold(index, state, step)
                state.keys.append((step, digest))
            if positions and self._positions is not None:
                self._fold_positions(index, state)
            if self._checkpoints is not None and before != (len(state.keys), state.position_keys):
                meta = {"keys": state.keys, "position_keys": state.position_keys, "skipped": state.skipped}
                self._checkpoints.save(index, json.loads(json.dumps(meta)), state.dynamics.to_arrays(copy=True))
        return state

    def _restore(self, index: RunIndex, state: _RunState, keys: list[tuple[int, str]]) -> None:
        """Start from the run's saved statistics when they cover a prefix of its current steps."""
        try:
            saved = self._checkpoints.load(index)
            if saved is None:
                return
            meta, arrays = saved
            done = [(int(s), str(d)) for s, d in meta["keys"]]
            if not done or done != keys[:len(done)]:
                return
            dyn = Dynamics.from_arrays(arrays)
            position_keys = [(int(s), str(k)) for s, k in meta["position_keys"]]
            skipped = [{"step": int(p["step"]), "error": str(p["error"])} for p in meta["skipped"]]
        except (KeyError, TypeError, ValueError) as err:  # a damaged or foreign save: fold from the steps instead
            logger.info("DVI: saved dynamics of %s not used: %s", index.name, err)
            return
        if dyn.projected_steps != [s for s, _ in position_keys]:
            return
        state.dynamics, state.keys, state.position_keys, state.skipped = dyn, done, position_keys, skipped

    def _fold_positions(self, index: RunIndex, state: _RunState) -> None:
        """Fold newly projected steps into the trajectories; start over when an earlier step changed."""
        source = self._positions
        keys = [(step, key) for step, key in ((s, source.key(index, s)) for s in index.steps) if key is not None]
        if keys[:len(state.position_keys)] != state.position_keys:
            state.dynamics.reset_positions()
            state.position_keys = []
        for step, key in keys[len(state.position_keys):]:
            try:
                state.dynamics.add_positions(source.load(index, step))
            except (OSError, ValueError, storage.StepError) as err:  # e.g. a cache file removed meanwhile
                logger.warning("DVI: positions of step %s of %s not used: %s", step, index.name, err)
                return  # the next request tries again from here
            state.position_keys.append((step, key))

    def _fold(self, index: RunIndex, state: _RunState, step: int) -> None:
        """Add one step; a step whose files cannot be read or hold malformed arrays is skipped and reported."""
        if self._quantities is not None:
            try:
                found = self._quantities(index, step)
            except (errors.PublicError, storage.StepError) as err:
                state.skipped.append({"step": step, "error": str(err)})
                return
            if found is not None:
                item, q, n_classes = found
                try:
                    state.dynamics.add_quantities(item, q, n_classes)
                except ValueError as err:
                    state.skipped.append({"step": step, "error": str(err)})
                return
        try:
            arrays = index.store.load_arrays(index.records[step], features=False)
        except storage.StepError as err:
            state.skipped.append({"step": step, "error": str(err)})
            return
        if "logits" not in arrays:
            raise errors.NotFoundError(f"Run {index.name!r} logged no logits (imported without its classifier), so "
                                       "it has no training dynamics.")
        try:
            state.dynamics.add_step(StepInput.from_arrays(step, arrays))
        except ValueError as err:
            state.skipped.append({"step": step, "error": str(err)})

    @staticmethod
    def _classes(index: RunIndex, n_classes: int) -> list[str]:
        names = (index.latest() or {}).get("classes") or []
        return [str(n) for n in names] if len(names) == n_classes else [str(c) for c in range(n_classes)]

    def _header(self, index: RunIndex, state: _RunState) -> dict[str, Any]:
        dyn = state.dynamics
        return {"run": index.name, "steps": list(dyn.steps), "n": dyn.n_samples,
                "classes": self._classes(index, dyn.n_classes or 0), "skipped_steps": list(state.skipped)}

    # -- routes ----------------------------------------------------------------------------------------------------

    def dynamics_encoded(self, index: RunIndex, fmt: str = "json") -> tuple[bytes, str]:
        """:meth:`dynamics` as response bytes, JSON encoded too: every format's bytes are kept per run version (100,000
        samples are megabytes to encode), so repeated requests encode nothing again."""
        _choice("format", fmt, ("json", "csv", "binary"))
        state = self.state(index)
        with state.lock:
            version = _version(state)
            cached = state.tables.get(fmt)
            if cached is not None and cached[0] == version:
                return cached[1], cached[2]
            table, header = full_table(state.dynamics), self._header(index, state)
            if fmt == "csv":
                answer = table_csv(table, header["classes"]), "text/csv; charset=utf-8"
            elif fmt == "binary":
                answer = table_binary(table, header), "application/octet-stream"
            else:
                answer = table_json(table, header), "application/json"
            state.tables = {k: v for k, v in state.tables.items() if v[0] == version}
            state.tables[fmt] = (version, *answer)
            return answer

    def dynamics(self, index: RunIndex, fmt: str = "json") -> tuple[dict[str, Any] | bytes, str]:
        """Every sample's statistics: JSON (column lists), CSV (one row per sample) or the binary form."""
        _choice("format", fmt, ("json", "csv", "binary"))
        if fmt != "json":
            return self.dynamics_encoded(index, fmt)
        state = self.state(index)
        with state.lock:
            table, header = full_table(state.dynamics), self._header(index, state)
        return {**header, "columns": {name: _json_list(table[name]) for name in COLUMNS}}, "application/json"

    def suspects(self, index: RunIndex, k: int = 100, fmt: str = "json") -> tuple[dict[str, Any] | bytes, str]:
        """The top ``k`` suspects with category, score and reason, as JSON or CSV."""
        _choice("format", fmt, ("json", "csv"))
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise errors.InvalidArgumentError(f"Parameter 'k' must be an integer in [1, {MAX_K}], got {k!r}.")
        state = self.state(index, positions=False)  # suspects use no trajectory column
        with state.lock:
            table, header = state.dynamics.table(), self._header(index, state)
        rows = suspects.suspects(table, header["classes"], k)
        total = int((suspects.categorize(table) != suspects.NONE).sum())
        if fmt == "csv":
            return suspects_csv(rows, header["classes"]), "text/csv; charset=utf-8"
        return {**header, "k": k, "total": total, "suspects": rows}, "application/json"

    def cube(self, index: RunIndex, rows: int = DEFAULT_ROWS, cols: int = DEFAULT_COLS,
             split: str | None = None) -> tuple[bytes, str]:
        """The correctness cube summarised to ``rows`` x ``cols`` pixels, in the binary form.

        Answers are kept until the run's steps change (the tab asks again on every resize and step change).
        """
        for name, value in (("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PIXELS:
                raise errors.InvalidArgumentError(
                    f"Parameter '{name}' must be an integer in [1, {MAX_PIXELS}], got {value!r}.")
        if split not in (None, "", "train", "test"):
            raise errors.InvalidArgumentError(f"Parameter 'split' must be 'train' or 'test', got {str(split)[:20]!r}.")
        state = self.state(index, positions=False)  # the cube uses no trajectory column
        key = (len(state.keys), rows, cols, split or None)
        with state.lock:
            if key not in state.cubes:
                dyn = state.dynamics
                built = cube.build(dyn.correct_matrix(), dyn.table(), dyn.steps, dyn.class_curves(), dyn.n_classes,
                                   rows, cols, split or None)
                state.cubes = {k: v for k, v in state.cubes.items() if k[0] == key[0]}  # older steps' answers go
                if len(state.cubes) >= 8:
                    state.cubes.pop(next(iter(state.cubes)))
                state.cubes[key] = cube.encode(built, self._header(index, state))
            return state.cubes[key], "application/octet-stream"


class ServicePositions:
    """A :class:`PositionSource` over the plugin's projection service: the cached 2-D result of each ready step.

    ``service.result(index, step)`` must return None while the step is not projected, else an object with ``ids``,
    ``xy``, ``bounds`` (x0, y0, x1, y1), ``name`` and ``prev_name``. ``region``, when given, maps
    ``(index, step, result)`` to the class of the map region under each sample (for example the head applied to
    the decoded coordinates); without it ``steps_other_region`` is reported as -1.
    """

    def __init__(self, service: Any, region: Callable[[RunIndex, int, Any], Any] | None = None) -> None:
        self.service = service
        self.region = region

    def key(self, index: RunIndex, step: int) -> str | None:
        result = self.service.result(index, step)
        return None if result is None else f"{result.name}<{result.prev_name}"

    def load(self, index: RunIndex, step: int) -> Positions:
        result = self.service.result(index, step)
        x0, _, x1, _ = result.bounds
        region = self.region(index, step, result) if self.region is not None else None
        return Positions(step, np.asarray(result.ids), np.asarray(result.xy), float(x1 - x0),
                         None if region is None else np.asarray(region), self.key(index, step) or "")


def _version(state: _RunState) -> tuple:
    """What a run's dynamics answers depend on: the steps and projections folded in, and the steps skipped."""
    return tuple(state.keys), tuple(state.position_keys), len(state.skipped)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise errors.InvalidArgumentError(
            f"Parameter '{name}' must be one of {', '.join(repr(a) for a in allowed)}, got {str(value)[:20]!r}.")


def _json_list(values: np.ndarray) -> list[Any]:
    """A column as JSON values: floats rounded to 5 decimals, NaN as null."""
    if values.dtype.kind == "f":
        rounded = np.round(values, 5)
        return [None if v != v else v for v in rounded.tolist()]
    return values.tolist()


def table_json(table: dict[str, np.ndarray], header: dict[str, Any]) -> bytes:
    """The ``dynamics`` JSON answer: ``header`` plus ``columns`` (one list per column, floats rounded to 5 decimals,
    NaN as null). The same bytes as ``json.dumps`` of those lists, formatted a column at a time with numpy: at 100,000
    samples ``json.dumps`` of the lists took most of a first request (0.3-0.7 s), numpy a few times less."""
    n = len(table["id"])
    texts = {name: textcols.column_text(table[name], as_json=True) for name in COLUMNS} if n else {}
    if not n or any(t is None for t in texts.values()):
        body = {**header, "columns": {name: _json_list(table[name]) for name in COLUMNS}}
        return json.dumps(body, allow_nan=False).encode("utf-8")
    parts = [json.dumps(header, allow_nan=False)[:-1].encode("utf-8"), b', "columns": {']
    for k, name in enumerate(COLUMNS):
        parts += [b", " if k else b"", json.dumps(name).encode("utf-8"), b": [",
                  textcols.rows([*texts[name], textcols.const(n, b", ")])[:-2], b"]"]
    return b"".join([*parts, b"}}"])


def table_csv(table: dict[str, np.ndarray], classes: list[str]) -> bytes:
    """The per-sample table as CSV, with the label and last prediction also by class name: the bytes Python's
    ``csv.writer`` writes for the rounded values (see :func:`table_json`), formatted a column at a time."""
    names = [*COLUMNS[:2], "label_name", *COLUMNS[2:]]
    n = len(table["id"])
    texts = {name: textcols.column_text(table[name], as_json=False) for name in COLUMNS if name != "split"} if n else {}
    if not n or any(v is None for v in texts.values()):
        return _table_csv_rows(table, classes)
    texts["split"] = textcols.lookup(np.asarray(table["split"]) == 1, [b"test", b"train"])
    label = np.asarray(table["label"], np.int64)
    found, codes = np.unique(label, return_inverse=True)
    texts["label_name"] = textcols.lookup(codes, [textcols.csv_field(_class_name(classes, int(c))) for c in found])
    blocks: list[np.ndarray] = []
    for k, name in enumerate(names):
        blocks += [*texts[name], textcols.const(n, b"\n" if k == len(names) - 1 else b",")]
    return b",".join(textcols.csv_field(name) for name in names) + b"\n" + textcols.rows(blocks)


def _table_csv_rows(table: dict[str, np.ndarray], classes: list[str]) -> bytes:
    """:func:`table_csv` row by row with ``csv.writer`` (an empty table, or values too large for the fast path)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [*COLUMNS[:2], "label_name", *COLUMNS[2:]]
    writer.writerow(names)
    columns = {name: _json_list(table[name]) for name in COLUMNS}
    columns["split"] = ["train" if s == 1 else "test" for s in columns["split"]]
    columns["label_name"] = [_class_name(classes, c) for c in columns["label"]]
    writer.writerows(zip(*(columns[n] for n in names), strict=True))
    return out.getvalue().encode("utf-8")


def suspects_csv(rows: list[dict[str, Any]], classes: list[str]) -> bytes:
    """Suspects as CSV: rank, id, label, label name, prediction, prediction name, split, category, score, reason."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["rank", "id", "label", "label_name", "pred", "pred_name", "split", "category", "score",
                     "reason"])
    for rank, row in enumerate(rows, start=1):
        writer.writerow([rank, row["id"], row["label"], _class_name(classes, row["label"]), row["pred"],
                         _class_name(classes, row["pred"]), row["split"], row["category"], row["score"],
                         row["reason"]])
    return out.getvalue().encode("utf-8")


def _class_name(classes: list[str], c: int) -> str:
    return classes[c] if 0 <= c < len(classes) else str(c)


_BINARY_DTYPES = {
    "id": np.int32, "label": np.int32, "split": np.uint8, "n_steps": np.int32, "first_step": np.int32,
    "last_step": np.int32, "correctness": np.float32, "aum": np.float32,
    "confidence": np.float32, "variability": np.float32, "forgetting": np.int32, "learned_from": np.int32,
    "flips": np.int32, "never_learned": np.uint8, "last_pred": np.int32, "last_correct": np.uint8,
    "last_p_label": np.float32, "last_p_pred": np.float32, "mode_pred": np.int32, "mode_count": np.int32,
    "n_projected": np.int32, "path_length": np.float32, "max_jump": np.float32, "steps_other_region": np.int32,
    "score": np.float32, "category": np.int8,
}


def table_binary(table: dict[str, np.ndarray], header: dict[str, Any]) -> bytes:
    """The per-sample table in the plugin's binary form; ``category`` as an index into the header's list (-1 none).

    Integers go as int32 (JavaScript reads them without BigInt), or as float64 when a column's values do not fit.
    """
    names = list(suspects.CATEGORIES)
    arrays = dict(table)
    codes = np.full(len(table["id"]), -1, np.int8)
    for i, name in enumerate(names):
        codes[table["category"] == name] = i
    arrays["category"] = codes
    dtypes = {name: _fit(arrays[name], dtype) for name, dtype in _BINARY_DTYPES.items()}
    return binary.encode({**header, "categories": names}, arrays, dtypes)


def _fit(values: np.ndarray, dtype: Any) -> Any:
    """``dtype``, or float64 (exact to 2**53) for an int32 column whose values do not fit in int32."""
    if np.dtype(dtype) == np.int32 and values.size and np.abs(values).max() >= 2 ** 31:
        return np.float64
    return dtype
