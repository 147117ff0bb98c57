"""Which runs and steps exist: TensorBoard's data provider joined with the files under each run's DVI folder.

Run and step lists come only from ``context.data_provider`` (the index records in the event files), as TensorBoard
requires under both loaders. A run name is turned into a directory only after the provider listed it, and the path
is confined to the logdir. Parsed records are cached per run and refreshed when the provider's series changes.

A run the provider lists without DVI records but with a ``projector_config.pbtxt`` (torch's ``add_embedding``) is an
*imported* run: its steps come from that config and are converted into the same storage format by
:mod:`projector_import`, lazily (see :meth:`Catalog.index`'s ``convert``).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
from typing import Any

from tensorboard import errors
from tensorboard.data import provider

from tensorboard_plugin_dvi import metadata, projector_import, storage

logger = logging.getLogger(__name__)

_ALL = 1 << 62  # "downsample" meaning keep every datum


@dataclasses.dataclass
class RunIndex:
    """The index of one run: its verified step records and the steps that cannot be served."""

    name: str
    directory: str
    records: dict[int, dict[str, Any]]
    problems: list[storage.StepProblem]
    store: storage.RunStore
    source: str = "dvi"  # "projector": imported from torch's add_embedding output, no head logged
    pending: list[int] = dataclasses.field(default_factory=list)  # imported steps listed but not converted yet
    tag: str | None = None  # the imported embedding tag given the time axis
    error: str | None = None  # a problem of the whole imported run (its projector_config.pbtxt)

    @property
    def steps(self) -> list[int]:
        """Servable steps in increasing order."""
        return sorted(self.records)

    @property
    def listed_steps(self) -> list[int]:
        """Servable steps and imported steps still to be converted, in increasing order."""
        return sorted(set(self.records) | set(self.pending))

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
        self._imports: dict[str, projector_import.ProjectorRun] = {}
        self._import_queue: collections.deque[projector_import.ProjectorRun] = collections.deque()
        self._import_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def series(self, ctx, experiment_id: str) -> dict[str, Any]:
        """``{run: TensorTimeSeries}`` of the DVI index tag, straight from the data provider."""
        mapping = self._provider.list_tensors(
            ctx, experiment_id=experiment_id, plugin_name=metadata.PLUGIN_NAME,
            run_tag_filter=provider.RunTagFilter(tags=[metadata.TAG]),
        )
        return {run: tags[metadata.TAG] for run, tags in mapping.items() if metadata.TAG in tags}

    def projector_runs(self, ctx, experiment_id: str, exclude: Any = (), only: str | None = None) -> list[str]:
        """Runs the provider lists (not in ``exclude``) whose directory holds a ``projector_config.pbtxt``."""
        names = []
        for listed in self._provider.list_runs(ctx, experiment_id=experiment_id):
            name = listed.run_name
            if name in exclude or (only is not None and name != only):
                continue
            try:
                directory = confine(self._logdir, name)
            except errors.NotFoundError:
                continue
            if projector_import.has_config(directory):
                names.append(name)
        return sorted(names)

    def run_names(self, ctx, experiment_id: str) -> list[str]:
        """Sorted names of runs with DVI data, logged or importable."""
        series = self.series(ctx, experiment_id)
        return sorted([*series, *self.projector_runs(ctx, experiment_id, exclude=series)])

    def indexes(self, ctx, experiment_id: str) -> list[RunIndex]:
        """Every run's index, cheaply: imported runs are not converted here (``pending`` lists what is not)."""
        series = self.series(ctx, experiment_id)
        out = [self._dvi_index(ctx, experiment_id, run, series[run]) for run in series]
        out += [self._imported_index(run, convert=False)
                for run in self.projector_runs(ctx, experiment_id, exclude=series)]
        return sorted(out, key=lambda index: index.name)

    def index(self, ctx, experiment_id: str, run: str, *, convert: bool = True) -> RunIndex:
        """The index of ``run``; NotFoundError when the provider does not list it.

        For an imported run, ``convert`` first converts the steps whose source files are new or changed (seconds
        per step on large embeddings); without it, those steps are only listed in ``pending``.
        """
        series = self.series(ctx, experiment_id)
        if run in series:
            return self._dvi_index(ctx, experiment_id, run, series[run])
        if self.projector_runs(ctx, experiment_id, exclude=series, only=run):
            return self._imported_index(run, convert=convert)
        raise errors.NotFoundError(f"Unknown run {run!r}: no DVI data for it in this logdir.")

    def convert_in_background(self, index: RunIndex) -> None:
        """Queue an imported run's pending steps for conversion by the catalog's one background import thread."""
        with self._lock:
            imported = self._imports.get(index.directory)
            if imported is None or imported in self._import_queue:
                return
            self._import_queue.append(imported)
            if self._import_thread is None or not self._import_thread.is_alive():
                self._import_thread = threading.Thread(target=self._import_work, name="dvi-import", daemon=True)
                self._import_thread.start()

    def _import_work(self) -> None:
        while True:
            with self._lock:
                if not self._import_queue:
                    self._import_thread = None
                    return
                imported = self._import_queue[0]
            try:
                imported.scan(convert=True)
            except Exception:  # noqa: BLE001 - logged; the run's next request retries
                logger.exception("DVI: importing %s failed", imported.run_dir)
            finally:
                with self._lock:
                    self._import_queue.popleft()

    def _imported_index(self, run: str, *, convert: bool) -> RunIndex:
        directory = confine(self._logdir, run)
        with self._lock:
            imported = self._imports.get(directory)
            if imported is None:
                imported = self._imports[directory] = projector_import.ProjectorRun(
                    directory, lambda path: confine(self._logdir, os.path.join(run, path)))
        scan = imported.scan(convert=convert)
        return RunIndex(run, directory, scan.records, scan.problems, imported.store, source="projector",
                        pending=scan.pending, tag=scan.tag, error=scan.error)

    def _dvi_index(self, ctx, experiment_id: str, run: str, ts: Any) -> RunIndex:
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
