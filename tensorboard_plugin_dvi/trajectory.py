"""Per-step digests: everything the map, sample and dynamics routes need of one step, in one file read by rows.

A route that answers for one sample across 100 steps, or folds 100 steps of 100,000 samples into running
statistics, must not load, hash and decompress every step's arrays (and decode every sample's map position through
the visualization model) to do it. So each step gets a *digest* next to its projection result in the run's cache
folder: a flat, uncompressed NumPy file of one fixed-size record per sample (:data:`DTYPE`), in the order the step
logged its samples, plus a small JSON file describing it (written last: it marks the digest complete).

A record holds the sample's id, its 2-D position (NaN until the step is projected), label, split, predicted class,
softmax confidence in that prediction and in the label, logit margin of the label (see :mod:`dynamics`), the class
of the map region under it (-1 until computed), its flags as a bit set, and ``order``: the row holding the k-th
smallest id, so one sample's row is found by bisection while reading a handful of pages.

The file is opened with ``numpy.load(mmap_mode="r")``: reading one sample's record touches one page, reading a
column touches the file once. A digest is tied to what it was derived from: the step's arrays (its name is the step's
result name, which carries the arrays' hash) and, for positions, the result's coordinates file (its size and
modification time, and the result it was warm-started from). A digest that does not match, or fails any check (a
log written by someone else is not trusted), is rebuilt from the step's files; nothing here raises for a bad file
but :class:`storage.StepError`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import fsio, storage
from tensorboard_plugin_dvi.dynamics import step_quantities

logger = logging.getLogger(__name__)

VERSION = 1
MAX_FLAGS = 32
"""Flags per run a digest can carry as bits; a run logging more has no digests (its routes read the arrays)."""

DTYPE = np.dtype([("id", "<i8"), ("x", "<f4"), ("y", "<f4"), ("label", "<i4"), ("pred", "<i4"), ("conf", "<f8"),
                  ("p_label", "<f8"), ("margin", "<f8"), ("region", "<i4"), ("flags", "<u4"), ("order", "<i4"),
                  ("split", "u1")])
"""One sample's record (57 bytes, packed). The probabilities and the margin keep float64, so statistics folded
from digests equal those computed from the logits."""

NPY, META = ".digest.npy", ".digest.json"


def positions_key(result: Any, npz_path: str) -> dict[str, Any] | None:
    """What identifies a projection result's coordinates: its name, its warm start, and its file's size and mtime."""
    if result is None:
        return None
    try:
        stat = os.stat(npz_path)
    except OSError:
        return None
    return {"result": result.name, "prev": result.prev_name, "npz": [stat.st_size, stat.st_mtime_ns]}


class Digest:
    """A step's digest: ``rows`` (a read-only memory map of :data:`DTYPE` records) and ``meta``."""

    def __init__(self, rows: np.ndarray, meta: dict[str, Any]) -> None:
        self.rows = rows
        self.meta = meta
        self._verified: bool | None = None

    def verified(self) -> bool:
        """Whether every record passes :func:`check_rows` (checked once per digest object)."""
        if self._verified is None:
            try:
                check_rows(self)
                self._verified = True
            except storage.StepError:
                self._verified = False
        return self._verified

    @property
    def n(self) -> int:
        """Samples in the step."""
        return int(len(self.rows))

    @property
    def flag_names(self) -> list[str]:
        """Flag names, bit ``i`` of ``flags`` standing for ``flag_names[i]``."""
        return list(self.meta.get("flags", []))

    @property
    def has_positions(self) -> bool:
        return self.meta.get("positions") is not None

    @property
    def has_region(self) -> bool:
        return bool(self.meta.get("region"))

    def row_of(self, sample_id: int) -> int | None:
        """Row of the sample with this id, or None. One record read when ids are the row numbers (the usual case),
        else a bisection over ``order`` (about 2 log2(N) records)."""
        rows, n = self.rows, self.n
        if 0 <= sample_id < n and int(rows[sample_id]["id"]) == sample_id:
            return int(sample_id)
        lo, hi = 0, n
        while lo < hi:
            mid = (lo + hi) // 2
            row = int(rows[mid]["order"])
            if not 0 <= row < n:
                return None
            value = int(rows[row]["id"])
            if value == sample_id:
                return row
            if value < sample_id:
                lo = mid + 1
            else:
                hi = mid
        return None

    def column(self, name: str) -> np.ndarray:
        """A field of every record, as an in-memory array."""
        return np.array(self.rows[name])

    def flags_of(self, row: int) -> list[str]:
        """Names of the flags set on a row."""
        bits = int(self.rows[row]["flags"])
        return [name for i, name in enumerate(self.flag_names) if bits >> i & 1]

    def flag_ids(self) -> dict[str, np.ndarray]:
        """Per flag, the ids of the samples carrying it (in row order)."""
        bits, ids = self.column("flags"), self.column("id")
        return {name: ids[(bits >> np.uint32(i)) & np.uint32(1) == 1] for i, name in enumerate(self.flag_names)}


