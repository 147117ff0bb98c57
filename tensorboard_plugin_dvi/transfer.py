"""How a step's map travels to the tab: JSON, the binary form, and the compact form for large runs.

The compact form (``projection?...&format=compact[&base=B]``) is the binary container of :mod:`binary` (``DVI1`` +
JSON header + arrays) with ``"encoding": "compact1"`` in the header and smaller arrays:

* coordinates quantised to uint16 over the step's box (``box`` = [x0, y0, x1, y1], the samples' extent):
  ``x = x0 + xq / 65535 * (x1 - x0)`` (error at most 1/131070 of the box's width);
* the confidence in the prediction quantised to uint8 (``conf = confq / 255``);
* without a base, or when the base step's samples, labels, splits or flags differ: every array (``ids`` left out
  when they are 0..N-1, ``"ids_range": true``), ``"base": null``;
* with a base step ``B`` the client already holds, of the same samples: only the rows whose predicted class changed
  (``changed`` row numbers and their ``changed_pred``); labels, splits, ids and flags are the base's.

At 100,000 samples a step is about 0.5 MB against a base (0.8 MB without one), against 1.7 MB in the binary
form and 4 MB of JSON. ``http_api.md`` documents the layout for other clients.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import binary

ENCODING = "compact1"
QMAX = 65535


def answer(header: dict[str, Any], arrays: dict[str, np.ndarray], n_classes: int, fmt: str,
           compact: dict[str, Any] | None) -> tuple[bytes | dict[str, Any], str]:
    """A projection answer in ``fmt`` (``json``, ``binary`` or ``compact``; ``compact`` needs the compact parts)."""
    if fmt == "binary" or (fmt == "compact" and compact is None):
        return binary.encode(header, arrays, binary.dtypes_for(n_classes)), "application/octet-stream"
    if fmt == "compact":
        return encode_compact({**header, **compact["header"]}, compact["arrays"], n_classes), \
            "application/octet-stream"
    body = {**header, **{k: np.round(v.astype(np.float64), 5).tolist() if v.dtype.kind == "f" else v.tolist()
                         for k, v in arrays.items()}}
    return body, "application/json"


def quantise(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``values`` in [lo, hi] as uint16 steps of (hi - lo) / 65535 (rounded to the nearest)."""
    span = hi - lo
    if not span > 0:
        return np.zeros(len(values), np.uint16)
    q = np.rint((np.asarray(values, np.float64) - lo) * (QMAX / span))
    return np.clip(q, 0, QMAX).astype(np.uint16)


def box_of(x: np.ndarray, y: np.ndarray) -> list[float]:
    """The samples' extent [x0, y0, x1, y1] (a unit box around a single point or none)."""
    if not len(x):
        return [0.0, 0.0, 1.0, 1.0]
    x0, x1, y0, y1 = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x0 + 0.5
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y0 + 0.5
    return [x0, y0, x1, y1]


def compact_parts(x: np.ndarray, y: np.ndarray, cols: dict[str, np.ndarray],
                  base: dict[str, np.ndarray] | None, base_step: int | None) -> dict[str, Any]:
    """The compact arrays and header fields of a step: ``cols`` holds ``ids``, ``labels``, ``split``, ``pred``,
    ``conf`` and ``flags`` (bit sets); ``base`` the same columns of the base step (or None)."""
    box = box_of(x, y)
    arrays: dict[str, np.ndarray] = {"xq": quantise(x, box[0], box[2]), "yq": quantise(y, box[1], box[3]),
                                     "confq": np.rint(np.clip(cols["conf"], 0, 1) * 255).astype(np.uint8)}
    same = base is not None and all(np.array_equal(base[k], cols[k]) for k in ("ids", "labels", "split", "flags"))
    header: dict[str, Any] = {"encoding": ENCODING, "box": box, "base": base_step if same else None}
    if same:
        changed = np.flatnonzero(base["pred"] != cols["pred"]).astype(np.int32)
        arrays["changed"] = changed
        arrays["changed_pred"] = cols["pred"][changed]
        return {"header": header, "arrays": arrays}
    ids = cols["ids"]
    header["ids_range"] = bool(np.array_equal(ids, np.arange(len(ids))))
    if not header["ids_range"]:
        arrays["ids"] = ids
    arrays.update(labels=cols["labels"], split=cols["split"], pred=cols["pred"])
    return {"header": header, "arrays": arrays}


