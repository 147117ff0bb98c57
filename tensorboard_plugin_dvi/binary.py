"""The compact binary form of a projection (``format=binary``), for large N. Layout in ``http_api.md``."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

MAGIC = b"DVI1"
DTYPES = {"ids": np.int32, "x": np.float32, "y": np.float32, "labels": np.int32, "pred": np.int32,
          "conf": np.float16, "split": np.uint8}


def dtypes_for(n_classes: int) -> dict[str, Any]:
    """Array dtypes: class indices as uint8 when they fit (17 bytes a point in all), else int32."""
    small = n_classes <= 256
    return {**DTYPES, "labels": np.uint8 if small else np.int32, "pred": np.uint8 if small else np.int32}


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray], dtypes: dict[str, Any] | None = None) -> bytes:
    """``DVI1`` + uint32 header length + JSON header (with array offsets) + 4-byte-aligned arrays."""
    parts, table, offset = [], [], 0
    for name, dtype in (dtypes or DTYPES).items():
        data = np.ascontiguousarray(arrays[name], dtype=dtype).tobytes()
        table.append({"name": name, "dtype": np.dtype(dtype).name, "offset": offset, "length": len(arrays[name])})
        pad = (-len(data)) % 4
        parts.append(data + b"\0" * pad)
        offset += len(data) + pad
    head = json.dumps({**header, "arrays": table}).encode("utf-8")
    head += b" " * ((-len(head)) % 4)  # keep the array section 4-byte aligned
    return MAGIC + struct.pack("<I", len(head)) + head + b"".join(parts)


def decode(blob: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of :func:`encode` (used by tests and Python clients)."""
    if blob[:4] != MAGIC:
        raise ValueError("not a DVI binary projection")
    (length,) = struct.unpack("<I", blob[4:8])
    header = json.loads(blob[8:8 + length])
    base = 8 + length
    arrays = {a["name"]: np.frombuffer(blob, dtype=a["dtype"], count=a["length"], offset=base + a["offset"])
              for a in header["arrays"]}
    return header, arrays