def build(record: dict[str, Any], arrays: dict[str, np.ndarray], xy: np.ndarray | None,
          region: np.ndarray | None) -> np.ndarray:
    """The records of a step from its arrays (``ids``, ``labels``, ``split``, ``logits``, ``flag_*``), its
    coordinates [N, 2] (None: not projected) and the region class under each sample (None: not computed)."""
    ids = np.asarray(arrays["ids"], dtype=np.int64)
    n = len(ids)
    logits = np.asarray(arrays["logits"])
    if logits.ndim != 2 or len(logits) != n:
        raise storage.StepError(f"step {record.get('step')}: logits do not match its {n} samples")
    q = step_quantities(logits, arrays["labels"])
    rows = np.zeros(n, DTYPE)
    rows["id"] = ids
    rows["label"], rows["split"] = arrays["labels"], arrays["split"]
    rows["pred"], rows["conf"] = q["pred"], q["p_pred"]
    rows["p_label"], rows["margin"] = q["p_label"], q["margin"]
    rows["x"], rows["y"] = (np.nan, np.nan) if xy is None else (xy[:, 0], xy[:, 1])
    rows["region"] = -1 if region is None else region
    flags = np.zeros(n, np.uint32)
    for bit, name in enumerate(flag_names(arrays)):
        flags[np.isin(ids, arrays[name])] |= np.uint32(1 << bit)
    rows["flags"] = flags
    rows["order"] = np.argsort(ids, kind="stable")
    return rows


def flag_names(arrays: dict[str, np.ndarray]) -> list[str]:
    """The step's flag arrays (``flag_<name>``) in a stable order."""
    return sorted(k for k in arrays if k.startswith("flag_"))


class DigestFiles:
    """Reads and writes the digests of one run's results folder (``cache_path(name, suffix)`` gives the paths)."""

    def __init__(self, cache_path: Callable[[str, str], str], writable: Callable[[str], str]) -> None:
        self.cache_path = cache_path
        self.writable = writable

    def read(self, name: str, n: int, n_classes: int, positions: Any, need_region: bool = False) -> Digest | None:
        """The digest of result ``name`` if it is complete, well formed and derived from ``positions`` (the
        current result's :func:`positions_key`, None for a step not projected, ``_ANY`` for any projection);
        else None."""
        try:
            meta = json.loads(fsio.read_json_file(self.cache_path(name, META), limit=1 << 16))
        except (OSError, ValueError, RecursionError, fsio.UnreadableFile, storage.StepError):
            return None
        if not isinstance(meta, dict):
            return None
        wrong_positions = meta.get("positions") is None if positions is _ANY else meta.get("positions") != positions
        if meta.get("version") != VERSION or meta.get("n") != n or wrong_positions \
                or meta.get("n_classes") != n_classes or (need_region and not meta.get("region")) \
                or not isinstance(meta.get("flags"), list):
            return None
        try:
            rows = np.load(self.cache_path(name, NPY), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError, storage.StepError):
            return None
        if rows.dtype != DTYPE or rows.shape != (n,):
            return None
        return Digest(rows, meta)

    def write(self, name: str, rows: np.ndarray, n_classes: int, flags: list[str],
              positions: dict[str, Any] | None, region: bool, bounds: list[float] | None) -> None:
        """Store a digest: the records, then the JSON that marks it complete."""
        meta = {"version": VERSION, "n": int(len(rows)), "n_classes": int(n_classes), "flags": flags,
                "positions": positions, "region": bool(region), "bounds": bounds}
        fsio.remove_quietly(self.cache_path(name, META))  # a reader never pairs new records with old metadata

        def save(handle: Any) -> None:
            np.save(handle, rows, allow_pickle=False)

        fsio.atomic_write(self.writable(self.cache_path(name, NPY)), save)
        fsio.atomic_write(self.writable(self.cache_path(name, META)), json.dumps(meta).encode("utf-8"))


