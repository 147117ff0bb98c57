"""Which runs and steps exist: TensorBoard's data provider joined with the files under each run's DVI folder.

Run and step lists come only from ``context.data_provider`` (the index records in the event files), as TensorBoard
requires under both loaders. A run name is turned into a directory only after the provider listed it, and the path
is confined to the logdir. Parsed records are cached per run and refreshed when the provider's series changes.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any

from tensorboard import errors
from tensorboard.data import provider

from tensorboard_plugin_dvi import metadata, storage

_ALL = 1 << 62  # "downsample" meaning keep every datum


@dataclasses.dataclass
class RunIndex:
    """The index of one run: its verified step records and the steps that cannot be served."""

    name: str
    directory: str
    records: dict[int, dict[str, Any]]
    problems: list[storage.StepProblem]
    store: storage.RunStore

    @property
    def steps(self) -> list[int]:
        """Servable steps in increasing order."""
        return sorted(self.records)

    def latest(self) -> dict[str, Any] | None:
        """Record of the last servable step (for N, D and class names)."""
        return self.records[max(self.records)] if self.records else None


def confine(logdir: str, run: str) -> str:
    """Directory of ``run`` under ``logdir``; raises NotFoundError for anything escaping the logdir."""
    if "\x00" in run:
        raise errors.NotFoundError(f"Unknown run {run!r}.")
    root = os.path.realpath(logdir)
    path = os.path.realpath(os.path.join(root, run))
    if os.path.commonpath([root, path]) != root:
        raise errors.NotFoundError(f"Unknown run {run!r}.")
    return path


class Catalog:
    """Cached view of the DVI runs that the data provider lists."""

    def __init__(self, data_provider: provider.DataProvider, logdir: str) -> None:
        self._provider = data_provider
        self._logdir = logdir
        self._cache: dict[tuple[str, str], tuple[tuple, RunIndex]] = {}
        self._stores: dict[str, storage.RunStore] = {}
        self._lock = threading.Lock()

    def series(self, ctx, experiment_id: str) -> dict[str, Any]:
        """``{run: TensorTimeSeries}`` of the DVI index tag, straight from the data provider."""
        mapping = self._provider.list_tensors(
            ctx, experiment_id=experiment_id, plugin_name=metadata.PLUGIN_NAME,
            run_tag_filter=provider.RunTagFilter(tags=[metadata.TAG]),
        )
        return {run: tags[metadata.TAG] for run, tags in mapping.items() if metadata.TAG in tags}

    def run_names(self, ctx, experiment_id: str) -> list[str]:
        """Sorted names of runs with DVI data."""
        return sorted(self.series(ctx, experiment_id))

    def index(self, ctx, experiment_id: str, run: str) -> RunIndex:
        """The index of ``run``; NotFoundError when the provider does not list it."""
        series = self.series(ctx, experiment_id)
        if run not in series:
            raise errors.NotFoundError(f"Unknown run {run!r}: no DVI data for it in this logdir.")
        ts = series[run]
        key = (experiment_id, run)
        version = (ts.max_step, ts.max_wall_time)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        built = self._build(ctx, experiment_id, run)
        with self._lock:
            self._cache[key] = (version, built)
        return built

    def _store(self, run: str) -> storage.RunStore:
        directory = confine(self._logdir, run)
        with self._lock:
            if directory not in self._stores:
                self._stores[directory] = storage.RunStore(directory)
            return self._stores[directory]

    def _build(self, ctx, experiment_id: str, run: str) -> RunIndex:
        data = self._provider.read_tensors(
            ctx, experiment_id=experiment_id, plugin_name=metadata.PLUGIN_NAME, downsample=_ALL,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[metadata.TAG]),
        )
        store = self._store(run)
        records: dict[int, dict[str, Any]] = {}
        problems: dict[int, storage.StepProblem] = {}
        for datum in sorted(data.get(run, {}).get(metadata.TAG, []), key=lambda d: d.wall_time):
            try:
                record = storage.parse_record(_record_bytes(datum.numpy))
                store.check(record)
            except storage.StepError as err:
                problems[datum.step] = storage.StepProblem(datum.step, str(err))
                continue
            records[datum.step] = record  # the latest record of a re-logged step wins
            problems.pop(datum.step, None)
        _, on_disk = store.list_records()
        for problem in on_disk:
            if problem.step not in records:
                problems.setdefault(problem.step, problem)
        return RunIndex(run, store.run_dir, records, sorted(problems.values(), key=lambda p: p.step), store)


def _record_bytes(value: Any) -> bytes:
    """The JSON bytes inside an index record tensor (rank-1 string tensor of one element)."""
    try:
        item = value.reshape(-1)[0]
    except (AttributeError, IndexError) as err:
        raise storage.StepError("index record tensor is empty or not an array") from err
    return item if isinstance(item, bytes) else str(item).encode("utf-8")
