"""A run's DVI files: writing them atomically and reading them back with integrity checks.

Layout under ``<run>/plugins/dvi/`` (schema version 1):

* ``step_<step:08d>-<hash8>.npz``: the step's arrays (features, labels, split, ids, logits, boundary samples, flags).
  Names are content-addressed so that re-logging a step never clobbers a file an older record points to; the old
  files are removed once the new record is in the event file (:meth:`RunStore.prune_step`).
* ``step_<step:08d>-<hash8>.head.npz``: the classifier head, pickle-free (see :mod:`heads`).
* ``step_<step:08d>.json``: the step's index record, written after the arrays. The same JSON goes into the event
  file as the ``dvi/snapshot`` tensor, last of all.
* ``inputs.npz``: once per run, sample ids and uint8 thumbnails.
* ``cache/``: derived results (visualization models, coordinates, metrics, landscapes), keyed by settings.

Every file is written through :func:`fsio.atomic_write`. A reader checks every file against the SHA-256 in its
record and reports, rather than raises for, a step that is incomplete or corrupt; the other steps stay readable.
When the store is given the logdir's real path, every file it opens must resolve inside it (symlinks included).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import threading
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import fsio, metadata

_STEP_JSON = re.compile(r"^step_(\d{8})\.json$")
_STEP_DATA = re.compile(r"^step_(\d{8})-[0-9a-f]{8}\.(npz|head\.npz|head\.pt2?)$")
HEAD_EXT = {"spec": "head.npz", "graph": "head.npz"}


class StepError(Exception):
    """A logged step that cannot be read: missing, truncated or altered files, or a malformed record."""


@dataclasses.dataclass(frozen=True)
class StepProblem:
    """Why one step is not served."""

    step: int
    error: str

    def to_json(self) -> dict[str, Any]:
        """JSON form used by the ``runs`` route."""
        return {"step": self.step, "error": self.error}


@dataclasses.dataclass
class StepData:
    """The arrays of one step, as logged."""

    step: int
    features: np.ndarray  # [N, D] float32 or float16
    labels: np.ndarray  # [N] int64
    split: np.ndarray  # [N] uint8, 1 = train
    ids: np.ndarray  # [N] int64
    logits: np.ndarray  # [N, C] float32
    boundary: np.ndarray | None  # [M, D] boundary samples for training data
    boundary_test: np.ndarray | None  # [M', D] an independent set for evaluating test data
    flags: dict[str, np.ndarray]  # name -> ids


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def asset_dir(run_dir: str) -> str:
    """The DVI folder of a run directory."""
    return os.path.join(run_dir, *metadata.ASSET_DIR)


class RunStore:
    """Reads and writes the DVI files of one run directory.

    ``logdir_root`` (the logdir's real path) confines every file the store touches: a file or folder that resolves
    outside it, through a symlink, is treated as missing (reads) or refused (writes). The writing API
    (``dvi.summary``) writes into the user's own run directory and passes no root.
    """

    def __init__(self, run_dir: str, logdir_root: str | None = None) -> None:
        self.run_dir = run_dir
        self.root = asset_dir(run_dir)
        self.logdir_root = logdir_root
        self._verified: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def path(self, name: str) -> str:
        """Path of a file of this store, confined to the logdir; :class:`StepError` when it escapes."""
        path = os.path.join(self.root, name)
        if self.logdir_root is not None:
            try:
                return fsio.confined(self.logdir_root, path)
            except fsio.OutsideLogdir as err:
                raise StepError(f"{name} is a symlink to a location outside the logdir ({err}); not followed") \
                    from None
        return path

    def writable(self, path: str) -> str:
        """``path`` if writing it stays inside the logdir (its folder resolved); :class:`StepError` otherwise."""
        if self.logdir_root is not None:
            folder = os.path.dirname(path)
            probe = folder
            while not os.path.exists(probe) and os.path.dirname(probe) != probe:
                probe = os.path.dirname(probe)
            if not fsio.inside(self.logdir_root, probe) or (os.path.islink(path) and not fsio.inside(
                    self.logdir_root, path)):
                raise StepError(f"refusing to write {os.path.basename(path)}: its folder resolves outside the logdir")
        return path

    # -- writing ---------------------------------------------------------------------------------------------------

    def write_step(self, step: int, arrays: dict[str, np.ndarray], head: bytes, head_kind: str,
                   record: dict[str, Any]) -> dict[str, Any]:
        """Write a step's arrays and head, then its JSON index record; return the completed record.

        The caller writes the same record to the event file afterwards, so the index is always last.
        """
        data = fsio.npz_bytes(arrays)
        data_hash = sha256_bytes(data)
        head_hash = sha256_bytes(head)
        files = {
            "arrays": {"name": f"step_{step:08d}-{data_hash[:8]}.npz", "sha256": data_hash, "bytes": len(data)},
            "head": {"name": f"step_{step:08d}-{head_hash[:8]}.{HEAD_EXT[head_kind]}", "sha256": head_hash,
                     "bytes": len(head), "kind": head_kind},
        }
        fsio.atomic_write(self.writable(os.path.join(self.root, files["arrays"]["name"])), data)
        fsio.atomic_write(self.writable(os.path.join(self.root, files["head"]["name"])), head)
        full = {"version": metadata.SCHEMA_VERSION, **record, "step": step, "files": files}
        fsio.atomic_write(self.writable(self._record_path(step)), json.dumps(full).encode("utf-8"))
        return full

    def prune_step(self, step: int, keep: dict[str, Any]) -> None:
        """Remove data files of ``step`` that ``keep`` (its newest record) does not name: a re-logged step's old
        files. Called after the new record reached the event file."""
        names = {entry["name"] for entry in keep["files"].values()}
        prefix = f"step_{step:08d}-"
        try:
            listing = os.listdir(self.root)
        except OSError:
            return
        stale = [n for n in listing if n.startswith(prefix) and _STEP_DATA.match(n) and n not in names]
        fsio.remove_quietly(*(os.path.join(self.root, n) for n in stale))

    def write_inputs(self, ids: np.ndarray, thumbnails: np.ndarray) -> None:
        """Write (or extend with new ids) the run's thumbnails."""
        try:
            existing = self.load_inputs()
        except StepError:
            existing = None  # an unreadable inputs.npz is replaced
        if existing is not None:
            old_ids, old_thumbs = existing
            new = ~np.isin(ids, old_ids)
            if not new.any():
                return
            if old_thumbs.shape[1:] == thumbnails.shape[1:]:
                ids = np.concatenate([old_ids, ids[new]])
                thumbnails = np.concatenate([old_thumbs, thumbnails[new]])
        fsio.atomic_write(self.writable(os.path.join(self.root, "inputs.npz")),
                          fsio.npz_bytes({"ids": ids, "thumbnails": thumbnails}))

    # -- reading ---------------------------------------------------------------------------------------------------

    def _record_path(self, step: int) -> str:
        return os.path.join(self.root, f"step_{step:08d}.json")

    def listing_signature(self) -> tuple:
        """Names, sizes and modification times of the DVI folder's files: changes when any file does (one scandir)."""
        try:
            with os.scandir(self.root) as entries:
                return tuple(sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in entries
                                    if e.is_file() and not e.name.startswith(".")))
        except OSError:
            return ()

    def list_records(self) -> tuple[dict[int, dict[str, Any]], list[StepProblem]]:
        """Index records found on disk, plus problems: unreadable records and data files no record points to."""
        try:
            self.path("")
            names = os.listdir(self.root)
        except (OSError, StepError):
            return {}, []
        fsio.clean_stale_temp_files(self.root)
        records: dict[int, dict[str, Any]] = {}
        problems: list[StepProblem] = []
        for name in sorted(names):
            match = _STEP_JSON.match(name)
            if not match:
                continue
            step = int(match.group(1))
            try:
                records[step] = parse_record(fsio.read_json_file(self.path(name)))
            except (OSError, StepError, fsio.UnreadableFile) as err:
                problems.append(StepProblem(step, f"unreadable index record {name}: {err}"))
        orphans = {int(m.group(1)) for m in map(_STEP_DATA.match, names) if m} - set(records)
        orphans -= {p.step for p in problems}
        problems += [
            StepProblem(s, "incomplete step: data files exist but no index record was written (crash while logging?)")
            for s in sorted(orphans)
        ]
        return records, sorted(problems, key=lambda p: p.step)

    def check(self, record: dict[str, Any]) -> None:
        """Raise :class:`StepError` unless every file of ``record`` exists, matches its hash, and holds only
        numeric arrays (read from the headers: a file holding objects is broken, found before anyone loads it)."""
        for role in ("arrays", "head"):
            entry = record["files"][role]
            self._verify_file(entry["name"], entry["sha256"], numeric=True)

    def _verify_file(self, name: str, expected: str, numeric: bool = False) -> str:
        if os.path.basename(name) != name or name.startswith(".") or "\x00" in name:
            raise StepError(f"invalid file name {name!r} in index record")
        path = self.path(name)
        try:
            stat = os.stat(path)
        except OSError:
            raise StepError(f"missing file {name}") from None
        key = (stat.st_size, stat.st_mtime_ns, expected)
        with self._lock:
            if self._verified.get(path) == key:
                return path
        if sha256_file(path) != expected:
            raise StepError(f"hash mismatch in {name} (file truncated or modified after logging)")
        if numeric and name.endswith(".npz"):
            try:
                kinds = fsio.npz_dtypes(path)
            except fsio.UnreadableFile as err:
                raise StepError(str(err)) from None
            odd = sorted(k for k, dtype in kinds.items() if dtype.kind not in "biufcUS")
            if odd:
                raise StepError(f"{name} holds arrays of objects ({', '.join(odd[:5])}), not numbers; not loaded")
        with self._lock:
            self._verified[path] = key
        return path

    def load_arrays(self, record: dict[str, Any], *, features: bool = True) -> dict[str, np.ndarray]:
        """A step's arrays by name after checking the file's hash (``features=False`` skips the largest one)."""
        entry = record["files"]["arrays"]
        path = self._verify_file(entry["name"], entry["sha256"])
        skip = () if features else ("features", "boundary", "boundary_test")
        try:
            arrays = fsio.read_npz(path, required=("features", "labels", "split", "ids", "logits"), skip=skip)
        except (OSError, fsio.UnreadableFile) as err:
            raise StepError(str(err)) from None
        _check_step_arrays(arrays, record)
        return arrays

    def load_step(self, record: dict[str, Any]) -> StepData:
        """Load a step's arrays after checking their hash; raises :class:`StepError` if they cannot be trusted."""
        arrays = self.load_arrays(record)
        flags = {k[len("flag_"):]: v for k, v in arrays.items() if k.startswith("flag_")}
        return StepData(
            step=int(record["step"]), features=arrays["features"], labels=arrays["labels"],
            split=arrays["split"], ids=arrays["ids"], logits=arrays["logits"],
            boundary=arrays.get("boundary"), boundary_test=arrays.get("boundary_test"), flags=flags,
        )

    def load_head(self, record: dict[str, Any]):
        """Load a step's head (a ``torch.nn.Module`` on CPU) after checking its hash."""
        from tensorboard_plugin_dvi import heads  # torch is imported lazily

        entry = record["files"]["head"]
        path = self._verify_file(entry["name"], entry["sha256"])
        try:
            return heads.load_head(path, str(entry.get("kind", "spec")))
        except Exception as err:  # a crafted file can fail in many ways inside torch
            raise StepError(f"cannot load head {entry['name']}: {err}") from err

    def load_inputs(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(ids, thumbnails)`` or ``None`` when the run logged no inputs."""
        try:
            path = self.path("inputs.npz")
        except StepError:
            return None
        if not os.path.exists(path):
            return None
        try:
            arrays = fsio.read_npz(path, required=("ids", "thumbnails"))
        except (OSError, fsio.UnreadableFile) as err:
            raise StepError(f"cannot read inputs.npz: {err}") from None
        ids, thumbs = arrays["ids"], arrays["thumbnails"]
        if ids.ndim != 1 or ids.dtype.kind not in "iu" or thumbs.dtype != np.uint8 or thumbs.ndim not in (3, 4) \
                or len(thumbs) != len(ids) or (thumbs.ndim == 4 and thumbs.shape[-1] not in (1, 3)):
            raise StepError("inputs.npz does not hold int ids [N] and uint8 thumbnails [N, H, W(, 1|3)]")
        return ids, thumbs

    def read_run(self) -> tuple[dict[int, dict[str, Any]], list[StepProblem]]:
        """Complete, verified steps of the run (from the records on disk) and the problems of the others."""
        records, problems = self.list_records()
        good = {}
        for step, record in records.items():
            try:
                self.check(record)
                good[step] = record
            except StepError as err:
                problems.append(StepProblem(step, str(err)))
        return good, sorted(problems, key=lambda p: p.step)


def _check_step_arrays(arrays: dict[str, np.ndarray], record: dict[str, Any]) -> None:
    """The shapes and kinds the readers rely on; :class:`StepError` naming the first array that differs."""
    n = int(record["n"])
    expect = {"labels": ("iu", 1), "split": ("biu", 1), "ids": ("iu", 1), "logits": ("f", 2), "features": ("f", 2)}
    for name, (kinds, ndim) in expect.items():
        value = arrays.get(name)
        if value is None:
            continue
        if value.dtype.kind not in kinds or value.ndim != ndim or len(value) != n:
            raise StepError(f"array {name!r} has dtype {value.dtype} and shape {value.shape}; expected {ndim}-d "
                            f"with {n} rows")
    if arrays["logits"].shape[1] != int(record["n_classes"]):
        raise StepError(f"logits have {arrays['logits'].shape[1]} columns but the record says {record['n_classes']} "
                        "classes")


_REQUIRED = {"step": int, "n": int, "d": int, "n_classes": int, "files": dict}


def parse_record(raw: bytes | str) -> dict[str, Any]:
    """Parse and validate an index record's JSON; raise :class:`StepError` if it is malformed."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise StepError(f"index record is not valid JSON: {err}") from err
    if not isinstance(record, dict):
        raise StepError("index record is not a JSON object")
    if record.get("version") != metadata.SCHEMA_VERSION:
        raise StepError(f"unsupported schema version {record.get('version')!r} (expected {metadata.SCHEMA_VERSION})")
    for key, kind in _REQUIRED.items():
        if not isinstance(record.get(key), kind):
            raise StepError(f"index record field {key!r} is missing or not a {kind.__name__}")
    files = record["files"]
    for role in ("arrays", "head"):
        entry = files.get(role)
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(
            entry.get("sha256"), str
        ):
            raise StepError(f"index record has no valid {role!r} file entry")
    return record
