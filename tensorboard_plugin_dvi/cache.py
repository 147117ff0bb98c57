"""Derived results of a run on disk: visualization models, 2-D coordinates, metrics and landscapes.

Results live under ``<run>/plugins/dvi/cache/<settings key>/``, so changing a setting (variant, seed, k, method
version) never serves a stale result. Each step's result is named after the hash of the step's arrays, and records
the name of the previous step's result it was warm-started from: re-logging any earlier step invalidates the chain
after it.

A result is three files: ``<name>.model.npz`` (the saved ``StepProjection``, pickle-free), ``<name>.npz``
(ids and coordinates) and ``<name>.json`` (metrics; written last, it marks the result complete). A result whose files
fail to load (truncated, altered, holding objects) is *discarded*: its files are deleted, the reason is remembered for
the run's status, and it is recomputed like a missing one. Landscape PNGs are cached per step in a few size buckets.

:class:`ResultIndex` is the read side used by the routes: which steps are ready, and their loaded results. It never
goes through the projection queue.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import fsio, storage

CACHE_VERSION = 2
SIZE_BUCKETS = (128, 256, 512, 1024)
"""Landscape sizes rendered and cached; other requested sizes are resized from the next bucket up."""
_PARTS = (".json", ".npz", ".model.npz")
MAX_PRERENDER_DEPTH = 5
"""Deepest tile pyramid rendered ahead: 1,364 tiles of 256 px a step (levels 1..5); deeper levels only on demand."""


PRERENDER_DEPTH = 3
"""Default depth of the landscape tile pyramid rendered ahead for a viewed step: levels 1..3, i.e. every tile a view
zoomed in up to 4x past where the overview stops being sharp asks for (4 + 16 + 64 = 84 tiles of 256 px a step)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that changes a projection's result (the device does not), and how much is rendered ahead.

    ``prerender_depth``: levels 1..depth of a step's landscape tile pyramid are rendered in the background, at lower
    priority than projecting steps and their overviews, for the steps the tab has asked for (the viewed step first),
    so that zooming in draws cached tiles; 0 renders no tiles ahead. It changes only when work is done, never a
    result, so it is not part of :meth:`key`."""

    variant: str = "dvi"
    seed: int = 0
    n_neighbors: int = 15
    prerender_depth: int = dataclasses.field(default=PRERENDER_DEPTH, compare=False, metadata={"key": False})

    def __post_init__(self) -> None:
        if not 0 <= self.prerender_depth <= MAX_PRERENDER_DEPTH:
            raise ValueError(f"prerender_depth must be between 0 and {MAX_PRERENDER_DEPTH}. "
                             f"Got {self.prerender_depth} instead.")

    def key(self) -> str:
        """Short stable folder name for the settings that change results."""
        from tensorboard_plugin_dvi import method

        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("key", True)}
        blob = json.dumps({"v": CACHE_VERSION, "method": method.version(), **fields}, sort_keys=True).encode()
        return f"{self.variant}-{hashlib.sha256(blob).hexdigest()[:12]}"


@dataclasses.dataclass
class StepResult:
    """A projected step: where every sample lands, the map's bounds, and the quality metrics."""

    step: int
    name: str  # result name: step and data hash
    prev_name: str | None  # result name of the step this one was warm-started from
    ids: np.ndarray  # [N] sample ids, as logged
    xy: np.ndarray  # [N, 2] float32 coordinates of every sample (train and test)
    bounds: tuple[float, float, float, float]
    metrics: dict[str, Any]
    model_path: str  # the saved dvi_core.StepProjection


def result_name(record: dict[str, Any]) -> str:
    """Name of a step's result: its step number and the hash of its arrays."""
    return f"step_{int(record['step']):08d}-{record['files']['arrays']['sha256'][:12]}"


def size_bucket(size: int) -> int:
    """The cached size a requested landscape size is rendered at (the smallest bucket >= size)."""
    return next((b for b in SIZE_BUCKETS if b >= size), SIZE_BUCKETS[-1])


