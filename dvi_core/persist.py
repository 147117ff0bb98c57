"""Saving and loading a fitted step as one plain ``.npz`` file: arrays and JSON, never pickle.

Layout of the file (``numpy.savez``, readable with ``numpy.load(path, allow_pickle=False)``):

- ``meta``: uint8 array holding UTF-8 JSON ``{"format", "config", "npr", "digest", "shared_memory", "has_knn"}``;
- ``embedding`` float32 [N, 2] and, when present, ``knn`` int32 [N, k];
- ``encoder/<name>`` and ``decoder/<name>`` for every entry of the models' ``state_dict``.

Loading validates every name, shape and dtype against empty models built from the stored config, so a
truncated, foreign or tampered file is refused with one ``ValueError`` that tells the user to project again.
Works with any path (it writes through an open file handle, so numpy does not append ``.npz``).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = "dvi_core.StepProjection/3"
_MAX_SIZE = 10**8
_SIZES = ("n_features", "hidden", "n_layers", "n_components", "n_ref", "n_ref_encoder", "n_logits", "n_neighbors")
_SKIP = "memory.values"  # the decoder's memory values are the first rows of the placement encoder's keys: stored once


class FormatError(ValueError):
    """A file that is not a saved step of this version (raised as ValueError with advice)."""


def _refuse(path: Any, why: str) -> FormatError:
    return FormatError(f"{os.fspath(path) if isinstance(path, os.PathLike) else path} is not a saved "
                       f"StepProjection of this version ({why}; expected format {FORMAT!r}); "
                       "project the step again.")


def _state(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def write(
    path: str | os.PathLike[str], encoder: nn.Module, decoder: nn.Module, embedding: np.ndarray,
    knn: np.ndarray | None, meta: dict[str, Any],
) -> None:
    """Write the step to ``path`` exactly (no suffix added)."""
    enc, dec = _state(encoder), _state(decoder)
    keys, values = enc.get("keys"), dec.get(_SKIP)
    shared = (keys is not None and values is not None and values.shape[1:] == keys.shape[1:]
              and len(values) <= len(keys) and np.array_equal(keys[: len(values)], values))
    if shared:
        del dec[_SKIP]
    head = {**meta, "format": FORMAT, "shared_memory": int(len(values)) if shared else None, "has_knn": knn is not None}
    arrays: dict[str, np.ndarray] = {
        "meta": np.frombuffer(json.dumps(head).encode("utf-8"), dtype=np.uint8),
        "embedding": np.asarray(embedding, np.float32),
    }
    if knn is not None:
        arrays["knn"] = np.asarray(knn, np.int32)
    arrays.update({f"encoder/{k}": v for k, v in enc.items()})
    arrays.update({f"decoder/{k}": v for k, v in dec.items()})
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _read_meta(files: Any, path: Any) -> dict[str, Any]:
    if "meta" not in files:
        raise _refuse(path, "no 'meta' entry")
    raw = files["meta"]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _refuse(path, f"'meta' is {raw.dtype} {raw.shape}, not uint8 bytes")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _refuse(path, "'meta' is not JSON") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _refuse(path, f"format {meta.get('format') if isinstance(meta, dict) else None!r}")
    cfg = meta.get("config")
    if not isinstance(cfg, dict):
        raise _refuse(path, "no config")
    sizes = [cfg.get(k, 0) for k in _SIZES]
    if not all(isinstance(v, int) and 0 <= v <= _MAX_SIZE for v in sizes):
        raise _refuse(path, "a model size out of range")  # checked before any model of that size is allocated
    return meta


def _check(path: Any, name: str, got: np.ndarray, shape: tuple[int, ...] | None, dtype: np.dtype) -> np.ndarray:
    if got.dtype != dtype or (shape is not None and got.shape != shape):
        raise _refuse(path, f"'{name}' is {got.dtype} {got.shape}, expected {dtype} {shape or '[...]'}")
    return got


def _load_module(files: Any, path: Any, prefix: str, module: nn.Module, extra: dict[str, np.ndarray]) -> None:
    """Fill ``module``'s state from ``files`` after checking names, shapes and dtypes (buffers may be resized)."""
    want = module.state_dict()
    have = {n[len(prefix) + 1 :] for n in files.files if n.startswith(prefix + "/")} | set(extra)
    if have != set(want):
        raise _refuse(path, f"{prefix} entries {sorted(have ^ set(want))} differ")
    state = {}
    params = {n for n, _ in module.named_parameters()}
    for name, ref in want.items():
        arr = extra[name] if name in extra else files[f"{prefix}/{name}"]
        dtype = np.dtype(str(ref.dtype).replace("torch.", ""))
        # parameters have fixed shapes; buffers (kNN memories) are sized by the data, check their rank only
        _check(path, f"{prefix}/{name}", arr, tuple(ref.shape) if name in params else None, dtype)
        if name not in params and arr.ndim != ref.dim():
            raise _refuse(path, f"'{prefix}/{name}' has rank {arr.ndim}, expected {ref.dim()}")
        state[name] = torch.from_numpy(np.array(arr))
    module.load_state_dict(state, strict=True, assign=True)


def read(
    path: str | os.PathLike[str], build: Callable[[dict[str, Any]], tuple[nn.Module, nn.Module]],
) -> tuple[nn.Module, nn.Module, np.ndarray, np.ndarray | None, dict[str, Any]]:
    """(encoder, decoder, embedding, knn or None, meta) from a file written by ``write``.

    ``build(config)`` returns empty models of the stored architecture. Raises ValueError for anything else.
    """
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as files:
            return _read_open(files, path, build)
    except FormatError:
        raise
    except (OSError, EOFError, ValueError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise _refuse(path, f"unreadable: {type(e).__name__}: {e}") from e


def _read_open(files: Any, path: Any, build: Callable[[dict[str, Any]], tuple[nn.Module, nn.Module]]) -> tuple:
    if not hasattr(files, "files"):
        raise _refuse(path, "a bare array, not an archive")
    meta = _read_meta(files, path)
    emb = _check(path, "embedding", files["embedding"], None, np.dtype(np.float32))
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise _refuse(path, f"'embedding' has shape {emb.shape}")
    knn = None
    if meta.get("has_knn"):
        knn = _check(path, "knn", files["knn"], None, np.dtype(np.int32))
        if knn.ndim != 2 or knn.shape[0] != len(emb):
            raise _refuse(path, f"'knn' has shape {knn.shape}")
    enc, dec = build(meta["config"])
    _load_module(files, path, "encoder", enc, {})
    extra = {}
    m = meta.get("shared_memory")
    if m is not None:
        keys = files["encoder/keys"]
        if not isinstance(m, int) or not 0 <= m <= len(keys):
            raise _refuse(path, f"shared memory of {m!r} rows")
        extra[_SKIP] = keys[:m]
    _load_module(files, path, "decoder", dec, extra)
    return enc, dec, np.array(emb), None if knn is None else np.array(knn), meta
