"""Parsing and validating request parameters; every failure names the parameter and why (HTTP 400)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from tensorboard import errors
from werkzeug import exceptions

MAX_SIZE = 1024
MIN_SIZE = 16
MAX_POINTS = 100_000
MAX_BODY_BYTES = 8 << 20
MAX_COORD = 1e30  # finite in float32 with room for the arithmetic of decoding
MAX_VIEW_SIDE = 2048
MAX_VIEW_PIXELS = 2048 * 1024
"""A viewport landscape (``box``) is at most this many pixels a side and in all (some 32 tiles of 256 px)."""
VIEW_REACH = 1.0
"""A viewport's data box lies within the step's bounds widened by this many times their size on every side."""
_INT = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only: str.isdigit also accepts '²' and '①'
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")  # ASCII; no nan, inf, 0x, '_'


def _bad(name: str, why: str) -> errors.InvalidArgumentError:
    return errors.InvalidArgumentError(f"Parameter '{name}' {why}.")


def required(args: Any, name: str) -> str:
    """A query parameter that must be present and non-empty."""
    value = args.get(name)
    if value is None or value == "":
        raise _bad(name, "is required")
    if "\x00" in value:
        raise _bad(name, "must not contain NUL bytes")
    return value


def integer(args: Any, name: str, *, default: int | None = None, lo: int | None = None,
            hi: int | None = None) -> int:
    """An integer query parameter within [lo, hi]."""
    raw = args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise _bad(name, "is required")
        return default
    text = raw.strip()
    if not _INT.fullmatch(text):
        raise _bad(name, f"must be an integer of at most 18 ASCII digits, got {raw[:40]!r}")
    value = int(text)
    if lo is not None and value < lo:
        raise _bad(name, f"must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise _bad(name, f"must be <= {hi}, got {value}")
    return value


def choice(args: Any, name: str, options: tuple[str, ...], *, default: str) -> str:
    """A query parameter that must be one of ``options``."""
    value = args.get(name) or default
    if value not in options:
        raise _bad(name, f"must be one of {', '.join(repr(o) for o in options)}, got {value[:20]!r}")
    return value


def tile(args: Any, max_zoom: int) -> tuple[int, int, int]:
    """Landscape tile ``(z, tx, ty)`` from ``z``, ``tx``, ``ty`` (all absent: the whole map, ``(0, 0, 0)``)."""
    if all(args.get(k) in (None, "") for k in ("z", "tx", "ty")):
        return (0, 0, 0)
    z = integer(args, "z", lo=0, hi=max_zoom)
    side = 1 << z
    return (z, integer(args, "tx", lo=0, hi=side - 1), integer(args, "ty", lo=0, hi=side - 1))


def view(args: Any, bounds: tuple[float, float, float, float]) -> tuple[tuple[float, float, float, float], int, int]:
    """A viewport landscape's data box and image size: ``box=x0,y0,x1,y1`` (finite numbers, x0 < x1, y0 < y1,
    within the step's ``bounds`` widened by :data:`VIEW_REACH` times their size on each side), ``width`` and
    ``height`` in pixels (each 1..:data:`MAX_VIEW_SIDE`, together at most :data:`MAX_VIEW_PIXELS`); not combined
    with ``size`` or a tile's ``z``, ``tx``, ``ty``."""
    for other in ("size", "z", "tx", "ty"):
        if args.get(other) not in (None, ""):
            raise _bad(other, "cannot be combined with 'box' (a viewport is sized by 'width' and 'height')")
    raw = required(args, "box")
    parts = raw.split(",")
    if len(parts) != 4:
        raise _bad("box", f"must be four comma-separated numbers x0,y0,x1,y1, got {raw[:60]!r}")
    box = tuple(_finite_float(part, raw) for part in parts)
    if not (box[0] < box[2] and box[1] < box[3]):
        raise _bad("box", f"must have x0 < x1 and y0 < y1, got {raw[:60]!r}")
    bx0, by0, bx1, by1 = bounds
    rx, ry = VIEW_REACH * (bx1 - bx0), VIEW_REACH * (by1 - by0)
    if box[0] < bx0 - rx or box[2] > bx1 + rx or box[1] < by0 - ry or box[3] > by1 + ry:
        raise _bad("box", f"must lie within the step's map bounds {[round(b, 4) for b in bounds]} widened by "
                          f"{VIEW_REACH:g} times their size on each side, got {raw[:60]!r}")
    width = integer(args, "width", lo=1, hi=MAX_VIEW_SIDE)
    height = integer(args, "height", lo=1, hi=MAX_VIEW_SIDE)
    if width * height > MAX_VIEW_PIXELS:
        raise _bad("width", f"times 'height' must be at most {MAX_VIEW_PIXELS} pixels, got {width} x {height}")
    return box, width, height  # type: ignore[return-value]


def _finite_float(text: str, raw: str) -> float:
    """One number of ``box``: a plain decimal (ASCII, at most 40 characters), finite and within float32 range."""
    text = text.strip()
    if len(text) > 40 or not _FLOAT.fullmatch(text):
        raise _bad("box", f"must be four comma-separated decimal numbers, got {raw[:60]!r}")
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_COORD:
        raise _bad("box", f"must hold finite numbers with |v| <= {MAX_COORD:g}, got {raw[:60]!r}")
    return value


def json_body(request: Any, name: str = "body") -> Any:
    """The request's JSON body (at most 8 MiB)."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise _bad(name, f"is larger than {MAX_BODY_BYTES} bytes")
    try:
        raw = request.stream.read(MAX_BODY_BYTES + 1)
    except (exceptions.HTTPException, OSError, ValueError) as err:  # the client went away mid-body
        raise _bad(name, f"could not be read completely ({type(err).__name__})") from None
    if len(raw) > MAX_BODY_BYTES:
        raise _bad(name, f"is larger than {MAX_BODY_BYTES} bytes")
    if length is not None and len(raw) < length:
        raise _bad(name, f"ended after {len(raw)} of the {length} bytes announced (client disconnected?)")
    try:
        return json.loads(raw)
    except RecursionError:
        raise _bad(name, "is nested too deeply to be a list of points or an object of settings") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise _bad(name, f"must be valid JSON ({str(err)[:80]})") from None


def points(value: Any) -> list[list[float]]:
    """A JSON list of at most 100,000 finite [x, y] pairs (also accepted as {"points": [...]})."""
    if isinstance(value, dict) and "points" in value:
        value = value["points"]
    if not isinstance(value, list):
        raise _bad("body", "must be a JSON list of [x, y] pairs")
    if len(value) > MAX_POINTS:
        raise _bad("body", f"has {len(value)} points; at most {MAX_POINTS} are allowed per request")
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2 or not all(_coordinate(v) for v in pair):
            raise _bad("body", f"item {i} must be a pair of finite numbers [x, y] with |x|, |y| <= {MAX_COORD:g}, "
                               f"got {_short(pair)}")
    return value


def _coordinate(value: Any) -> bool:
    """A JSON number usable as a float32 coordinate (huge integers and float32 overflow are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isfinite(number) and abs(number) <= MAX_COORD


def _short(value: Any) -> str:
    """At most 40 characters of a value for an error message (never the repr of a 400-digit integer)."""
    try:
        return repr(value)[:40]
    except (ValueError, RecursionError):
        return type(value).__name__