def check_rows(digest: Digest) -> None:
    """Raise :class:`storage.StepError` unless every record holds values a route can serve: classes within the
    run's classes, split 0/1, region -1 or a class, and finite coordinates when the step is projected."""
    rows, c = digest.rows, int(digest.meta["n_classes"])
    for field, lo in (("label", 0), ("pred", 0), ("region", -1)):
        values = rows[field]
        if len(values) and (int(values.min()) < lo or int(values.max()) >= c):
            raise storage.StepError(f"digest field {field} holds values outside [{lo}, {c})")
    if len(rows) and int(rows["split"].max()) > 1:
        raise storage.StepError("digest field split holds values other than 0 and 1")
    if digest.has_positions and not (np.isfinite(rows["x"]).all() and np.isfinite(rows["y"]).all()):
        raise storage.StepError("digest coordinates are not finite")
    order = rows["order"]
    if len(order) and (int(order.min()) < 0 or int(order.max()) >= len(rows)):
        raise storage.StepError("digest order points outside the step")


# -- the routes' side (``views.Views`` passes itself as ``views``) ----------------------------------------------------

FOLDER = "digests"
"""Subfolder of a run's results folder holding the digests and the saved dynamics."""


def files_of(store: storage.RunStore, cache_root: str) -> DigestFiles:
    """The digest files of a run's results folder (in its :data:`FOLDER`), confined to the logdir like the results
    themselves."""

    def path(name: str, suffix: str) -> str:
        full = os.path.join(cache_root, FOLDER, name + suffix)
        if store.logdir_root is not None and not fsio.inside(store.logdir_root, full):
            raise storage.StepError(f"the cache folder of {name} resolves outside the logdir; not followed")
        return full

    return DigestFiles(path, store.writable)


