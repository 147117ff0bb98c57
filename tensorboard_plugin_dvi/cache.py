"""Derived results of a run on disk: visualization models, 2-D coordinates, metrics and landscapes.

Results live under ``<run>/plugins/dvi/cache/<settings key>/``, so changing a setting (variant, seed, k, schema)
never serves a stale result. Each step's result is named after the hash of the step's arrays, and records the name of
the previous step's result it was warm-started from: re-logging any earlier step invalidates the chain after it.
Files are written atomically; a result that fails to load counts as missing and is recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import storage

CACHE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything that changes a projection's result (the device does not)."""

    variant: str = "dvi"
    seed: int = 0
    n_neighbors: int = 15

    def key(self) -> str:
        """Short stable folder name for these settings."""
        import dvi_core

        blob = json.dumps({"v": CACHE_VERSION, "method": dvi_core.__version__, **dataclasses.asdict(self)},
                          sort_keys=True).encode()
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


def atomic_save(path: str, save: Callable[[str], None]) -> None:
    """Call ``save(tmp_path)`` then rename into ``path``: readers never see a partial file."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="tmp-", suffix=".part", dir=directory)  # torch.save rejects dot-names
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ResultCache:
    """Reads and writes one run's results for one :class:`Settings`."""

    def __init__(self, store: storage.RunStore, settings: Settings) -> None:
        self.settings = settings
        self.root = os.path.join(store.root, "cache", settings.key())

    def _path(self, name: str, suffix: str) -> str:
        return os.path.join(self.root, name + suffix)

    def has(self, record: dict[str, Any], prev_record: dict[str, Any] | None) -> bool:
        """Whether a result exists for this exact step data, warm-started from this exact previous step."""
        meta = self._read_meta(result_name(record))
        expected_prev = result_name(prev_record) if prev_record else None
        return meta is not None and meta.get("prev") == expected_prev

    def _read_meta(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self._path(name, ".json"), encoding="utf-8") as handle:
                meta = json.load(handle)
        except (OSError, ValueError):
            return None
        ok = isinstance(meta, dict) and all(os.path.exists(self._path(name, s)) for s in (".npz", ".model.pt"))
        return meta if ok else None

    def save(self, record: dict[str, Any], prev_record: dict[str, Any] | None, ids: np.ndarray, xy: np.ndarray,
             metrics: dict[str, Any],
             save_model: Callable[[str], None]) -> StepResult:
        """Store a step's result; the JSON written last marks it complete."""
        name = result_name(record)
        atomic_save(self._path(name, ".model.pt"), save_model)
        storage.atomic_write(self._path(name, ".npz"), storage.npz_bytes({"ids": ids, "xy": xy.astype(np.float32)}))
        meta = {"step": int(record["step"]), "prev": result_name(prev_record) if prev_record else None,
                "metrics": metrics}
        storage.atomic_write(self._path(name, ".json"), json.dumps(meta).encode("utf-8"))
        return self.load(record)  # type: ignore[return-value]

    def load(self, record: dict[str, Any]) -> StepResult | None:
        """The stored result of this step's data, or None if absent or unreadable."""
        name = result_name(record)
        meta = self._read_meta(name)
        if meta is None:
            return None
        try:
            with np.load(self._path(name, ".npz"), allow_pickle=False) as npz:
                ids, xy = npz["ids"], npz["xy"]
        except (OSError, ValueError, KeyError):
            return None
        return StepResult(step=int(record["step"]), name=name, prev_name=meta.get("prev"), ids=ids, xy=xy,
                          bounds=map_bounds(xy), metrics=meta.get("metrics", {}),
                          model_path=self._path(name, ".model.pt"))

    def landscape_path(self, record: dict[str, Any], size: int, bounds: tuple[float, ...]) -> str:
        """Where the landscape PNG of this step at ``size`` pixels over ``bounds`` is cached."""
        key = hashlib.sha256(json.dumps([round(b, 6) for b in bounds]).encode()).hexdigest()[:8]
        return self._path(result_name(record), f".landscape{size}-{key}.png")


def map_bounds(xy: np.ndarray, trim: float = 0.005, margin: float = 0.1) -> tuple[float, float, float, float]:
    """The map's square box: around the samples' layout without its most extreme 0.5 % per side, plus 10 %.

    A handful of outliers (e.g. tiny disconnected neighbourhoods that the layout pushes away) would otherwise
    shrink everyone else into a corner of the map; they still have coordinates and show up when zooming out.
    """
    from dvi_core.projector import square_bounds

    if len(xy) >= 50:
        lo, hi = np.quantile(xy, trim, axis=0), np.quantile(xy, 1 - trim, axis=0)
        inside = ((xy >= lo) & (xy <= hi)).all(1)
        xy = xy[inside] if inside.sum() >= 2 else xy
    return square_bounds(np.asarray(xy, dtype=np.float64), margin)
