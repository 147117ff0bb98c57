"""Columns of numbers as JSON or CSV text, formatted a whole column at a time with numpy.

The training-dynamics table of a run has ~26 columns of 100,000 samples; ``json.dumps`` or ``csv.writer`` of its 2.6M
values cost a first request 0.3-0.7 s. Here a column's text is a list of blocks, each a uint8 [w, N] matrix (char j
of row i's piece, 0 where the row writes nothing there: no text holds a NUL). Blocks stack into one [W, N] matrix,
whose transpose read in order without its zeros is the text row after row. The bytes are exactly what ``json.dumps``
and ``csv.writer`` write for the same values (floats rounded to 5 decimals, NaN as ``null`` or an empty field); a
column the fast path cannot write exactly (an infinite or huge float) makes :func:`column_text` return None, and the
caller formats that table with the standard library.
"""

from __future__ import annotations

import csv
import functools
import io
import json

import numpy as np

_FRACTION = 5
"""Decimals the floats are rounded to (``np.round(values, 5)``, as the callers round them)."""
_FAST_LIMIT = 1e10
"""Floats below this (rounded) magnitude are written by the fast path: their shortest repr is their 5-decimal form."""


@functools.cache
def _digit_table(width: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` zero-padded decimal digits of every integer below ``10**width`` (uint8 [width, 10**width]), and
    how many digits each needs once trailing zeros are dropped (at least one)."""
    values = np.arange(10 ** width)
    chars = np.stack([(values // 10 ** (width - 1 - j)) % 10 + 48 for j in range(width)]).astype(np.uint8)
    kept = np.full(len(values), width, np.int64)
    for k in range(1, width):
        kept -= values % 10 ** k == 0
    return chars, kept


def rows(blocks: list[np.ndarray]) -> bytes:
    """Row by row, each block's piece in turn."""
    flat = np.concatenate(blocks).T.ravel()
    return flat[flat != 0].tobytes()


def const(n: int, text: bytes, where: np.ndarray | None = None) -> np.ndarray:
    """``text`` in every row (or where ``where`` is true)."""
    block = np.empty((len(text), n), np.uint8)
    block[:] = np.frombuffer(text, np.uint8)[:, None]
    if where is not None:
        block *= where
    return block


def lookup(codes: np.ndarray, texts: list[bytes]) -> list[np.ndarray]:
    """Row i's text is ``texts[codes[i]]``."""
    table = np.zeros((max([1, *(len(t) for t in texts)]), len(texts)), np.uint8)
    for k, t in enumerate(texts):
        table[:len(t), k] = np.frombuffer(t, np.uint8)
    return [np.take(table, np.asarray(codes, np.int64), axis=1)]


def _digits(values: np.ndarray, where: np.ndarray | None = None) -> list[np.ndarray]:
    """Non-negative integers in decimal without leading zeros (0 is one digit), in 4-digit groups from a table."""
    table, _ = _digit_table(4)
    width = len(str(int(values.max()))) if len(values) else 1
    if width <= 4:
        chars = np.take(table, values, axis=1)[-width:]
    else:
        chars = np.concatenate([np.take(table, (values // 10 ** (4 * g)) % 10_000, axis=1)
                                for g in range((width + 3) // 4 - 1, -1, -1)])[-width:]
    least = 10 ** np.arange(width - 1, -1, -1)  # digit j is written when the value has that many digits
    least[-1] = 0
    keep = values >= least[:, None]
    chars *= keep if where is None else keep & where
    return [chars]


def _integers(values: np.ndarray, where: np.ndarray | None = None) -> list[np.ndarray]:
    """Integers as Python's ``str`` writes them."""
    v = np.asarray(values, np.int64)
    minus = v < 0
    sign = [const(len(v), b"-", minus if where is None else minus & where)] if minus.any() else []
    return [*sign, *_digits(np.abs(v), where)]


def _floats(values: np.ndarray, null: bytes) -> list[np.ndarray] | None:
    """Floats rounded to 5 decimals as ``repr`` writes them, NaN as ``null``; None when a value is infinite or too
    large (the caller formats the column in Python then)."""
    rounded = np.round(np.asarray(values, np.float64), _FRACTION)
    nan = np.isnan(rounded)
    mag = np.abs(np.where(nan, 0.0, rounded))
    if not np.isfinite(mag).all() or (len(mag) and mag.max() >= _FAST_LIMIT):
        return None
    n = len(mag)
    scaled = np.rint(mag * 10 ** _FRACTION).astype(np.int64)
    whole, frac = np.divmod(scaled, 10 ** _FRACTION)
    tiny = (scaled > 0) & (scaled < 10)  # below 1e-4 repr writes 1e-05 ... 9e-05
    plain = ~nan & ~tiny
    table, kept = _digit_table(_FRACTION)
    frac_chars = np.take(table, frac, axis=1)
    frac_chars *= (np.arange(_FRACTION)[:, None] < kept[frac]) & plain
    minus = np.signbit(rounded) & ~nan
    blocks = [const(n, b"-", minus)] if minus.any() else []
    blocks += [*_digits(whole, plain), const(n, b".", plain), frac_chars]
    if tiny.any():
        blocks += [((scaled % 10 + 48) * tiny).astype(np.uint8)[None, :], const(n, b"e-05", tiny)]
    if nan.any() and null:
        blocks.append(const(n, null, nan))
    return blocks


def column_text(values: np.ndarray, as_json: bool) -> list[np.ndarray] | None:
    """A column's values as JSON (``as_json``) or as ``csv.writer`` writes them; None when a float is too large or
    infinite for the fast path."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return lookup(values.astype(np.int64), [b"false", b"true"] if as_json else [b"False", b"True"])
    if values.dtype.kind in "iu":
        return _integers(values)
    if values.dtype.kind == "f":
        return _floats(values, b"null" if as_json else b"")
    names = [str(v) for v in values.tolist()]  # e.g. the category names: a few distinct strings
    found = {name: k for k, name in enumerate(dict.fromkeys(names))}
    codes = np.fromiter(map(found.__getitem__, names), np.int64, len(names))
    encode = (lambda s: json.dumps(s).encode("utf-8")) if as_json else csv_field
    return lookup(codes, [encode(name) for name in found])


def csv_field(value: str) -> bytes:
    """One field as ``csv.writer`` writes it among others (quoted when it holds a comma, quote or line break)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(["", value])
    return out.getvalue()[1:-1].encode("utf-8")