def digest_of(views: Any, index: Any, step: int, record: dict[str, Any], need_region: bool = False,
              full: bool = False, build_missing: bool = True) -> Digest | None:
    """The current digest of ``step``, built and stored when missing, outdated or malformed (``full``: every record
    checked with :func:`check_rows`, for routes that serve whole columns; one sample's record is sanitised by the
    ``sample`` route instead, so reading it needs no full pass; ``build_missing=False``: None instead of building,
    for read-only callers). ``need_region`` also
    computes the class of the map region under each sample (decoding every sample's position: done once, by the job
    when it projects the step). None when the run's flags do not fit (more than :data:`MAX_FLAGS`).

    Checking that a stored digest is current costs a few ``stat`` calls and one small JSON read (the result's
    metadata), never loading the projection result itself."""
    from tensorboard_plugin_dvi import cache

    name = cache.result_name(record)
    results = views.results.results(index.store)
    files = files_of(index.store, results.root)
    earlier = index.earlier_names(step)
    npz_path = os.path.join(results.root, name + ".npz")
    try:
        stat = os.stat(npz_path)
        npz = [stat.st_size, stat.st_mtime_ns]
    except OSError:
        npz = None
    ready = npz is not None and results.has(record, None, earlier)
    n, c = int(record["n"]), int(record["n_classes"])
    need_region = need_region and ready and index.source != "projector"
    meta_path = files.cache_path(name, META)
    try:
        meta_stat = os.stat(meta_path)
        stamp = (meta_stat.st_size, meta_stat.st_mtime_ns)
    except OSError:
        stamp = None

    def current(found: Digest | None) -> Digest | None:
        if found is None:
            return None
        pos = found.meta.get("positions")
        if not ready:
            return found if pos is None else None
        ok = (isinstance(pos, dict) and pos.get("result") == name and pos.get("npz") == npz
              and pos.get("prev") in earlier)
        return found if ok and (found.has_region or not need_region) else None

    def read() -> Digest | None:
        return current(files.read(name, n, c, None if not ready else _ANY, need_region))

    key = ("digest", meta_path, stamp, tuple(npz or ()), ready, need_region)
    found = views._digests.get(key, read)
    if found is not None and (not full or found.verified()):
        return found
    if not build_missing:
        return None

    def make() -> Digest | None:
        again = read()
        if again is not None and again.verified():
            return again
        arrays = index.store.load_arrays(record, features=False)
        flags = flag_names(arrays)
        if len(flags) > MAX_FLAGS:
            return None
        result = views.results.result(index.store, record, None, earlier) if ready else None
        xy = region = None
        if result is not None and not np.array_equal(np.asarray(result.ids), np.asarray(arrays["ids"])):
            views.results.discard(index.store, result, "its sample ids do not match the step's data")
            result = None  # recomputed; until then the step's digest has no positions
        if result is not None:
            xy = result.xy
            if need_region:
                region = views.region_classes_decoded(index, step, result)
        positions = positions_key(result, npz_path)
        rows = build(record, arrays, xy, region)
        bounds = None if result is None else [float(b) for b in result.bounds]
        files.write(name, rows, c, [f[5:] for f in flags], positions, region is not None, bounds)
        written = files.read(name, n, c, _ANY if positions else None, region is not None)
        return written if written is not None and written.verified() else None

    built = views.flights.run(("digest", meta_path, need_region), make)
    if built is None and len(flag_names_of_record(record)) <= MAX_FLAGS:
        raise storage.StepError("its digest could not be read back after writing it")
    return built


_ANY = object()
"""``DigestFiles.read``'s ``positions`` meaning: any positions (the caller checks them)."""


def flag_names_of_record(record: dict[str, Any]) -> list[str]:
    """Flag names a step's record lists (empty when it lists none)."""
    flags = record.get("flags", [])
    return list(flags) if isinstance(flags, list) else []


def _r5(value: float) -> float | None:
    """A float rounded for JSON; None for NaN or infinity."""
    return round(float(value), 5) if np.isfinite(value) else None


def sample_answer(views: Any, index: Any, sample_id: int) -> dict[str, Any]:
    """The ``sample`` route: one sample across every step, one digest record per step."""
    from tensorboard import errors

    steps, xs, ys, preds, confs = [], [], [], [], []
    label = split = None
    flags: list[str] = []
    for step in index.steps:
        digest = views.digest(index, step, build_missing=False)  # read-only: a GET for any id writes nothing
        if digest is None:  # not built yet (the job builds it), or too many flags: the step's arrays
            light = views.light(index, step)
            pos = np.flatnonzero(light["ids"] == sample_id)
            if not pos.size:
                continue
            i = int(pos[0])
            label, split = int(light["labels"][i]), int(light["split"][i])
            flags = [k[5:] for k in light if k.startswith("flag_") and sample_id in light[k]]
            try:
                result = views.results.result(index.store, index.records[step], None, index.earlier_names(step))
            except storage.StepError:
                result = None
            ok = result is not None and i < len(result.ids) and result.ids[i] == sample_id
            x, y = (float(result.xy[i, 0]), float(result.xy[i, 1])) if ok else (np.nan, np.nan)
            pred, conf = int(light["pred"][i]), float(light["conf"][i])
        else:
            i = digest.row_of(sample_id)
            if i is None:
                continue
            row = digest.rows[i]
            label, split, flags = int(row["label"]), int(row["split"]), digest.flags_of(i)
            x, y, pred, conf = float(row["x"]), float(row["y"]), int(row["pred"]), float(row["conf"])
        steps.append(step)
        xs.append(_r5(x))
        ys.append(_r5(y))
        preds.append(pred)
        confs.append(_r5(conf))
    if not steps:
        raise errors.NotFoundError(f"Run {index.name!r} has no sample with id {sample_id}.")
    return {"run": index.name, "id": sample_id, "label": label, "split": split, "flags": flags,
            "has_thumbnail": _has_thumbnail(views, index, sample_id), "steps": steps, "x": xs, "y": ys,
            "pred": preds, "conf": confs}