class ResultCache:
    """Reads and writes one run's results for one :class:`Settings`."""

    def __init__(self, store: storage.RunStore, settings: Settings) -> None:
        self.settings = settings
        self.store = store
        self.root = os.path.join(store.root, "cache", settings.key())
        self.discarded: dict[str, str] = {}  # result name -> why its files were thrown away

    def _path(self, name: str, suffix: str) -> str:
        path = os.path.join(self.root, name + suffix)
        if self.store.logdir_root is not None and not fsio.inside(self.store.logdir_root, path):
            raise storage.StepError(f"the cache folder of {name} resolves outside the logdir; not followed")
        return path

    def has(self, record: dict[str, Any], prev_record: dict[str, Any] | None,
            earlier: set[str | None] | None = None) -> bool:
        """Whether a complete result exists for this step's data, warm-started from this exact previous step (or,
        given ``earlier``, from any of those result names)."""
        meta = self._read_meta(result_name(record))
        if meta is None:
            return False
        if earlier is not None:
            return meta.get("prev") in earlier
        return meta.get("prev") == (result_name(prev_record) if prev_record else None)

    def _read_meta(self, name: str) -> dict[str, Any] | None:
        try:
            meta = json.loads(fsio.read_json_file(self._path(name, ".json"), limit=1 << 20))
        except (OSError, storage.StepError):
            return None
        except (ValueError, RecursionError, fsio.UnreadableFile) as err:
            self.discard(name, f"its metrics file is not valid JSON ({err})")
            return None
        parts_ok = all(os.path.exists(self._path(name, s)) for s in _PARTS)
        if not isinstance(meta, dict) or not isinstance(meta.get("metrics", {}), dict) or not parts_ok:
            if isinstance(meta, dict) and not parts_ok:
                return None  # a part is still being written, or was deleted: not ready (recomputed on request)
            self.discard(name, "its metrics file is not a JSON object")
            return None
        return meta

    def discard(self, name: str, why: str) -> None:
        """Delete a result's files (it will be recomputed) and remember why, for the run's status."""
        self.discarded[name] = why
        self._remove(name)

    def _remove(self, name: str) -> None:
        """Delete a result's files and its rendered landscapes."""
        try:
            rendered = [n for n in os.listdir(self.root) if n.startswith(name + ".landscape")]
        except OSError:
            rendered = []
        fsio.remove_quietly(*(os.path.join(self.root, n) for n in [name + s for s in _PARTS] + rendered))

    def save(self, record: dict[str, Any], prev_record: dict[str, Any] | None, ids: np.ndarray, xy: np.ndarray,
             metrics: dict[str, Any], save_model: Callable[[str], None]) -> StepResult:
        """Store a step's result; ``save_model(path)`` writes the model. The JSON, written last, marks it complete."""
        name = result_name(record)
        self._remove(name)  # an older result of the same data (another predecessor) and its landscapes
        fsio.atomic_write(self.store.writable(self._path(name, ".model.npz")), save_model, by_path=True)
        fsio.atomic_write(self.store.writable(self._path(name, ".npz")),
                          fsio.npz_bytes({"ids": ids, "xy": xy.astype(np.float32)}))
        meta = {"step": int(record["step"]), "prev": result_name(prev_record) if prev_record else None,
                "metrics": metrics}
        fsio.atomic_write(self.store.writable(self._path(name, ".json")), json.dumps(meta).encode("utf-8"))
        self.discarded.pop(name, None)
        result = self.load(record)
        if result is None:
            raise storage.StepError(f"the result of step {record['step']} could not be read back after writing it")
        return result

    def load(self, record: dict[str, Any]) -> StepResult | None:
        """The stored result of this step's data; None if absent, or if unreadable (then it is discarded)."""
        name = result_name(record)
        meta = self._read_meta(name)
        if meta is None:
            return None
        try:
            arrays = fsio.read_npz(self._path(name, ".npz"), required=("ids", "xy"))
        except (OSError, fsio.UnreadableFile) as err:
            self.discard(name, str(err))
            return None
        ids, xy = arrays["ids"], arrays["xy"]
        if ids.ndim != 1 or xy.shape != (len(ids), 2) or xy.dtype.kind != "f" or not np.isfinite(xy).all():
            self.discard(name, "its coordinates are not finite [N, 2] numbers")
            return None
        return StepResult(step=int(record["step"]), name=name, prev_name=meta.get("prev"), ids=ids, xy=xy,
                          bounds=map_bounds(xy), metrics=meta.get("metrics", {}),
                          model_path=self._path(name, ".model.npz"))

    def landscape_path(self, record: dict[str, Any], size: int, bounds: tuple[float, ...],
                       tile: tuple[int, int, int] = (0, 0, 0)) -> str:
        """Where the landscape PNG of this step at bucket ``size`` over ``bounds`` (tile z, x, y) is cached."""
        key = hashlib.sha256(json.dumps([round(b, 6) for b in bounds]).encode()).hexdigest()[:8]
        z, tx, ty = tile
        return self._path(result_name(record), f".landscape{size}-{key}-z{z}-{tx}-{ty}.png")


