"""Per-layer weight statistics (DeepTracker's layer small multiples): recorded while training, read by the plugin.

``log_layers(target, step, model)`` records, for every module that owns parameters (a *layer*: a convolution, a
linear map, a normalisation):

* ``norm``: the L2 norm of the layer's parameters ``w``;
* ``rel_change``: ``||w_t - w_prev|| / ||w_prev||`` since the previous logged step (NaN at the first step this
  process logs, or when the layer's shapes changed);
* ``grad_norm``: the L2 norm of the parameters' gradients when they have one (call it after ``backward()``), else
  NaN.

No copy of the model is kept. The change is estimated from a fixed random *sketch* of each parameter tensor: its
``P`` entries are laid out as a [B, m] matrix (``m`` = :data:`SKETCH_DIM`, a prime, so the rows cut across the
tensor's own layout), the first ``B * m`` entries are summed down the rows with fixed random signs ``s`` (one per
row: ``sketch = s @ W``) and the remaining ``P - B * m < m`` entries are kept as they are. The sketch is linear, so
the sketch of ``w_t - w_prev`` is the difference of the two sketches, and with random signs
``E ||sketch(d)||^2 = ||d||^2`` for any change ``d``: the relative change is estimated within a few percent
(about ``sqrt(2 / m)``, 3 %, for a change spread over many entries). A tensor of at most ``EXACT_MAX`` entries is
kept whole (exact). Extra memory: ``m + B`` floats per large tensor, under 1 % of a ResNet-18; the cost is about
three passes over the parameters (norm, sketch, gradient norm).

Each logged step writes ``<run>/plugins/dvi/layers/layers_<step:08d>-<hash8>.npz`` (arrays ``names``, ``blocks``,
``params``, ``norm``, ``rel_change``, ``grad_norm``), then its JSON record ``layers_<step:08d>.json`` beside it,
then the same record in the run's event file under the tag :data:`TAG` (plugin ``dvi``), like a snapshot.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
import zlib
from typing import Any

import numpy as np
import torch
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util

from tensorboard_plugin_dvi import fsio, metadata, storage, validation

TAG = metadata.LAYERS_TAG
"""Summary tag of the per-step layer statistics records (plugin name ``dvi``)."""

FOLDER = "layers"
"""Sub-folder of a run's DVI folder holding the layer statistics files."""

SKETCH_DIM = 2039
"""Rows of a tensor's sketch (a prime)."""

EXACT_MAX = 4096
"""Tensors with at most this many entries are kept whole instead of sketched."""

ARRAYS = ("names", "blocks", "params", "norm", "rel_change", "grad_norm")
"""Arrays of a step's layer statistics file."""

_RECORD = re.compile(r"^layers_(\d{8})\.json$")
_RECORDERS: dict[str, LayerRecorder] = {}
_LOCK = threading.Lock()


@dataclasses.dataclass
class _Sketch:
    """A tensor's fixed signs (None when kept whole) and its sketch at the previous logged step."""

    shape: tuple[int, ...]
    signs: torch.Tensor | None
    last: torch.Tensor | None = None


def layer_groups(model: torch.nn.Module) -> list[tuple[str, str, list[tuple[str, torch.nn.Parameter]]]]:
    """``(layer, block, [(parameter name, parameter)])`` for every module owning parameters, in module order.

    The block is the layer's parent module path (``layer1.0`` for ``layer1.0.conv1``), empty at the top level.
    """
    out = []
    for name, module in model.named_modules():
        own = [(f"{name}.{p}" if name else p, param) for p, param in module.named_parameters(recurse=False)]
        if own:
            out.append((name or "(model)", name.rsplit(".", 1)[0] if "." in name else "", own))
    return out