def _has_thumbnail(views: Any, index: Any, sample_id: int) -> bool:
    """Whether the run logged an input for the sample (the inputs' ids are kept in memory per file version)."""
    try:
        path = index.store.path("inputs.npz")
        stat = os.stat(path)
    except (OSError, storage.StepError):
        return False

    def ids() -> np.ndarray | None:
        inputs = views._inputs(index)
        return None if inputs is None else np.sort(np.asarray(inputs[0]))

    known = views._light.get(("inputs-ids", path, stat.st_size, stat.st_mtime_ns), ids)
    if known is None or not len(known):
        return False
    at = int(np.searchsorted(known, sample_id))
    return at < len(known) and int(known[at]) == sample_id


def quantities_of(views: Any, index: Any, step: int) -> tuple[Any, dict[str, np.ndarray], int] | None:
    """A step's contribution to the run's dynamics read from its digest: ``(item, quantities, n_classes)`` (see
    ``diagnosis.QuantitySource``), or None when the step has no digest (its logits are read instead)."""
    from tensorboard_plugin_dvi.dynamics import StepInput

    digest = views.digest(index, step, full=True)
    if digest is None:
        return None
    rows = digest.rows
    item = StepInput(int(step), np.array(rows["id"]), np.array(rows["label"]), np.array(rows["split"]),
                     np.zeros((0, 0), np.float32))
    q = {"pred": np.array(rows["pred"]).astype(np.int64), "margin": np.array(rows["margin"]),
         "p_label": np.array(rows["p_label"]), "p_pred": np.array(rows["conf"])}
    return item, q, int(digest.meta["n_classes"])


class DigestPositions:
    """Where projected steps put their samples, read from the steps' digests (a ``diagnosis.PositionSource``).

    ``key`` names the projection a digest was derived from (the result, its warm start and its coordinates file's
    size and time), so a step projected again is folded again; ``load`` reads ids, coordinates and the region class
    under each sample (computed once and stored in the digest when missing) without loading the result itself.
    """

    def __init__(self, views: Any) -> None:
        self.views = views

    def key(self, index: Any, step: int) -> str | None:
        digest = self.views.digest(index, step)
        if digest is None or not digest.has_positions:
            return None
        return json.dumps(digest.meta["positions"], sort_keys=True)

    def load(self, index: Any, step: int) -> Any:
        from tensorboard_plugin_dvi.dynamics import Positions

        head = index.source != "projector"
        digest = self.views.digest(index, step, need_region=head, full=True)
        if digest is None or not digest.has_positions:
            raise storage.StepError(f"step {step} is not projected (any more)")
        bounds = digest.meta.get("bounds") or [0.0, 0.0, 1.0, 1.0]
        rows = digest.rows
        xy = np.stack([np.array(rows["x"]), np.array(rows["y"])], 1)
        region = np.array(rows["region"]) if head and digest.has_region else None
        return Positions(int(step), np.array(rows["id"]), xy, float(bounds[2]) - float(bounds[0]), region,
                         json.dumps(digest.meta["positions"], sort_keys=True))


