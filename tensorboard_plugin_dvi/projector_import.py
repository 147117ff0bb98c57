"""Runs written by torch's ``SummaryWriter.add_embedding``: the Embedding Projector layout, given a time axis.

``add_embedding(mat, metadata=..., label_img=..., global_step=k, tag=T)`` writes ``<run>/<k:05d>/<T>/tensors.tsv``
(+ ``metadata.tsv``, ``sprite.png``) and lists every embedding in ``<run>/projector_config.pbtxt``. This module turns
such a run into DVI's normal storage format under ``<run>/plugins/dvi/imported/`` (one step per global step), so
that the job service, the result cache and the views work on it unchanged, through the one :class:`storage.RunStore`
reader.

* **Lazily.** Listing a run only stats ``projector_config.pbtxt`` and the step files; a step is converted when a
  route needs its data (or in the background with ``--dvi_autoproject=all``), and converted again only when its
  source files change (size and mtime, kept in ``manifest.json``) or the run's set of classes changes.
* **Atomically.** Converted files are written by :class:`storage.RunStore` (temp file + rename, index record last);
  the manifest is rewritten atomically after each step.
* **Labels** come from ``metadata.tsv``: a single column without header, or several columns under a header row (the
  column named label/labels/class/y, else the first). Label strings map to class indices by their sorted unique
  values over all steps (numeric strings numerically); the strings are the class names.
* **No head was logged.** The projection needs one (boundary samples, prediction-preserving term), so a linear probe
  from the features to the labels is fitted (deterministic, full batch) and saved as the step's head. It is a
  stand-in *for the projection only*: stored logits are the one-hot labels (``pred`` = label, ``conf`` = 1,
  accuracy ``null``), and the routes that show a head's view of the map (``landscape``, ``predict``) answer 404.
* **Sample ids** are row numbers: row i of every step is taken to be the same sample (the projector has no ids).
  Thumbnails are cut from ``sprite.png`` (a row-major grid of equally sized cells).

Every path read from the config is confined to the logdir by the caller-supplied ``confine`` function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import fsio, storage

logger = logging.getLogger(__name__)

CONFIG_NAME = "projector_config.pbtxt"
IMPORT_SUBDIR = "imported"
MANIFEST = "manifest.json"
CONVERTER_VERSION = 1
LABEL_COLUMNS = ("label", "labels", "class", "y")
PROBE_STEPS = 300
PROBE_MAX_ROWS = 4096
PROBE_L2 = 1e-3
PROBE_SEED = 0
NO_LABELS = "no labels in metadata.tsv; DVI needs class labels"
NO_HEAD = ("was imported from the Embedding Projector (torch add_embedding) and has no classifier head, "
           "so it has no {what}")


def has_config(run_dir: str) -> bool:
    """Whether ``run_dir`` holds Embedding Projector output (one stat)."""
    return os.path.isfile(os.path.join(run_dir, CONFIG_NAME))


class ImportedStore(storage.RunStore):
    """A :class:`storage.RunStore` rooted at ``<run>/plugins/dvi/imported/``: same files, same reader."""

    def __init__(self, run_dir: str, logdir_root: str | None = None) -> None:
        super().__init__(run_dir, logdir_root)
        self.root = os.path.join(self.root, IMPORT_SUBDIR)


# -- parsing the projector's files ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Entry:
    """One embedding listed in ``projector_config.pbtxt`` (paths as written there)."""

    step: int
    tag: str
    tensor_path: str
    metadata_path: str | None
    sprite_path: str | None
    sprite_dim: tuple[int, int] | None  # (width, height) of one cell


def _step_of(tensor_name: str, tensor_path: str) -> tuple[str, int] | None:
    """``(tag, global step)`` from torch's ``"<tag>:<step:05d>"`` name, else from the path's ``<k:05d>/`` folder."""
    tag, sep, suffix = tensor_name.rpartition(":")
    if sep and suffix.isdigit():
        return tag, int(suffix)
    parts = tensor_path.replace("\\", "/").split("/")
    if len(parts) >= 2 and parts[0].isdigit():
        return (tensor_name or parts[1]), int(parts[0])
    return None


def parse_config(text: str) -> tuple[str | None, dict[int, Entry]]:
    """The tag given the time axis and its entries by global step.

    When several tags were logged, the one present at the most steps is used (ties: the first listed); a step logged
    twice under the same tag keeps its last entry. Raises ``ValueError`` for a config that does not parse.
    """
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    config = projector_config_pb2.ProjectorConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as err:
        raise ValueError(f"{CONFIG_NAME} does not parse: {err}") from err
    by_tag: dict[str, dict[int, Entry]] = {}
    for emb in config.embeddings:
        if not emb.tensor_path:
            continue  # a checkpoint variable, not a TSV: nothing DVI can read
        found = _step_of(emb.tensor_name, emb.tensor_path)
        if found is None:
            continue
        tag, step = found
        dim = tuple(emb.sprite.single_image_dim)
        by_tag.setdefault(tag, {})[step] = Entry(
            step=step, tag=tag, tensor_path=emb.tensor_path, metadata_path=emb.metadata_path or None,
            sprite_path=emb.sprite.image_path or None,
            sprite_dim=(int(dim[0]), int(dim[1])) if len(dim) == 2 and min(dim) > 0 else None,
        )
    if not by_tag:
        return None, {}
    tag = max(by_tag, key=lambda t: len(by_tag[t]))  # max keeps the first of equal counts
    return tag, by_tag[tag]


def parse_metadata(raw: bytes) -> list[str]:
    """Label strings of ``metadata.tsv``: the only column, or under a header the label/labels/class/y column (else
    the first). Raises :class:`storage.StepError` for rows shorter than the header."""
    lines = raw.decode("utf-8", errors="replace").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines or "\t" not in lines[0]:
        return lines
    header = [h.strip().lower() for h in lines[0].split("\t")]
    col = next((header.index(name) for name in LABEL_COLUMNS if name in header), 0)
    values = []
    for row, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if col >= len(cells):
            raise storage.StepError(f"metadata.tsv line {row} has {len(cells)} columns, the header {len(header)}")
        values.append(cells[col])
    return values


def _sort_key(value: str) -> tuple[int, float, str]:
    try:
        number = float(value)
    except ValueError:
        return 1, 0.0, value
    return (0, number, value) if math.isfinite(number) else (1, 0.0, value)


def class_names(values: Iterable[str]) -> list[str]:
    """Sorted unique label strings: numeric ones first, in numeric order, then the others alphabetically."""
    return sorted(set(values), key=_sort_key)


def read_tensors(path: str) -> np.ndarray:
    """``tensors.tsv`` as float32 [N, D]; raises :class:`storage.StepError` when it is not a finite numeric table."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file warns; it is reported below
            data = np.loadtxt(path, dtype=np.float32, delimiter="\t", ndmin=2, comments=None)
    except FileNotFoundError:
        raise storage.StepError("missing tensors.tsv") from None
    except (OSError, ValueError) as err:
        raise storage.StepError(f"cannot read tensors.tsv: {err}") from err
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise storage.StepError("tensors.tsv is empty")
    if not np.isfinite(data).all():
        raise storage.StepError("tensors.tsv has NaN or infinite values")
    return data


