"""Bounding heavy work per process: identical concurrent requests share one computation, and at most a few
computations run at once.

Without this, sixteen clients asking for the same cold 1024 px landscape each decode a million points; with it, the
first computes, the others wait for its answer, and different heavy requests queue for one of ``workers`` slots
instead of multiplying the memory in use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


class Flights:
    """Single-flight by key, over a small pool of slots for the computations themselves."""

    def __init__(self, workers: int = 2) -> None:
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._inflight: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self.computed = 0  # how many computations ran (tests and benchmarks compare it with the request count)

    def run(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``'s value; concurrent calls with the same ``key`` wait for one computation and share it."""
        with self._lock:
            future = self._inflight.get(key)
            leader = future is None
            if leader:
                future = self._inflight[key] = Future()
        if not leader:
            return future.result()
        try:
            with self._slots:
                self.computed += 1
                value = compute()
        except BaseException as err:
            future.set_exception(err)
            raise
        else:
            future.set_result(value)
            return value
        finally:
            with self._lock:
                self._inflight.pop(key, None)

