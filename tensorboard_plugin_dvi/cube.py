"""DeepTracker's correctness cube: samples x steps, grouped in class bands, summarised to a pixel budget.

Rows are samples, columns are logged steps, a cell says whether the sample was predicted correctly at that step.
Samples are laid out in two blocks, training then test; inside a block in one band per (given) class; inside a band
by the step from which the sample stays learned (early learners first, never-settled samples last, ties by id).

A run of 60,000 samples x 200 steps does not fit a screen, so the cube is summarised to at most ``rows`` x ``cols``
pixels (more rows only when there are more bands than ``rows``): each band gets a share of the rows in proportion
to its size (at least one), and a pixel row covers a run of consecutive samples of its band; when there are more
steps than ``cols``, a pixel column covers a run of consecutive steps. A cell's value is the fraction of correct
predictions among the (sample, step) pairs it covers (pairs where the sample was not logged are left out), stored as
``round(200 * fraction)``, or :data:`EMPTY` when it covers none. The answer also maps pixel rows back to sample ids
and pixel columns back to steps, so a click can select the cell's samples and move to its step, and it carries the
per-class accuracy curves of every step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import binary

SCALE = 200
"""A cell of value ``v <= SCALE`` means ``v / SCALE`` of its predictions were correct."""

EMPTY = 255
"""Cell value when it covers no logged (sample, step) pair."""


@dataclasses.dataclass
class Cube:
    """The summarised cube and what it takes to map pixels back to samples and steps."""

    cells: np.ndarray  # uint8 [rows, cols]
    row_start: np.ndarray  # int64 [rows + 1]: pixel row r covers order[row_start[r]:row_start[r + 1]]
    order: np.ndarray  # int64 sample ids in row order
    col_start: np.ndarray  # int64 [cols + 1]: pixel column k covers steps[col_start[k]:col_start[k + 1]]
    steps: list[int]
    bands: list[dict[str, Any]]  # per band: split, class, first pixel row, pixel rows, samples
    curves: np.ndarray  # float [T, 2, C] per-class accuracy (split 0 test, 1 train)


def band_order(labels: np.ndarray, split: np.ndarray, learned_from: np.ndarray, ids: np.ndarray,
               n_classes: int, splits: tuple[int, ...] = (1, 0)) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Sample rows in cube order and the bands as ``(split, class, samples)``, empty bands left out."""
    never = np.iinfo(np.int64).max
    settled = np.where(learned_from < 0, never, learned_from)
    parts, bands = [], []
    for s in splits:
        in_split = np.flatnonzero(split == s)
        order = in_split[np.lexsort((ids[in_split], settled[in_split], labels[in_split]))]
        counts = np.bincount(labels[order], minlength=n_classes)
        parts.append(order)
        bands += [(s, c, int(counts[c])) for c in range(len(counts)) if counts[c]]
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), bands


def allot_rows(sizes: list[int], budget: int) -> list[int]:
    """Pixel rows per band: one per sample when everything fits, else in proportion to size (at least one).

    The total stays within ``budget`` unless there are more bands than ``budget`` (then every band gets one row).
    """
    total = sum(sizes)
    if total <= budget:
        return list(sizes)
    share = np.maximum(1, np.floor(np.asarray(sizes, np.float64) * budget / total)).astype(np.int64)
    share = np.minimum(share, sizes)
    for _ in range(int(share.sum()) - budget):  # the minimum of one row can overshoot by at most one per band
        largest = int(share.argmax())
        if share[largest] <= 1:
            break
        share[largest] -= 1
    return share.tolist()


def _starts(n: int, parts: int) -> np.ndarray:
    """Boundaries of ``parts`` near-equal runs over ``n`` items: [parts + 1] from 0 to n."""
    return np.round(np.linspace(0, n, parts + 1)).astype(np.int64)


