"""Timing and peak-memory helpers for the projection benchmark."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

_PAGE = 4096


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def measured(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``fn``; return (result, wall seconds, peak extra resident memory in MiB during the call).

    Resident memory (sampled every 10 ms) rather than tracemalloc, because torch's CPU allocations
    are invisible to tracemalloc.
    """
    base = _rss()
    peak = [base]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], _rss())

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        wall = time.perf_counter() - t0
        stop.set()
        t.join()
    peak[0] = max(peak[0], _rss())
    return out, wall, (peak[0] - base) / 2**20