def encode_compact(header: dict[str, Any], arrays: dict[str, np.ndarray], n_classes: int) -> bytes:
    """The compact form's bytes: the arrays present, class indices as uint8 when the classes fit, else int32."""
    cls = np.uint8 if n_classes <= 256 else np.int32
    kinds = {"xq": np.uint16, "yq": np.uint16, "confq": np.uint8, "ids": np.int32, "labels": cls, "split": np.uint8,
             "pred": cls, "changed": np.int32, "changed_pred": cls}
    ids = arrays.get("ids")
    if ids is not None and len(ids) and (int(np.min(ids)) < -2 ** 31 or int(np.max(ids)) >= 2 ** 31):
        kinds["ids"] = np.float64  # exact to 2**53, read without BigInt
    return binary.encode(header, arrays, {k: kinds[k] for k in kinds if k in arrays})


def decode_compact(blob: bytes, base: dict[str, np.ndarray] | None = None) -> tuple[dict[str, Any],
                                                                                   dict[str, np.ndarray]]:
    """Inverse of the compact form (tests and Python clients): the header and full columns ``ids``, ``x``, ``y``,
    ``labels``, ``split``, ``pred``, ``conf``; ``base`` is the base step's decoded columns when the header names one.
    Raises ``ValueError`` for a blob that is not a well-formed compact answer."""
    try:
        header, arrays = binary.decode(blob)
        if not isinstance(header, dict) or header.get("encoding") != ENCODING:
            raise ValueError("not a compact projection")
        n = int(header["n"])
        x0, y0, x1, y1 = (float(v) for v in header["box"])
        required = ("xq", "yq", "confq") + (("labels", "split", "pred") if header.get("base") is None else
                                            ("changed", "changed_pred"))
        missing = [k for k in required if k not in arrays]
    except (struct.error, KeyError, TypeError, IndexError, OverflowError) as err:
        raise ValueError(f"not a well-formed compact projection ({type(err).__name__}: {err})") from None
    if missing:
        raise ValueError(f"compact projection lacks {missing}")
    for name, values in arrays.items():
        if name not in ("changed", "changed_pred") and len(values) != n:
            raise ValueError(f"array {name} has {len(values)} values, not {n}")
    out = {"x": (x0 + arrays["xq"].astype(np.float64) * ((x1 - x0) / QMAX)).astype(np.float32),
           "y": (y0 + arrays["yq"].astype(np.float64) * ((y1 - y0) / QMAX)).astype(np.float32),
           "conf": arrays["confq"].astype(np.float32) / 255}
    if header.get("base") is None:
        if not header.get("ids_range") and "ids" not in arrays:
            raise ValueError("compact projection lacks ids")
        out["ids"] = np.arange(n, dtype=np.int64) if header.get("ids_range") else arrays["ids"].astype(np.int64)
        for k in ("labels", "split", "pred"):
            out[k] = np.asarray(arrays[k])
        return header, out
    if base is None or len(base["ids"]) != n:
        raise ValueError(f"the answer is relative to step {header['base']}, whose columns were not given")
    changed = arrays["changed"]
    if len(changed) != len(arrays["changed_pred"]) or (len(changed) and (changed.min() < 0 or changed.max() >= n)):
        raise ValueError("changed rows out of range")
    out.update(ids=base["ids"], labels=base["labels"], split=base["split"])
    pred = np.array(base["pred"])
    pred[changed] = arrays["changed_pred"]
    out["pred"] = pred
    return header, out


def projection_answer(views: Any, index: Any, step: int, result: Any, digest: Any, fmt: str,
                      base: int | None) -> tuple[bytes | dict[str, Any], str]:
    """The ``projection`` route's answer read from the step's digest (see :mod:`trajectory`)."""
    record = index.records[step]
    n_classes = int(record["n_classes"])
    rows = digest.rows
    cols = {"ids": rows["id"], "labels": rows["label"], "split": rows["split"], "pred": rows["pred"],
            "conf": rows["conf"], "flags": rows["flags"]}
    cols = {k: np.array(v) for k, v in cols.items()}
    x, y = np.array(rows["x"]), np.array(rows["y"])
    header = {"run": index.name, "step": step, "n": digest.n, "bounds": [float(b) for b in result.bounds],
              "accuracy": record.get("accuracy", {})}
    compact = None
    if fmt == "compact":
        base_cols = None
        if base is not None and base != step and base in index.records:
            other = views.digest(index, base, full=True)
            if other is not None and other.n == digest.n:
                r = other.rows
                base_cols = {"ids": np.array(r["id"]), "labels": np.array(r["label"]),
                             "split": np.array(r["split"]), "pred": np.array(r["pred"]), "flags": np.array(r["flags"])}
        compact = compact_parts(x, y, cols, base_cols, base if base_cols is not None else None)
        if compact["header"]["base"] is not None:
            return answer(header, {}, n_classes, fmt, compact)
    header["flags"] = {k: v.tolist() for k, v in digest.flag_ids().items()}
    arrays = {"ids": cols["ids"], "x": x, "y": y, "labels": cols["labels"], "pred": cols["pred"],
              "conf": cols["conf"], "split": cols["split"]}
    return answer(header, arrays, n_classes, fmt, compact)
