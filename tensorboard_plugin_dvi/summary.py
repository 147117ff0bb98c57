"""The writing API: ``dvi.summary.snapshot(...)``, called once per epoch next to the user's scalars.

A snapshot stores the step's arrays and head as files under ``<run>/plugins/dvi/`` and then appends one small JSON
index record (tag ``dvi/snapshot``) to the run's event file, which is what makes TensorBoard list the run and turn
the DVI tab on. Everything is validated before anything is written.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from tensorboard_plugin_dvi import fsio, heads, metadata, storage, validation

__all__ = ["snapshot", "snapshot_pb", "close"]

_WRITERS: dict[str, EventFileWriter] = {}
_WRITERS_LOCK = threading.Lock()


def snapshot(target: Any, step: int, features: Any, labels: Any, head: torch.nn.Module, *, split: Any = None,
             sample_ids: Any = None, inputs: Any = None, encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
             class_names: Any = None, flags: dict[str, Any] | None = None,
             model: torch.nn.Module | None = None) -> dict[str, Any]:
    """Log one step of a classifier's representations for DVI; return the index record written.

    Args:
        target: a run directory (str or path) or a ``torch.utils.tensorboard.SummaryWriter``; with a writer the
            index record goes into the writer's own event file, next to its scalars.
        step: the training step or epoch (int >= 0).
        features: representations [N, D] (penultimate layer), torch tensor or numpy array, finite.
        labels: integer class labels [N].
        head: the module mapping features to logits (``nn.Linear``, ``nn.Sequential`` of standard layers, or any
            module ``torch.export`` can trace). Saved so the plugin can run it without your code.
        split: boolean is-train mask [N] or array of "train"/"test" (default: all train).
        sample_ids: stable integer ids [N] across steps (default 0..N-1).
        inputs: raw samples [N,H,W], [N,C,H,W] or [N,H,W,C] for thumbnails (stored once per run).
        encoder: any callable mapping a batch of ``inputs`` to ``features`` (an ``nn.Module``, a model's
            ``features`` method, a function); with ``inputs`` it lets boundary samples be made by mixing real inputs
            (DVI's input-space boundary samples). A module's training mode is restored afterwards.
        class_names: one name per head output (default "0".."C-1").
        flags: named sets of sample ids to offer as filters in the tab, e.g. ``{"flipped": noisy_ids}``.
        model: the whole model, to also record per-layer weight statistics for this step (norms, relative change
            since the last logged step, gradient norms when called after ``backward()``); see
            ``dvi.layers.log_layers``.
    """
    run_dir, writer = _resolve_target(target)
    step = validation.check_step(step)
    store = storage.RunStore(run_dir)
    arrays, record, thumbs = _prepare(step, features, labels, head, split, sample_ids, inputs, encoder,
                                      class_names, flags, stored_ids=_stored_input_ids(store))
    head_bytes, head_kind = heads.serialize_head(head, torch.from_numpy(arrays["features"][:8]).float())
    if thumbs is not None:
        store.write_inputs(arrays["ids"], thumbs)
    record = store.write_step(step, arrays, head_bytes, head_kind, record)
    _write_event(run_dir, writer, snapshot_pb(record), step)
    store.prune_step(step, record)  # a re-logged step's old files, now that no newest record points to them
    if model is not None:
        from tensorboard_plugin_dvi import layers

        layers.log_layers(target, step, model)
    return record


def _stored_input_ids(store: storage.RunStore) -> np.ndarray | None:
    """Ids that already have a thumbnail in the run's ``inputs.npz`` (only that member is read), or None."""
    try:
        path = store.path("inputs.npz")
        if not os.path.exists(path):
            return None
        ids = fsio.read_npz(path, required=("ids", "thumbnails"), skip=("thumbnails",))["ids"]
    except (OSError, storage.StepError, fsio.UnreadableFile):
        return None  # unreadable: thumbnails are made again and the file is replaced, as storage does
    return ids if ids.ndim == 1 and ids.dtype.kind in "iu" else None


def _check_inputs(inputs: Any, n: int) -> None:
    """Validate ``inputs`` as ``validation.to_thumbnails`` does (same messages) without converting every image."""
    images = validation.to_numpy(inputs, "inputs")
    if images.shape[:1] != (n,) or (images.dtype.kind == "f" and not np.isfinite(images).all()):
        validation.to_thumbnails(images, n)  # raises its ValueError
    validation.to_thumbnails(images[:1], 1)  # dimensions and channels


def _prepare(step, features, labels, head, split, sample_ids, inputs, encoder, class_names, flags, stored_ids=None):
    """Validate every argument and build the step's arrays and record; writes nothing.

    Thumbnails are stored once per run: when ``stored_ids`` (the run's ids that have one) covers every id, the
    inputs are only validated and no thumbnails are made (converting 10k images cost ~0.1-0.25 s, a third of a
    snapshot with ``encoder=``); the returned thumbnails are then None.
    """
    if not isinstance(head, torch.nn.Module):
        raise TypeError(f"The 'head' parameter of snapshot must be a torch.nn.Module. Got {type(head).__name__} "
                        "instead.")
    feats = validation.check_features(features)
    n = feats.shape[0]
    logits = _run_head(head, feats)
    n_classes = logits.shape[1]
    names = validation.check_class_names(class_names, n_classes)
    labs = validation.check_labels(labels, n, n_classes)
    train = validation.check_split(split, n)
    ids = validation.check_ids(sample_ids, n)
    flag_sets = validation.check_flags(flags, ids)
    thumbs = None
    if inputs is not None:
        if stored_ids is not None and np.isin(ids, stored_ids).all():
            _check_inputs(inputs, n)
        else:
            thumbs = validation.to_thumbnails(inputs, n)
    arrays = {"features": feats, "labels": labs, "split": train, "ids": ids, "logits": logits}
    arrays.update({f"flag_{k}": v for k, v in flag_sets.items()})
    if encoder is not None:
        if not callable(encoder):
            raise TypeError("The 'encoder' parameter of snapshot must be callable (an nn.Module, a model's method "
                            f"such as model.features, or a function from inputs to features). Got "
                            f"{type(encoder).__name__} instead.")
        arrays.update(_input_space_boundary(head, encoder, inputs, feats, train, step))
    pred = logits.argmax(1)
    record = {
        "n": n, "d": int(feats.shape[1]), "n_classes": n_classes, "classes": names,
        "feature_dtype": str(feats.dtype), "n_train": int(train.sum()),
        "has_inputs": inputs is not None, "flags": sorted(flag_sets),
        "boundary": "input" if "boundary" in arrays else None,
        "accuracy": {k: _accuracy(pred, labs, train == v) for k, v in (("train", 1), ("test", 0))},
        "wall_time": time.time(),
    }
    return arrays, record, thumbs


def _accuracy(pred: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float | None:
    return float((pred[mask] == labels[mask]).mean()) if mask.any() else None


def _device_of(module: Any) -> torch.device:
    """Device of a module's first parameter or buffer; a bound method's module; else CPU."""
    owner = getattr(module, "__self__", module)  # model.features -> model
    if isinstance(owner, torch.nn.Module):
        for tensor in list(owner.parameters()) + list(owner.buffers()):
            return tensor.device
    return torch.device("cpu")


@torch.no_grad()
def _run_head(head: torch.nn.Module, feats: np.ndarray) -> np.ndarray:
    """Logits [N, C] of ``head`` on the features, in eval mode (the module's mode is restored afterwards)."""
    was_training = head.training
    head.eval()
    try:
        x = torch.from_numpy(feats).float().to(_device_of(head))
        out = torch.cat([head(chunk) for chunk in torch.split(x, 8192)]).float().cpu().numpy()
    except Exception as err:
        raise ValueError(f"The 'head' parameter of snapshot could not be applied to features of shape "
                         f"{feats.shape}: {err}") from err
    finally:
        head.train(was_training)
    if out.ndim != 2 or out.shape[0] != feats.shape[0] or out.shape[1] < 2:
        raise ValueError(f"The 'head' parameter of snapshot must map [N, D] features to logits [N, C] with C >= 2. "
                         f"Got output of shape {tuple(out.shape)} instead.")
    if not np.isfinite(out).all():
        raise ValueError("The 'head' parameter of snapshot produced non-finite logits on these features.")
    return out


def _input_space_boundary(head, encoder, inputs, feats, train, step) -> dict[str, np.ndarray]:
    """DVI boundary samples made by mixing real inputs (training split), two independent sets."""
    if inputs is None:
        raise ValueError("The 'encoder' parameter of snapshot needs 'inputs' (the raw samples it encodes). "
                         "Pass inputs=..., or leave encoder=None to make boundary samples from features.")
    from tensorboard_plugin_dvi import method

    x = inputs if isinstance(inputs, torch.Tensor) else torch.as_tensor(np.asarray(inputs))
    mask = torch.from_numpy(train.astype(bool))
    x_train, f_train = x[mask], feats[train.astype(bool)]
    sets = [method.boundary_samples(head, f_train, encoder=encoder, inputs=x_train, seed=2 * step + i,
                                      device=str(_device_of(encoder))) for i in (0, 1)]
    return {"boundary": sets[0].astype(np.float32), "boundary_test": sets[1].astype(np.float32)}


def snapshot_pb(record: dict[str, Any]) -> summary_pb2.Summary:
    """The ``Summary`` proto holding one index record (rank-1 string tensor with the record's JSON)."""
    tensor = tensor_util.make_tensor_proto(np.array([_json_bytes(record)], dtype=object))
    value = summary_pb2.Summary.Value(tag=metadata.TAG, metadata=metadata.create_summary_metadata(), tensor=tensor)
    return summary_pb2.Summary(value=[value])


def _json_bytes(record: dict[str, Any]) -> bytes:
    import json

    return json.dumps(record, separators=(",", ":")).encode("utf-8")


def _resolve_target(target: Any) -> tuple[str, Any]:
    """``(run_dir, summary_writer_or_None)`` for a path or a ``SummaryWriter``."""
    if hasattr(target, "get_logdir") and hasattr(target, "file_writer"):
        if target.file_writer is None:
            raise ValueError("The 'target' parameter of snapshot is a SummaryWriter that has been closed. "
                             "Call snapshot before writer.close().")
        return str(target.get_logdir()), target
    if isinstance(target, (str, os.PathLike)):
        return os.fspath(target), None
    raise TypeError(f"The 'target' parameter of snapshot must be a run directory path or a "
                    f"torch.utils.tensorboard.SummaryWriter. Got {type(target).__name__} instead.")


def _write_event(run_dir: str, writer: Any, summary: summary_pb2.Summary, step: int) -> None:
    """Append the index record to the run's event file and flush it, so it lands after the array files."""
    if writer is not None:
        writer.file_writer.add_summary(summary, global_step=step)
        writer.file_writer.flush()
        return
    key = os.path.realpath(run_dir)
    with _WRITERS_LOCK:
        if key not in _WRITERS:
            _WRITERS[key] = EventFileWriter(run_dir)
        event_writer = _WRITERS[key]
        event_writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        event_writer.flush()


def close(run_dir: str | None = None) -> None:
    """Close DVI's own event writers (for path targets); all of them when ``run_dir`` is None."""
    with _WRITERS_LOCK:
        keys = list(_WRITERS) if run_dir is None else [os.path.realpath(run_dir)]
        for key in keys:
            writer = _WRITERS.pop(key, None)
            if writer is not None:
                writer.close()


atexit.register(close)
