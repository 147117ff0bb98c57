"""Parsing and validating request parameters; every failure names the parameter and why (HTTP 400)."""

from __future__ import annotations

import json
import math
from typing import Any

from tensorboard import errors

MAX_SIZE = 1024
MIN_SIZE = 16
MAX_POINTS = 100_000
MAX_BODY_BYTES = 8 << 20


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
    if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())) or len(text) > 18:
        raise _bad(name, f"must be an integer, got {raw[:40]!r}")
    value = int(text)
    if lo is not None and value < lo:
        raise _bad(name, f"must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise _bad(name, f"must be <= {hi}, got {value}")
    return value


def json_body(request: Any, name: str = "body") -> Any:
    """The request's JSON body (at most 8 MiB)."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise _bad(name, f"is larger than {MAX_BODY_BYTES} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        raise _bad(name, f"is larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise _bad(name, f"must be valid JSON ({err})") from None


def points(value: Any) -> list[list[float]]:
    """A JSON list of at most 100,000 finite [x, y] pairs (also accepted as {"points": [...]})."""
    if isinstance(value, dict) and "points" in value:
        value = value["points"]
    if not isinstance(value, list):
        raise _bad("body", "must be a JSON list of [x, y] pairs")
    if len(value) > MAX_POINTS:
        raise _bad("body", f"has {len(value)} points; at most {MAX_POINTS} are allowed per request")
    for i, pair in enumerate(value):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in pair)):
            raise _bad("body", f"item {i} must be a pair of finite numbers [x, y], got {str(pair)[:40]}")
    return value