class LayerRecorder:
    """Measures a model's layers at each call, keeping one small sketch per parameter tensor between calls."""

    def __init__(self, sketch_dim: int = SKETCH_DIM, exact_max: int = EXACT_MAX, seed: int = 0) -> None:
        self.sketch_dim, self.exact_max, self.seed = sketch_dim, exact_max, seed
        self._sketches: dict[str, _Sketch] = {}
        self._last_norm: dict[str, float] = {}

    @torch.no_grad()
    def measure(self, model: torch.nn.Module) -> dict[str, np.ndarray]:
        """Norms, relative changes and gradient norms of every layer now (see the module docstring)."""
        groups = layer_groups(model)
        norm = np.zeros(len(groups))
        change = np.full(len(groups), np.nan)
        grad = np.full(len(groups), np.nan)
        counts = np.zeros(len(groups), np.int64)
        for i, (layer, _, params) in enumerate(groups):
            sq, moved, grad_sq, fresh, has_grad = 0.0, 0.0, 0.0, False, False
            for pname, param in params:
                flat = param.detach().reshape(-1).float()
                sq += float(torch.dot(flat, flat))
                diff, new = self._update(pname, param.shape, flat)
                fresh |= new
                moved += diff
                counts[i] += flat.numel()
                if param.grad is not None:
                    g = param.grad.detach().reshape(-1).float()
                    grad_sq, has_grad = grad_sq + float(torch.dot(g, g)), True
            norm[i] = np.sqrt(sq)
            previous = self._last_norm.get(layer)
            if not fresh and previous is not None:
                change[i] = np.sqrt(moved) / previous if previous > 0 else np.nan
            self._last_norm[layer] = norm[i]
            grad[i] = np.sqrt(grad_sq) if has_grad else np.nan
        return {"names": np.array([g[0] for g in groups], dtype=str), "blocks": np.array([g[1] for g in groups],
                dtype=str), "params": counts, "norm": norm, "rel_change": change, "grad_norm": grad}

    def _update(self, name: str, shape: torch.Size, flat: torch.Tensor) -> tuple[float, bool]:
        """Squared sketched change of one tensor since the previous call, and whether it is new (no previous)."""
        entry = self._sketches.get(name)
        if entry is None or entry.shape != tuple(shape):
            entry = self._sketches[name] = _Sketch(tuple(shape), self._signs(name, flat))
        current = self._sketch(flat, entry.signs)
        fresh = entry.last is None
        diff = 0.0 if fresh else float(((current - entry.last) ** 2).sum())
        entry.last = current
        return diff, fresh

    def _signs(self, name: str, flat: torch.Tensor) -> torch.Tensor | None:
        """Fixed random signs (one per sketch row) for a tensor, from the recorder's seed and its name."""
        rows = flat.numel() // self.sketch_dim
        if flat.numel() <= self.exact_max or rows == 0:
            return None
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode("utf-8")))
        signs = torch.randint(0, 2, (rows,), generator=gen).float().mul_(2).sub_(1)
        return signs.to(flat.device)

    def _sketch(self, flat: torch.Tensor, signs: torch.Tensor | None) -> torch.Tensor:
        if signs is None:
            return flat.clone()
        rows, m = len(signs), self.sketch_dim
        head = signs @ flat[:rows * m].view(rows, m)
        return torch.cat([head, flat[rows * m:]])

    def memory_bytes(self) -> int:
        """Bytes held between calls: every sketch and sign vector."""
        total = 0
        for entry in self._sketches.values():
            for tensor in (entry.signs, entry.last):
                if tensor is not None:
                    total += tensor.numel() * tensor.element_size()
        return total


def recorder_for(run_dir: str) -> LayerRecorder:
    """The recorder that keeps a run's sketches between calls (one per run directory in this process)."""
    key = os.path.realpath(run_dir)
    with _LOCK:
        if key not in _RECORDERS:
            _RECORDERS[key] = LayerRecorder()
        return _RECORDERS[key]


def log_layers(target: Any, step: int, model: torch.nn.Module, *,
               recorder: LayerRecorder | None = None) -> dict[str, Any]:
    """Record ``model``'s per-layer statistics for ``step`` into a run; return the index record written.

    ``target`` is a run directory or a ``SummaryWriter`` (as for ``snapshot``). Call it after ``backward()`` to
    record gradient norms, at every step you log (the relative change is measured since the previous call for the
    same run in this process). ``recorder`` overrides the run's own :class:`LayerRecorder`.
    """
    from tensorboard_plugin_dvi import summary

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"The 'model' parameter of log_layers must be a torch.nn.Module. Got {type(model).__name__} "
                        "instead.")
    run_dir, writer = summary._resolve_target(target)
    step = validation.check_step(step)
    arrays = (recorder or recorder_for(run_dir)).measure(model)
    if not len(arrays["names"]):
        raise ValueError("The 'model' parameter of log_layers has no parameters to record.")
    data = fsio.npz_bytes(arrays)
    digest = storage.sha256_bytes(data)
    name = f"layers_{step:08d}-{digest[:8]}.npz"
    folder = os.path.join(storage.asset_dir(run_dir), FOLDER)
    fsio.atomic_write(os.path.join(folder, name), data)
    record = {"version": metadata.SCHEMA_VERSION, "kind": "layers", "step": step, "n_layers": len(arrays["names"]),
              "params": int(arrays["params"].sum()), "wall_time": time.time(),
              "file": {"name": name, "sha256": digest, "bytes": len(data)}}
    fsio.atomic_write(os.path.join(folder, f"layers_{step:08d}.json"), json.dumps(record).encode("utf-8"))
    summary._write_event(run_dir, writer, layers_pb(record), step)
    _prune(folder, step, name)
    return record