class ResultIndex:
    """Which steps of which runs have results, for the routes; memoised, self-healing, independent of the queue."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._caches: dict[str, ResultCache] = {}
        self._loaded: dict[tuple[str, str], tuple[tuple, StepResult]] = {}  # with the files' stat signature
        self._lock = threading.Lock()

    def results(self, store: storage.RunStore) -> ResultCache:
        """The result cache of a run directory (one object per run, so discard reasons persist)."""
        with self._lock:
            cache = self._caches.get(store.run_dir)
            if cache is None or cache.store is not store:
                cache = self._caches[store.run_dir] = ResultCache(store, self.settings)
            return cache

    def result(self, store: storage.RunStore, record: dict[str, Any], prev: dict[str, Any] | None,
               earlier: set[str | None] | None = None) -> StepResult | None:
        """The ready result of ``record`` warm-started from ``prev`` (or from any name in ``earlier``), else None."""
        cache = self.results(store)
        name = result_name(record)
        key = (store.run_dir, name)
        signature = _signature(cache.root, name)  # a few stats: damage while serving is noticed at once
        with self._lock:
            hit = self._loaded.get(key)
        accepted = earlier if earlier is not None else {result_name(prev) if prev else None}
        if hit is not None and hit[0] == signature and hit[1].prev_name in accepted:
            return hit[1]
        if not cache.has(record, prev, accepted):
            return None
        loaded = cache.load(record)
        if loaded is not None:
            with self._lock:
                if len(self._loaded) > 4096:
                    self._loaded.clear()
                self._loaded[key] = (signature, loaded)
        return loaded

    def discard(self, store: storage.RunStore, result: StepResult, why: str) -> None:
        """Throw away a result that failed to load later (its model), so it is recomputed."""
        self.results(store).discard(result.name, why)
        with self._lock:
            self._loaded.pop((store.run_dir, result.name), None)

    def discarded(self, store: storage.RunStore) -> dict[str, str]:
        """Result names of this run thrown away as unreadable, with the reason."""
        return dict(self.results(store).discarded)


def _signature(root: str, name: str) -> tuple:
    """Size and modification time of a result's files (None for a missing one)."""
    out = []
    for suffix in _PARTS:
        try:
            stat = os.stat(os.path.join(root, name + suffix))
            out.append((stat.st_size, stat.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def map_bounds(xy: np.ndarray, trim: float = 0.005, margin: float = 0.1) -> tuple[float, float, float, float]:
    """The map's square box: around the samples' layout without its most extreme 0.5 % per side, plus 10 %.

    A handful of outliers (e.g. tiny disconnected neighbourhoods that the layout pushes away) would otherwise
    shrink everyone else into a corner of the map; they still have coordinates and show up when zooming out.
    """
    if len(xy) >= 50:
        lo, hi = np.quantile(xy, trim, axis=0), np.quantile(xy, 1 - trim, axis=0)
        inside = ((xy >= lo) & (xy <= hi)).all(1)
        xy = xy[inside] if inside.sum() >= 2 else xy
    from tensorboard_plugin_dvi import method

    return method.square_bounds(np.asarray(xy, dtype=np.float64), margin)
