"""Checking and normalising what a training script passes to ``dvi.summary.snapshot``.

Every check raises before anything is written, with a message naming the argument, what was expected and what was
received, in scikit-learn's style: "The 'labels' parameter of snapshot must be ... Got ... instead."
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_THUMBNAIL = 64
"""Thumbnails are downscaled so their longest side is at most this many pixels."""


def _fail(name: str, expected: str, got: str, kind: type[Exception] = ValueError) -> None:
    raise kind(f"The '{name}' parameter of snapshot must be {expected}. Got {got} instead.")


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Convert a torch tensor, numpy array or sequence to a numpy array (detached, on CPU)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except Exception:  # noqa: BLE001 - anything unconvertible is the caller's type error
        _fail(name, "a torch tensor or numpy array", type(value).__name__, TypeError)
        raise AssertionError("unreachable") from None


def check_step(step: Any) -> int:
    """A non-negative integer step."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        _fail("step", "a non-negative int", repr(step), TypeError)
    if step < 0:
        _fail("step", "a non-negative int", str(step))
    return int(step)


def check_features(value: Any) -> np.ndarray:
    """Finite float features of shape [N, D] with N >= 2 and D >= 1; kept as float16 or converted to float32."""
    feats = to_numpy(value, "features")
    if feats.ndim != 2:
        _fail("features", "a 2-D array of shape [N, D]", f"an array of shape {feats.shape}")
    if feats.shape[0] < 2 or feats.shape[1] < 1:
        _fail("features", "of shape [N, D] with N >= 2 and D >= 1", f"shape {feats.shape}")
    if not (np.issubdtype(feats.dtype, np.floating) or np.issubdtype(feats.dtype, np.integer)):
        _fail("features", "a float array", f"dtype {feats.dtype}", TypeError)
    feats = feats if feats.dtype == np.float16 else feats.astype(np.float32, copy=False)
    bad = ~np.isfinite(feats)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        _fail("features", "finite (no NaN or inf)", f"{bad.sum()} non-finite values in {rows.size} rows "
              f"(first rows: {rows[:5].tolist()})")
    return np.ascontiguousarray(feats)