def layers_pb(record: dict[str, Any]) -> summary_pb2.Summary:
    """The ``Summary`` proto of one layer statistics record (rank-1 string tensor holding its JSON)."""
    tensor = tensor_util.make_tensor_proto(np.array([json.dumps(record).encode("utf-8")], dtype=object))
    meta = summary_pb2.SummaryMetadata(
        summary_description="DVI layer statistics record (JSON)",
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=json.dumps({"version": metadata.SCHEMA_VERSION}).encode()),
        data_class=summary_pb2.DATA_CLASS_TENSOR)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=TAG, metadata=meta, tensor=tensor)])


def _prune(folder: str, step: int, keep: str) -> None:
    """Remove a re-logged step's older statistics files (its newest record names ``keep``)."""
    prefix = f"layers_{step:08d}-"
    try:
        stale = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".npz") and n != keep]
    except OSError:
        return
    fsio.remove_quietly(*(os.path.join(folder, n) for n in stale))


# -- reading ---------------------------------------------------------------------------------------------------------

def parse_record(data: bytes | str) -> dict[str, Any]:
    """A layer statistics record from its JSON; :class:`storage.StepError` when it is malformed."""
    try:
        record = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise storage.StepError(f"layer record is not JSON: {err}") from None
    ok = (isinstance(record, dict) and record.get("version") == metadata.SCHEMA_VERSION
          and isinstance(record.get("step"), int) and isinstance(record.get("file"), dict)
          and isinstance(record["file"].get("name"), str) and isinstance(record["file"].get("sha256"), str))
    if not ok:
        raise storage.StepError("layer record lacks version, step or file entry")
    name = record["file"]["name"]
    if os.path.basename(name) != name or name.startswith(".") or "\x00" in name:
        raise storage.StepError(f"invalid file name {name!r} in layer record")
    return record


def disk_records(store: storage.RunStore) -> tuple[dict[int, dict[str, Any]], list[storage.StepProblem]]:
    """Layer records found in the run's ``layers`` folder (the fallback when the event records are not given)."""
    try:
        folder = store.path(FOLDER)
        names = sorted(os.listdir(folder))
    except (OSError, storage.StepError):
        return {}, []
    records, problems = {}, []
    for name in names:
        match = _RECORD.match(name)
        if not match:
            continue
        try:
            records[int(match.group(1))] = parse_record(fsio.read_json_file(store.path(f"{FOLDER}/{name}")))
        except (OSError, storage.StepError, fsio.UnreadableFile) as err:
            problems.append(storage.StepProblem(int(match.group(1)), f"unreadable layer record {name}: {err}"))
    return records, problems


def load_step(store: storage.RunStore, record: dict[str, Any]) -> dict[str, np.ndarray]:
    """One step's layer statistics after checking the file's hash; :class:`storage.StepError` when untrusted."""
    entry = record["file"]
    path = store.path(f"{FOLDER}/{entry['name']}")
    try:
        if storage.sha256_file(path) != entry["sha256"]:
            raise storage.StepError(f"hash mismatch in {entry['name']} (modified after logging)")
        arrays = fsio.read_npz(path, required=ARRAYS)
    except (OSError, fsio.UnreadableFile) as err:
        raise storage.StepError(f"cannot read {entry['name']}: {err}") from None
    n = len(arrays["names"])
    kinds = {"names": "U", "blocks": "U", "params": "iu", "norm": "f", "rel_change": "f", "grad_norm": "f"}
    for key, kind in kinds.items():
        if arrays[key].ndim != 1 or len(arrays[key]) != n or arrays[key].dtype.kind not in kind:
            raise storage.StepError(f"{entry['name']}: array {key!r} is not [{n}] of kind {kind}")
    return arrays