def sprite_cells(path: str, n: int, dim: tuple[int, int] | None) -> np.ndarray:
    """The first ``n`` cells of a sprite (row-major grid) as uint8 [n, H, W, C], C = 1 for grey sprites.

    ``dim`` is one cell's (width, height); without it cells are square and the grid has ceil(sqrt(n)) columns,
    as torch's ``make_sprite`` draws it.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise storage.StepError(f"cannot read sprite.png: {err}") from err
    height, width = pixels.shape[:2]
    cell_w, cell_h = dim if dim else (width // math.ceil(math.sqrt(n)),) * 2
    if cell_w <= 0 or cell_h <= 0 or (width // cell_w) * (height // cell_h) < n:
        raise storage.StepError(f"sprite.png ({width}x{height}) cannot hold {n} images of {cell_w}x{cell_h}")
    cols, rows = width // cell_w, height // cell_h
    grid = pixels[: rows * cell_h, : cols * cell_w].reshape(rows, cell_h, cols, cell_w, 3)
    cells = grid.transpose(0, 2, 1, 3, 4).reshape(rows * cols, cell_h, cell_w, 3)[:n]
    if (cells == cells[..., :1]).all():
        cells = cells[..., :1]
    return np.ascontiguousarray(cells)


def fit_probe(features: np.ndarray, labels: np.ndarray, n_classes: int, *, steps: int = PROBE_STEPS,
              max_rows: int = PROBE_MAX_ROWS, seed: int = PROBE_SEED):
    """A linear classifier from features to labels: the stand-in head for projecting a run that logged none.

    Multinomial logistic regression fitted by full-batch Adam (``steps`` steps, learning rate 0.05, zero start) on
    standardised features (at most ``max_rows`` of them, a seeded sample) with a little L2, so that logits stay
    finite on separable data. The standardisation is then folded into the weights: the returned ``torch.nn.Linear``
    takes the raw features. The loop is plain numpy with the gradient written out: on a busy CPU torch's per-op
    threading overhead made it 20x slower for the small problems this usually is. Deterministic.
    """
    import torch

    n, dim = features.shape
    rows = np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False)) if n > max_rows else slice(None)
    x = features.astype(np.float32)
    mean, std = x.mean(0), np.maximum(x.std(0), 1e-6)
    z = (x[rows] - mean) / std
    target = np.eye(n_classes, dtype=np.float32)[labels[rows]]
    params = [np.zeros((n_classes, dim), np.float32), np.zeros(n_classes, np.float32)]
    moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
    beta1, beta2, lr = 0.9, 0.999, 0.05
    for t in range(1, steps + 1):
        weight, bias = params
        logits = z @ weight.T + bias
        logits -= logits.max(1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(1, keepdims=True)
        err = (probs - target) / len(z)
        grads = [err.T @ z + 2 * PROBE_L2 * weight, err.sum(0)]
        for param, grad, (m, v) in zip(params, grads, moments, strict=True):
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + 1e-8)
    weight = params[0] / std
    probe = torch.nn.Linear(dim, n_classes)
    with torch.no_grad():
        probe.weight.copy_(torch.from_numpy(weight))
        probe.bias.copy_(torch.from_numpy(params[1] - weight @ mean))
    return probe.eval()


# -- one imported run -----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Scan:
    """What an imported run holds right now."""

    tag: str | None
    records: dict[int, dict[str, Any]]  # converted, verified steps
    pending: list[int]  # listed steps not converted (yet, or since their files changed)
    problems: list[storage.StepProblem]
    error: str | None  # a problem of the whole run (unreadable config)


def _stat(path: str | None) -> list[int] | None:
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _classes_key(classes: list[str]) -> str:
    return hashlib.sha256(json.dumps(classes).encode("utf-8")).hexdigest()[:16]


class ProjectorRun:
    """One run in the Embedding Projector layout and its converted DVI steps."""

    def __init__(self, run_dir: str, confine: Callable[[str], str], logdir_root: str | None = None) -> None:
        """``confine(path)`` turns a path from the config (relative to the run, or absolute) into an absolute path
        inside the logdir, raising for anything outside; ``logdir_root`` confines the converted files."""
        self.run_dir = run_dir
        self.store = ImportedStore(run_dir, logdir_root)
        self._confine = confine
        self._lock = threading.Lock()  # guards the fields below; held briefly
        self._convert_lock = threading.Lock()  # one conversion at a time
        self._config_stat: list[int] | None = None
        self._config: tuple[str | None, dict[int, Entry], str | None] = (None, {}, None)
        self._manifest: dict[str, Any] | None = None
        self._records: dict[int, dict[str, Any]] = {}
        self._labels: dict[tuple, list[str]] = {}

    # -- cheap view ------------------------------------------------------------------------------------------------

    def scan(self, *, convert: bool = False) -> Scan:
        """The run's steps; with ``convert`` first converts every step whose files changed (may take seconds)."""
        if convert:
            with self._convert_lock:
                self._convert()
        tag, entries, error = self._read_config()
        manifest = self._load_manifest()
        records, pending, problems = {}, [], []
        for step, entry in sorted(entries.items()):
            sources, problem = self._sources(entry)
            state = manifest["steps"].get(str(step))
            if state is not None and state.get("sources") == sources:
                if state.get("error"):
                    problems.append(storage.StepProblem(step, state["error"]))
                    continue
                record = self._records.get(step)
                if record is not None and record["files"]["arrays"]["sha256"] == state.get("arrays"):
                    try:
                        self.store.check(record)
                        records[step] = record
                        continue
                    except storage.StepError:
                        pass  # converted files removed or altered: convert again
            if problem is not None:
                problems.append(storage.StepProblem(step, problem))
            else:
                pending.append(step)
        return Scan(tag, records, pending, problems, error)

    def _read_config(self) -> tuple[str | None, dict[int, Entry], str | None]:
        path = os.path.join(self.run_dir, CONFIG_NAME)
        stat = _stat(path)
        with self._lock:
            if stat == self._config_stat:
                return self._config
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                tag, entries = parse_config(handle.read())
            error = None if entries else f"{CONFIG_NAME} lists no embedding with a tensors.tsv"
        except (OSError, ValueError) as err:
            tag, entries, error = None, {}, str(err)
        with self._lock:
            self._config_stat, self._config = stat, (tag, entries, error)
        return tag, entries, error

    def _path(self, rel: str | None) -> str | None:
        return None if rel is None else self._confine(rel)

    def _sources(self, entry: Entry) -> tuple[list[Any], str | None]:
        """Fingerprint of a step's source files (paths, sizes, mtimes) and a problem visible without reading them."""
        try:
            paths = [self._path(entry.tensor_path), self._path(entry.metadata_path), self._path(entry.sprite_path)]
        except Exception:  # noqa: BLE001 - confine raises TensorBoard's NotFoundError for escaping paths
            return [CONVERTER_VERSION, entry.tensor_path], "a path in projector_config.pbtxt points outside the logdir"
        stats = [_stat(p) for p in paths]
        sources = [CONVERTER_VERSION, entry.tensor_path, entry.metadata_path, entry.sprite_path,
                   list(entry.sprite_dim) if entry.sprite_dim else None, *stats]
        if stats[0] is None:
            return sources, "missing tensors.tsv"
        if paths[1] is None or stats[1] is None:
            return sources, NO_LABELS
        return sources, None

    # -- manifest --------------------------------------------------------------------------------------------------

    def _load_manifest(self) -> dict[str, Any]:
        with self._lock:
            if self._manifest is not None:
                return self._manifest
        manifest: dict[str, Any] = {"version": CONVERTER_VERSION, "steps": {}}
        try:
            loaded = json.loads(fsio.read_json_file(self.store.path(MANIFEST)))
            if isinstance(loaded, dict) and loaded.get("version") == CONVERTER_VERSION and isinstance(
                    loaded.get("steps"), dict) and all(isinstance(v, dict) for v in loaded["steps"].values()):
                manifest = loaded
        except (OSError, ValueError, RecursionError, storage.StepError, fsio.UnreadableFile):
            pass  # converted again from the sources
        records, _ = self.store.list_records()
        with self._lock:
            if self._manifest is None:
                self._manifest, self._records = manifest, records
            return self._manifest

    def _save_manifest(self, step: int, state: dict[str, Any], record: dict[str, Any] | None) -> None:
        with self._lock:
            assert self._manifest is not None
            steps = dict(self._manifest["steps"])
            steps[str(step)] = state
            self._manifest = {**self._manifest, "steps": steps}
            if record is not None:
                self._records[step] = record
            blob = json.dumps(self._manifest).encode("utf-8")
        fsio.atomic_write(self.store.writable(os.path.join(self.store.root, MANIFEST)), blob)

    # -- conversion ------------------------------------------------------------------------------------------------

    def _step_labels(self, entry: Entry) -> list[str] | storage.StepError:
        """The step's label strings (cached per file version), or the error reading them."""
        path = self._path(entry.metadata_path)
        key = (path, tuple(_stat(path) or ()))
        with self._lock:
            if key in self._labels:
                return self._labels[key]
        try:
            with open(path, "rb") as handle:  # type: ignore[arg-type]
                labels: list[str] | storage.StepError = parse_metadata(handle.read())
        except OSError as err:
            return storage.StepError(f"cannot read metadata.tsv: {err}")
        except storage.StepError as err:
            labels = err
        with self._lock:
            self._labels[key] = labels
        return labels

    def _convert(self) -> None:
        tag, entries, _ = self._read_config()
        manifest = self._load_manifest()
        sources = {step: self._sources(entry) for step, entry in entries.items()}
        labels = {step: self._step_labels(entries[step]) for step, (_, problem) in sources.items() if problem is None}
        classes = class_names(v for values in labels.values() if isinstance(values, list) for v in values)
        key = _classes_key(classes)
        inputs = None
        for step in sorted(entries):
            fp, problem = sources[step]
            state = manifest["steps"].get(str(step))
            if state is not None and state.get("sources") == fp and state.get("classes") == key:
                if state.get("error"):
                    continue  # same files, same classes: the same error; not retried until something changes
                record = self._records.get(step)
                if record is not None and record["files"]["arrays"]["sha256"] == state.get("arrays"):
                    try:
                        self.store.check(record)
                        continue
                    except storage.StepError:
                        pass  # converted files removed or altered: convert again
            record, error = None, problem
            if error is None:
                step_labels = labels[step]
                try:
                    if isinstance(step_labels, storage.StepError):
                        raise step_labels
                    if inputs is None:
                        inputs = self._existing_input_ids()
                    record = self._convert_step(entries[step], tag, step_labels, classes, inputs)
                except (storage.StepError, OSError, ValueError, RuntimeError) as err:
                    error = str(err)
                    logger.warning("DVI: cannot import step %d of %s: %s", step, self.run_dir, error)
            state = {"sources": fp, "classes": key, "error": error,
                     "arrays": record["files"]["arrays"]["sha256"] if record else None}
            try:
                self._save_manifest(step, state, record)
            except OSError as err:
                logger.warning("DVI: cannot write the import manifest of %s: %s", self.run_dir, err)
                return

    def _existing_input_ids(self) -> set[int]:
        try:
            inputs = self.store.load_inputs()
        except storage.StepError:
            return set()
        return set() if inputs is None else {int(i) for i in inputs[0]}

    def _convert_step(self, entry: Entry, tag: str | None, step_labels: list[str], classes: list[str],
                      input_ids: set[int]) -> dict[str, Any]:
        """Convert one step; raise :class:`storage.StepError` (or OSError writing) when it cannot be."""
        import torch

        from tensorboard_plugin_dvi import heads, validation

        features = read_tensors(self._path(entry.tensor_path))  # type: ignore[arg-type]
        n = features.shape[0]
        if len(step_labels) != n:
            raise storage.StepError(f"metadata.tsv has {len(step_labels)} labels but tensors.tsv has {n} rows")
        index = {name: i for i, name in enumerate(classes)}
        labels = np.array([index[v] for v in step_labels], dtype=np.int64)
        present = np.unique(labels)
        if len(classes) < 2 or present.size < 2:
            raise storage.StepError(f"metadata.tsv labels of this step are a single class "
                                    f"({classes[int(labels[0])]!r}); DVI needs at least 2 classes")
        started = time.time()
        probe = fit_probe(features, labels, len(classes))
        with torch.no_grad():
            probe_acc = float((probe(torch.from_numpy(features)).argmax(1).numpy() == labels).mean())
        head_bytes, head_kind = heads.serialize_head(probe, torch.from_numpy(features[:8]))
        ids = np.arange(n, dtype=np.int64)
        has_inputs, sprite_error = bool(n) and set(range(n)) <= input_ids, None
        if not has_inputs and entry.sprite_path is not None:
            try:
                cells = sprite_cells(self._path(entry.sprite_path), n, entry.sprite_dim)  # type: ignore[arg-type]
                self.store.write_inputs(ids, validation.to_thumbnails(cells, n))
                input_ids.update(range(n))
                has_inputs = True
            except (storage.StepError, ValueError) as err:
                sprite_error = str(err)
        logits = np.zeros((n, len(classes)), dtype=np.float32)
        logits[ids, labels] = 30.0  # no model was logged: pred = label, conf = 1
        arrays = {"features": features, "labels": labels, "split": np.ones(n, dtype=np.uint8), "ids": ids,
                  "logits": logits}
        record = {
            "n": n, "d": int(features.shape[1]), "n_classes": len(classes), "classes": classes,
            "feature_dtype": "float32", "n_train": n, "has_inputs": has_inputs, "flags": [], "boundary": None,
            "accuracy": {"train": None, "test": None}, "wall_time": time.time(), "source": "projector",
            "projector": {
                "tag": tag, "tensor_path": entry.tensor_path, "sprite_error": sprite_error,
                "probe": {"kind": "linear", "steps": PROBE_STEPS, "max_rows": PROBE_MAX_ROWS,
                          "train_accuracy": probe_acc, "seconds": round(time.time() - started, 3)},
            },
        }
        return self.store.write_step(entry.step, arrays, head_bytes, head_kind, record)