class DynamicsCheckpoints:
    """A run's folded dynamics saved in its results folder (``dynamics.npz``, then ``dynamics.json`` naming the
    steps it covers and the archive's size), written by a background thread shortly after, so no request waits for
    the write;
    saves of one run are serialised and only the newest waiting one is written. A ``diagnosis.Checkpoints``."""

    def __init__(self, views: Any, delay: float = 1.0) -> None:
        """``delay``: seconds a save waits before writing, so that the request that folded new steps answers before
        tens of megabytes are serialised beside it (and saves of steps arriving in a burst coalesce)."""
        self.views = views
        self.delay = delay
        self._lock = threading.Lock()
        self._waiting: dict[str, tuple[Any, dict[str, Any], dict[str, np.ndarray]]] = {}
        self._writing: set[str] = set()

    def _paths(self, index: Any) -> tuple[str, str]:
        files = files_of(index.store, self.views.results.results(index.store).root)
        return files.cache_path("dynamics", ".npz"), files.cache_path("dynamics", ".json")

    def load(self, index: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        try:
            npz, meta_path = self._paths(index)
            meta = json.loads(fsio.read_json_file(meta_path, limit=64 << 20))
            if not isinstance(meta, dict) or meta.get("version") != VERSION or meta.get("size") != os.path.getsize(npz):
                return None
            return meta, fsio.read_npz(npz)
        except (OSError, ValueError, RecursionError, fsio.UnreadableFile, storage.StepError):
            return None

    def save(self, index: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._waiting[index.directory] = (index, meta, arrays)
            if index.directory in self._writing:
                return  # the writer picks the newest up when done
            self._writing.add(index.directory)
        threading.Thread(target=self._write_all, args=(index.directory,), name="dvi-dynamics-save",
                         daemon=True).start()

    def _write_all(self, directory: str) -> None:
        time.sleep(self.delay)
        while True:
            with self._lock:
                job = self._waiting.pop(directory, None)
                if job is None:
                    self._writing.discard(directory)
                    return
            index, meta, arrays = job
            try:
                npz, meta_path = self._paths(index)
                data = fsio.npz_bytes(arrays)
                fsio.remove_quietly(meta_path)
                fsio.atomic_write(index.store.writable(npz), data)
                body = {**meta, "version": VERSION, "size": len(data)}
                fsio.atomic_write(index.store.writable(meta_path), json.dumps(body).encode("utf-8"))
            except (OSError, storage.StepError) as err:  # a read-only logdir: folded again after a restart
                logger.info("DVI: dynamics of %s not saved: %s", index.name, err)

    def wait(self, timeout: float = 60.0) -> bool:
        """Whether every save finished within ``timeout`` seconds (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._writing:
                    return True
            time.sleep(0.02)
        return False


def diagnosis_over(views: Any, checkpoints: DynamicsCheckpoints | None = None) -> Any:
    """The dynamics, suspects and cube reader that takes positions and per-step quantities from ``views``' digests
    and saves each run's folded dynamics through ``checkpoints`` (default: a new :class:`DynamicsCheckpoints`):
    what the plugin serves from, and what ``dvi-project`` fills ahead."""
    from tensorboard_plugin_dvi import diagnosis

    return diagnosis.Diagnosis(positions=DigestPositions(views),
                               quantities=lambda index, step: quantities_of(views, index, step),
                               checkpoints=checkpoints or DynamicsCheckpoints(views))


def after_projection(views: Any, diagnosis: Any, index: Any, step: int) -> None:
    """What the projection job does for the routes once it has projected ``step``: store the step's digest with the
    region class under every sample, and fold the run's dynamics up to it (saved for restarts), so that no first
    request decodes positions or folds a hundred steps."""
    from tensorboard import errors

    views.digest(index, step, need_region=True, full=True)
    try:
        diagnosis.state(index)
    except errors.PublicError as err:  # e.g. a run imported without logits has no dynamics
        logger.debug("DVI: dynamics of %s not folded after step %s: %s", index.name, step, err)
