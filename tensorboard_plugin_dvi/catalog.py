"""Which runs and steps exist: TensorBoard's data provider joined with the files under each run's DVI folder.

Run and step lists come only from ``context.data_provider`` (the index records in the event files), as TensorBoard
requires under both loaders. A run name is turned into a directory only after the provider listed it, and the path
is confined to the logdir. Parsed records are cached per run and refreshed when the provider's series changes.

A run the provider lists without DVI records but with a ``projector_config.pbtxt`` (torch's ``add_embedding``) is an
*imported* run: its steps come from that config and are converted into the same storage format by
:mod:`projector_import`, lazily (see :meth:`Catalog.index`'s ``convert``).

Where a run's files are and whether they may be read is :mod:`discovery`'s answer (symlink policy). An index is
rebuilt when the provider's series changes *or* a file in the run's DVI folder changes (one ``scandir``), so damage
done while TensorBoard runs is reported at once. A step whose files fail to load later (found by a route) is marked
broken with :meth:`Catalog.mark_broken` and reported like any other broken step.
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

from tensorboard_plugin_dvi import discovery, metadata, projector_import, storage
from tensorboard_plugin_dvi.storage import StepProblem

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
    layer_records: dict[int, dict[str, Any]] | None = None  # per-layer weight statistics records (dvi/layers)

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

    def earlier_names(self, step: int) -> set[str | None]:
        """Result names a projection of ``step`` may have been warm-started from: any current earlier step's, or
        none (a cold start). Long logs are projected in strides first, then filled in."""
        from tensorboard_plugin_dvi.cache import result_name

        return {None, *(result_name(r) for s, r in self.records.items() if s < step)}

    def prev_record(self, step: int) -> dict[str, Any] | None:
        """Record of the servable step before ``step`` (the one it is warm-started from), or None."""
        earlier = [s for s in self.records if s < step]
        return self.records[max(earlier)] if earlier else None


def confine(logdir: str, run: str) -> str:
    """Directory of ``run`` under ``logdir``; raises NotFoundError for anything escaping the logdir."""
    location = discovery.locate(discovery.logdir_root(logdir), run)
    if location.skipped:
        raise errors.NotFoundError(f"Run {run!r} is not served: {location.skipped}.")
    return location.directory


class Catalog:
    """Cached view of the DVI runs that the data provider lists."""

    def __init__(self, data_provider: provider.DataProvider, logdir: str) -> None:
        self._provider = data_provider
        self._logdir = logdir
        self._root = discovery.logdir_root(logdir)
        self._cache: dict[tuple[str, str], tuple[tuple, RunIndex]] = {}
        self._stores: dict[str, storage.RunStore] = {}
        self._imports: dict[str, projector_import.ProjectorRun] = {}
        # run directory -> {step: (arrays hash, why)}: steps whose files failed to load after they were listed
        self._broken: dict[str, dict[int, tuple[str, str]]] = {}
        self._import_queue: collections.deque[projector_import.ProjectorRun] = collections.deque()
        self._import_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def series(self, ctx, experiment_id: str, tag: str = metadata.TAG) -> dict[str, Any]:
        """``{run: TensorTimeSeries}`` of a DVI tag (the index records by default), straight from the provider."""
        mapping = self._provider.list_tensors(
            ctx, experiment_id=experiment_id, plugin_name=metadata.PLUGIN_NAME,
            run_tag_filter=provider.RunTagFilter(tags=[tag]),
        )
        return {run: tags[tag] for run, tags in mapping.items() if tag in tags}

    def _locations(self, ctx, experiment_id: str, series: dict[str, Any]) -> list[discovery.RunLocation]:
        """Every run the provider lists, resolved; runs with DVI records first come as kind "dvi"."""
        out = []
        for listed in self._provider.list_runs(ctx, experiment_id=experiment_id):
            out.append(self._resolve(listed.run_name, series))
        return out

    def _resolve(self, run: str, series: dict[str, Any]) -> discovery.RunLocation:
        """Where a listed run is; "dvi" only once the provider has its index records (files alone are not enough:
        a run being written has files on disk before TensorBoard loaded its events)."""
        location = discovery.locate(self._root, run)
        if location.skipped:
            return location
        if run in series:
            return dataclasses.replace(location, kind=discovery.DVI)
        return dataclasses.replace(location, kind=None) if location.kind == discovery.DVI else location

    def skipped(self, ctx, experiment_id: str) -> list[discovery.RunLocation]:
        """Runs with DVI data that are not served, with the reason (e.g. a symlink out of the logdir)."""
        series = self.series(ctx, experiment_id)
        return [loc for loc in self._locations(ctx, experiment_id, series)
                if loc.skipped and (loc.name in series or self._has_dvi_files(loc.name))]

    def _has_dvi_files(self, name: str) -> bool:
        path = os.path.join(self._root, name)
        return os.path.isdir(os.path.join(path, *metadata.ASSET_DIR)) or projector_import.has_config(path)

    def run_names(self, ctx, experiment_id: str) -> list[str]:
        """Sorted names of servable runs with DVI data, logged or importable."""
        return [index.name for index in self.indexes(ctx, experiment_id)]

    def indexes(self, ctx, experiment_id: str) -> list[RunIndex]:
        """Every servable run's index, cheaply: imported runs are not converted here (``pending`` lists what is
        not). A run that cannot be indexed at all is left out (and its reason logged), never the whole listing."""
        series = self.series(ctx, experiment_id)
        out = []
        for location in self._locations(ctx, experiment_id, series):
            if location.skipped or location.kind is None:
                continue
            try:
                if location.kind == discovery.DVI:
                    out.append(self._dvi_index(ctx, experiment_id, location, series[location.name]))
                else:
                    out.append(self._imported_index(location, convert=False))
            except Exception:  # noqa: BLE001 - one strange run must not break the listing
                logger.warning("DVI: run %r cannot be indexed", location.name, exc_info=True)
        return sorted(out, key=lambda index: index.name)

    def index(self, ctx, experiment_id: str, run: str, *, convert: bool = True) -> RunIndex:
        """The index of ``run``; NotFoundError when the provider does not list it or it is not served.

        For an imported run, ``convert`` first converts the steps whose source files are new or changed (seconds
        per step on large embeddings); without it, those steps are only listed in ``pending``.
        """
        series = self.series(ctx, experiment_id)
        if run in series:
            location = self._resolve(run, series)
        else:
            listed = {r.run_name for r in self._provider.list_runs(ctx, experiment_id=experiment_id)}
            location = self._resolve(run, series) if run in listed else None
        if location is not None and location.skipped:
            raise errors.NotFoundError(f"Run {run!r} is not served: {location.skipped}.")
        if location is not None and location.kind == discovery.DVI:
            return self._dvi_index(ctx, experiment_id, location, series[run])
        if location is not None and location.kind == discovery.PROJECTOR:
            return self._imported_index(location, convert=convert)
        raise errors.NotFoundError(f"Unknown run {run!r}: no DVI data for it in this logdir.")

    def mark_broken(self, index: RunIndex, step: int, why: str) -> None:
        """Report ``step`` as broken from now on (its files failed to load after it was listed)."""
        record = index.records.get(step)
        sha = record["files"]["arrays"]["sha256"] if record else ""
        with self._lock:
            self._broken.setdefault(index.directory, {})[step] = (sha, why)
            self._cache = {k: v for k, v in self._cache.items() if v[1].directory != index.directory}

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

    def _imported_index(self, location: discovery.RunLocation, *, convert: bool) -> RunIndex:
        run, directory = location.name, location.directory
        with self._lock:
            imported = self._imports.get(directory)
            if imported is None:
                imported = self._imports[directory] = projector_import.ProjectorRun(
                    directory, lambda path: confine(self._logdir, os.path.join(run, path)), self._root)
        scan = imported.scan(convert=convert)
        records, problems = self._apply_broken(directory, scan.records, scan.problems)
        return RunIndex(run, directory, records, problems, imported.store, source="projector",
                        pending=scan.pending, tag=scan.tag, error=scan.error)

    def _dvi_index(self, ctx, experiment_id: str, location: discovery.RunLocation, ts: Any) -> RunIndex:
        key = (experiment_id, location.name)
        store = self._store(location.directory)
        layer_ts = self.series(ctx, experiment_id, metadata.LAYERS_TAG).get(location.name)
        layer_version = (layer_ts.max_step, layer_ts.max_wall_time) if layer_ts is not None else None
        version = (ts.max_step, ts.max_wall_time, layer_version, store.listing_signature())
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        built = self._build(ctx, experiment_id, location.name, store)
        if layer_ts is not None:
            built.layer_records = self._layer_records(ctx, experiment_id, location.name)
        with self._lock:
            self._cache[key] = (version, built)
        return built

    def _store(self, directory: str) -> storage.RunStore:
        with self._lock:
            if directory not in self._stores:
                self._stores[directory] = storage.RunStore(directory, self._root)
            return self._stores[directory]

    def _build(self, ctx, experiment_id: str, run: str, store: storage.RunStore) -> RunIndex:
        data = self._provider.read_tensors(
            ctx, experiment_id=experiment_id, plugin_name=metadata.PLUGIN_NAME, downsample=_ALL,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[metadata.TAG]),
        )
        records: dict[int, dict[str, Any]] = {}
        problems: dict[int, storage.StepProblem] = {}
        for datum in sorted(data.get(run, {}).get(metadata.TAG, []), key=lambda d: d.wall_time):
            try:
                record = storage.parse_record(_record_bytes(datum.numpy))
                store.check(record)
            except storage.StepError as err:
                problems[datum.step] = storage.StepProblem(datum.step, str(err))
                records.pop(datum.step, None)
                continue
            records[datum.step] = record  # the latest record of a re-logged step wins
            problems.pop(datum.step, None)
        on_disk, disk_problems = store.list_records()
        for problem in disk_problems:
            if problem.step not in records:
                problems.setdefault(problem.step, problem)
        for step in sorted(set(on_disk) - set(records) - set(problems)):
            problems[step] = storage.StepProblem(step, "incomplete step: its files and index record were written "
                                                       "but its event record was not (writer killed?); log it again")
        good, bad = self._apply_broken(store.run_dir, records, list(problems.values()))
        return RunIndex(run, store.run_dir, good, bad, store)

    def _layer_records(self, ctx, experiment_id: str, run: str) -> dict[int, dict[str, Any]]:
        """The run's per-layer statistics records from its event files (the latest record of a step wins)."""
        from tensorboard_plugin_dvi import layers

        data = self._provider.read_tensors(
            ctx, experiment_id=experiment_id, plugin_name=metadata.PLUGIN_NAME, downsample=_ALL,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[metadata.LAYERS_TAG]),
        )
        records: dict[int, dict[str, Any]] = {}
        for datum in sorted(data.get(run, {}).get(metadata.LAYERS_TAG, []), key=lambda d: d.wall_time):
            try:
                records[datum.step] = layers.parse_record(_record_bytes(datum.numpy))
            except storage.StepError:
                records.pop(datum.step, None)  # reported by the layers route when it reads the files
        return records

    def _apply_broken(self, directory: str, records: dict[int, dict[str, Any]],
                      problems: list[storage.StepProblem]) -> tuple[dict[int, dict[str, Any]], list[StepProblem]]:
        """Move steps marked broken (for the same data they still have) from the records to the problems."""
        with self._lock:
            marks = dict(self._broken.get(directory, {}))
        broken = {s: why for s, (sha, why) in marks.items()
                  if s in records and records[s]["files"]["arrays"]["sha256"] == sha}
        good = {s: r for s, r in records.items() if s not in broken}
        bad = {p.step: p for p in problems}
        bad.update({s: storage.StepProblem(s, why) for s, why in broken.items()})
        return good, sorted(bad.values(), key=lambda p: p.step)


def _record_bytes(value: Any) -> bytes:
    """The JSON bytes inside an index record tensor (rank-1 string tensor of one element)."""
    try:
        item = value.reshape(-1)[0]
    except (AttributeError, IndexError) as err:
        raise storage.StepError("index record tensor is empty or not an array") from err
    return item if isinstance(item, bytes) else str(item).encode("utf-8")