def build(correct: np.ndarray, table: dict[str, np.ndarray], steps: list[int], curves: np.ndarray,
          n_classes: int, rows: int, cols: int, split: str | None = None) -> Cube:
    """Summarise ``correct`` ([T, samples] int8, -1 where absent) with the rows of a dynamics ``table``."""
    splits = {"train": (1,), "test": (0,), None: (1, 0)}[split]
    order, bands = band_order(table["label"], table["split"], table["learned_from"], table["id"], n_classes, splits)
    per_band = allot_rows([b[2] for b in bands], rows)
    row_start, band_json, offset = [0], [], 0
    for (s, c, size), pixel_rows in zip(bands, per_band, strict=True):
        band_json.append({"split": "train" if s == 1 else "test", "class": c, "row": len(row_start) - 1,
                          "rows": pixel_rows, "samples": size})
        row_start += (offset + _starts(size, pixel_rows)[1:]).tolist()
        offset += size
    row_start = np.asarray(row_start, np.int64)
    col_start = _starts(len(steps), min(cols, len(steps))) if steps else np.zeros(1, np.int64)
    cells = _aggregate(correct, order, row_start, col_start)
    return Cube(cells, row_start, table["id"][order], col_start, list(steps), band_json, curves)


def _aggregate(correct: np.ndarray, order: np.ndarray, row_start: np.ndarray, col_start: np.ndarray) -> np.ndarray:
    """Fraction correct per (pixel row, pixel column) as uint8 (see :data:`SCALE`, :data:`EMPTY`)."""
    n_rows, n_cols = len(row_start) - 1, len(col_start) - 1
    if n_rows == 0 or n_cols == 0:
        return np.zeros((n_rows, n_cols), np.uint8)
    gathered = np.take(correct, order, axis=1)
    starts = row_start[:-1]
    if correct.size and correct.min() >= 0:  # every sample logged at every step: one pass over the 0/1 values
        hits = np.add.reduceat(gathered, starts, axis=1, dtype=np.int32)
        seen = np.broadcast_to(np.diff(row_start).astype(np.int32), hits.shape)
    else:
        hits = np.add.reduceat((gathered == 1).view(np.uint8), starts, axis=1, dtype=np.int32)
        seen = np.add.reduceat((gathered >= 0).view(np.uint8), starts, axis=1, dtype=np.int32)
    hits = np.add.reduceat(hits, col_start[:-1], axis=0)
    seen = np.add.reduceat(seen, col_start[:-1], axis=0)
    frac = np.divide(hits, seen, out=np.zeros(hits.shape), where=seen > 0)
    cells = np.where(seen > 0, np.round(frac * SCALE), EMPTY).astype(np.uint8)
    return np.ascontiguousarray(cells.T)


def encode(cube: Cube, header: dict[str, Any]) -> bytes:
    """The cube in the plugin's compact binary form (``DVI1`` + JSON header + arrays; see ``docs/dynamics.md``)."""
    t, _, c = cube.curves.shape if cube.curves.size else (len(cube.steps), 2, 0)
    ids_dtype = np.int32 if (cube.order.size == 0 or (np.abs(cube.order).max() < 2 ** 31)) else np.float64
    head = {**header, "rows": int(cube.cells.shape[0]), "cols": int(cube.cells.shape[1]), "scale": SCALE,
            "empty": EMPTY, "steps": cube.steps, "bands": cube.bands, "curve_shape": [t, 2, c]}
    arrays = {"cells": cube.cells.reshape(-1), "row_start": cube.row_start, "ids": cube.order,
              "col_start": cube.col_start, "curves": cube.curves.reshape(-1)}
    dtypes = {"cells": np.uint8, "row_start": np.int32, "ids": ids_dtype, "col_start": np.int32,
              "curves": np.float32}
    return binary.encode(head, arrays, dtypes)


def decode(blob: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of :func:`encode`, with ``cells`` [rows, cols] and ``curves`` [T, 2, C] reshaped (tests, notebooks)."""
    header, arrays = binary.decode(blob)
    arrays = dict(arrays)
    arrays["cells"] = arrays["cells"].reshape(header["rows"], header["cols"])
    arrays["curves"] = arrays["curves"].reshape(header["curve_shape"])
    return header, arrays