def check_labels(value: Any, n: int, n_classes: int) -> np.ndarray:
    """Integer labels [N] in [0, n_classes)."""
    labels = to_numpy(value, "labels")
    if labels.shape != (n,):
        _fail("labels", f"a 1-D array of length N={n} (one label per row of features)", f"shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(np.mod(labels, 1) == 0):
            labels = labels.astype(np.int64)
        else:
            _fail("labels", "integer class indices", f"dtype {labels.dtype}", TypeError)
    labels = labels.astype(np.int64, copy=False)
    out = (labels < 0) | (labels >= n_classes)
    if out.any():
        _fail("labels", f"class indices in [0, {n_classes}) (the head has {n_classes} outputs)",
              f"{int(out.sum())} labels outside that range, e.g. {labels[out][:5].tolist()}")
    return labels


def check_split(value: Any, n: int) -> np.ndarray:
    """Split as uint8 [N], 1 for train and 0 for test; ``None`` means all train."""
    if value is None:
        return np.ones(n, dtype=np.uint8)
    split = to_numpy(value, "split")
    if split.shape != (n,):
        _fail("split", f"a 1-D array of length N={n}", f"shape {split.shape}")
    if split.dtype == np.bool_:
        return split.astype(np.uint8)
    if split.dtype.kind in "US" or split.dtype == object:
        text = np.char.lower(split.astype(str))
        unknown = ~np.isin(text, ["train", "test"])
        if unknown.any():
            _fail("split", "a boolean is-train mask or an array of 'train'/'test'",
                  f"values {np.unique(text[unknown])[:5].tolist()}")
        return (text == "train").astype(np.uint8)
    if np.issubdtype(split.dtype, np.integer) and np.isin(split, [0, 1]).all():
        return split.astype(np.uint8)
    _fail("split", "a boolean is-train mask or an array of 'train'/'test'", f"dtype {split.dtype}", TypeError)
    raise AssertionError("unreachable")


def check_ids(value: Any, n: int) -> np.ndarray:
    """Unique non-negative integer sample ids [N]; default 0..N-1."""
    if value is None:
        return np.arange(n, dtype=np.int64)
    ids = to_numpy(value, "sample_ids")
    if ids.shape != (n,):
        _fail("sample_ids", f"a 1-D array of length N={n}", f"shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        _fail("sample_ids", "integers", f"dtype {ids.dtype}", TypeError)
    ids = ids.astype(np.int64)
    if (ids < 0).any():
        _fail("sample_ids", "non-negative", f"negative ids, e.g. {ids[ids < 0][:5].tolist()}")
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.size != n:
        _fail("sample_ids", "unique", f"duplicates, e.g. {uniq[counts > 1][:5].tolist()}")
    return ids


def check_class_names(value: Any, n_classes: int) -> list[str]:
    """One name per head output; default "0".."C-1"."""
    if value is None:
        return [str(i) for i in range(n_classes)]
    names = [str(v) for v in value]
    if len(names) != n_classes:
        _fail("class_names", f"a list of {n_classes} names (one per output of the head)", f"{len(names)} names")
    return names


def check_flags(value: Any, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Named sets of sample ids (e.g. ``{"flipped": ids}``), each a subset of ``sample_ids``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail("flags", "a dict mapping a name to sample ids", type(value).__name__, TypeError)
    out = {}
    for name, members in value.items():
        if not isinstance(name, str) or not name.isidentifier():
            _fail("flags", "keyed by identifier-like names (letters, digits, _)", repr(name))
        arr = to_numpy(members, f"flags[{name!r}]").astype(np.int64).ravel()
        missing = ~np.isin(arr, ids)
        if missing.any():
            _fail("flags", "sets of ids that appear in sample_ids", f"unknown ids in {name!r}: "
                  f"{arr[missing][:5].tolist()}")
        out[name] = np.unique(arr)
    return out


def to_thumbnails(value: Any, n: int) -> np.ndarray:
    """Images [N,H,W], [N,C,H,W] or [N,H,W,C] -> uint8 thumbnails [N, h, w, c] with c in {1, 3}, side <= 64."""
    images = to_numpy(value, "inputs")
    if images.shape[:1] != (n,) or images.ndim not in (3, 4):
        _fail("inputs", f"images of shape [N,H,W], [N,C,H,W] or [N,H,W,C] with N={n}", f"shape {images.shape}")
    if images.ndim == 3:
        images = images[..., None]
    elif images.shape[1] in (1, 3) and images.shape[3] not in (1, 3):
        images = np.transpose(images, (0, 2, 3, 1))
    if images.shape[3] not in (1, 3):
        _fail("inputs", "images with 1 or 3 channels", f"shape {images.shape}")
    return _downscale(_to_uint8(images))


def _to_uint8(images: np.ndarray) -> np.ndarray:
    if images.dtype == np.uint8:
        return images
    data = images.astype(np.float32)
    if not np.isfinite(data).all():
        _fail("inputs", "finite", "NaN or inf values")
    lo, hi = float(data.min()), float(data.max())
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    elif lo >= 0.0 and hi <= 255.0 and np.issubdtype(images.dtype, np.integer):
        lo, hi = 0.0, 255.0
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip((data - lo) * scale, 0, 255).round().astype(np.uint8)


def _downscale(images: np.ndarray) -> np.ndarray:
    height, width = images.shape[1:3]
    factor = max(height, width) / MAX_THUMBNAIL
    if factor <= 1:
        return np.ascontiguousarray(images)
    from PIL import Image

    size = (max(1, round(width / factor)), max(1, round(height / factor)))
    out = [np.asarray(Image.fromarray(img.squeeze(-1) if img.shape[-1] == 1 else img).resize(
        size, Image.Resampling.BILINEAR)) for img in images]
    stacked = np.stack(out)
    return stacked[..., None] if stacked.ndim == 3 else stacked
