"""Background projection: one worker thread, a bounded queue of runs, single-flight per run.

A request for step s of a run queues every unprojected step up to s. Each step is warm-started from the nearest
earlier step that is already projected. Order within a run: first the steps a user asked to see (most recent request
first); then, on a long log (more than :data:`LONG_LOG` steps waiting), a coarse stride of about :data:`STRIDE_STEPS`
steps spread over the run, so the whole run can be browsed early; then the rest in order.
A run is in the queue at most once; more requests for it merge into its pending steps. The worker projects a run's
pending steps in order, reports progress, records failures per step and carries on with the next step and the next
run: one bad run never stops the others. Results land in the on-disk cache, so a restart serves them at once.

When no step waits for projection, the same worker renders landscape tile pyramids ahead (the ``pyramid`` callback,
which the route logic installs): for the steps the tab asked to draw, a step whose tiles were asked for (the user is
zooming into it) or that a user was waiting for when it was projected first, then the others in the order the tab
first asked for them. It yields between tiles to any
projection request, to a step that became more urgent, and for :data:`PYRAMID_IDLE_S` after any on-demand landscape
request (and after the service starts), so rendering ahead never delays what a user waits for.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from tensorboard import errors

from tensorboard_plugin_dvi import cache, method
from tensorboard_plugin_dvi.catalog import RunIndex

logger = logging.getLogger(__name__)


LONG_LOG = 50
STRIDE_STEPS = 20
PYRAMID_STEPS = 32
"""At most this many steps wait for their tile pyramid to be rendered ahead; later requests beyond are dropped."""
PYRAMIDS_REMEMBERED = 4096
"""The steps whose pyramid was rendered ahead are remembered (for the runs status) up to this many, oldest forgotten."""
PYRAMID_IDLE_S = 0.5
"""Rendering ahead waits this long after the last on-demand landscape request (the user's requests go first)."""

PyramidRenderer = Callable[[RunIndex, int, Callable[[], bool]], bool]
"""``pyramid(index, step, should_stop)``: render the step's tiles ahead, one at a time, checking ``should_stop()``
between tiles; True when every tile is cached, False when it stopped early (it is called again later)."""


class QueueFullError(errors.PublicError):
    """Too many runs are waiting for projection; try again later (HTTP 429)."""

    http_code = 429


@dataclasses.dataclass
class _RunState:
    """What the service knows about one run."""

    index: RunIndex
    pending: set[int] = dataclasses.field(default_factory=set)
    priority: list[int] = dataclasses.field(default_factory=list)  # asked-for steps, most recent first
    looked_at: set[int] = dataclasses.field(default_factory=set)  # asked for while unprojected: a user waits on them
    running: int | None = None
    progress: float = 0.0
    failed: dict[int, str] = dataclasses.field(default_factory=dict)
    last_error: str | None = None
    seconds_per_step: float | None = None  # moving average of this run's projected steps
    started: float = 0.0  # when the running step started (monotonic)


class ProjectionService:
    """Projects runs' steps in the background and answers which steps are ready."""

    def __init__(self, settings: cache.Settings | cache.ResultIndex, *, device: str = "cpu",
                 max_queued_runs: int = 64, threads: int = 1,
                 after_step: Callable[[RunIndex, int], None] | None = None,
                 ahead_idle_s: float = PYRAMID_IDLE_S) -> None:
        """``after_step(index, step)`` runs on the worker after each projected step (e.g. pre-rendering the step's
        landscape overview so the first visit draws at once); its failures are logged, never fatal.
        ``ahead_idle_s``: rendering tiles ahead waits this long after the service starts and after each on-demand
        landscape request (see :meth:`set_ahead_idle`)."""
        self.index = settings if isinstance(settings, cache.ResultIndex) else cache.ResultIndex(settings)
        self.settings = self.index.settings
        self.after_step = after_step
        self.device = device
        self.threads = threads
        self.max_queued_runs = max_queued_runs
        self._cond = threading.Condition()
        self._queue: collections.deque[str] = collections.deque()
        self._runs: dict[str, _RunState] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.pyramid: PyramidRenderer | None = None  # installed by the route logic (views.Views)
        self._pyramids: collections.OrderedDict[tuple[str, int], RunIndex] = collections.OrderedDict()
        self._pyramid_running: tuple[str, int] | None = None
        # steps whose pyramid rendering ahead finished (every tile cached) since they were last queued, newest last
        self._pyramids_rendered: collections.OrderedDict[tuple[str, int], None] = collections.OrderedDict()
        self.ahead_idle_s = ahead_idle_s
        self._last_demand = time.monotonic()  # when the last on-demand landscape request ended (or the start)
        self._demanding = 0  # on-demand landscape requests being answered now
        self.pyramids_done = 0  # pyramids finished (tests and benchmarks)

    # -- queries ---------------------------------------------------------------------------------------------------

    def results(self, index: RunIndex) -> cache.ResultCache:
        """The result cache of a run for this service's settings."""
        return self.index.results(index.store)

    def _prev_record(self, index: RunIndex, step: int) -> dict[str, Any] | None:
        """The nearest earlier step that is projected (the warm start), or None for a cold start."""
        for earlier in sorted((s for s in index.records if s < step), reverse=True):
            if self.result(index, earlier) is not None:
                return index.records[earlier]
        return None

    def is_ready(self, index: RunIndex, step: int) -> bool:
        """Whether ``step`` has a readable cached result for its current data and its current predecessor."""
        return self.result(index, step) is not None

    def result(self, index: RunIndex, step: int) -> cache.StepResult | None:
        """The cached result of a ready step, else None (read through the result index, not the queue)."""
        return self.index.result(index.store, index.records[step], None, index.earlier_names(step))

    def status(self, index: RunIndex) -> dict[str, Any]:
        """Projection status of a run, as the ``runs`` route reports it."""
        ready = [s for s in index.steps if self.is_ready(index, s)]
        with self._cond:
            state = self._runs.get(index.directory)
            queued = sorted(state.pending) if state else []
            running = state.running if state else None
            progress = state.progress if state else 0.0
            eta = self._eta(state) if state else None
            failed = dict(state.failed) if state else {}
            error = state.last_error if state else None
        failed = {s: e for s, e in failed.items() if s in index.records and s not in ready}
        if running is not None:
            name = "running"
        elif queued:
            name = "queued"
        elif failed:
            name = "error"
        elif index.steps and len(ready) == len(index.steps):
            name = "ready"
        else:
            name = "not projected"
        discarded = self.index.discarded(index.store)
        recomputing = [{"step": s, "why": f"its cached result was unreadable and is recomputed: {discarded[n]}"}
                       for s in index.steps if s not in ready
                       for n in [cache.result_name(index.records[s])] if n in discarded]
        return {"state": name, "ready": ready, "queued": queued, "running": running, "progress": progress,
                "eta_s": eta, "error": error if failed else None,
                "failed": [{"step": s, "error": e} for s, e in sorted(failed.items())],
                "recomputing": recomputing, "tiles_ahead": self._tiles_ahead(index)}

    def _tiles_ahead(self, index: RunIndex) -> dict[str, Any]:
        """This run's steps waiting for their tile pyramid (next first), the one rendering, the depth, and the steps
        whose pyramid is known rendered (a pass ahead found or made every tile since the step was last queued; a step
        neither queued nor listed there may have none: the queue was full, or the plugin restarted)."""
        with self._cond:
            steps = [step for directory, step in self._pyramids if directory == index.directory]
            running = self._pyramid_running
            rendered = sorted(step for directory, step in self._pyramids_rendered if directory == index.directory)
        now = running[1] if running is not None and running[0] == index.directory else None
        return {"depth": self.settings.prerender_depth, "queued": [s for s in steps if s != now], "running": now,
                "rendered": rendered}

    # -- requests --------------------------------------------------------------------------------------------------

    def request(self, index: RunIndex, steps: list[int], *, priority: bool = False) -> list[int]:
        """Queue ``steps`` and every unprojected step before them; return the steps now pending for the run.

        ``priority``: a user is looking at ``steps``; they are projected before the run's other pending steps."""
        if not index.steps or not steps:
            return []
        upto = max(steps)
        needed = {s for s in index.steps if s <= upto and not self.is_ready(index, s)}
        with self._cond:
            state = self._runs.get(index.directory)
            if state is None:
                state = self._runs[index.directory] = _RunState(index)
            state.index = index  # newer index: new steps, re-logged steps
            needed -= {state.running} if state.running is not None else set()
            needed -= set(state.failed)  # failed steps are retried only on explicit request
            if needed and not state.pending and index.directory not in self._queue:
                if len(self._queue) >= self.max_queued_runs:
                    raise QueueFullError(f"{len(self._queue)} runs are already waiting for projection; retry later.")
                self._queue.append(index.directory)
            state.pending |= needed
            if priority:
                wanted = [s for s in steps if s in state.pending]
                state.priority = wanted + [s for s in state.priority if s not in wanted]
                state.looked_at |= set(wanted)
            self._ensure_worker()
            self._cond.notify_all()
            return sorted(state.pending)

    @staticmethod
    def _next_step(state: _RunState) -> int:
        """Which pending step to project next: asked-for first, then a stride over a long log, then in order."""
        while state.priority:
            step = state.priority.pop(0)
            if step in state.pending:
                return step
        if len(state.pending) > LONG_LOG:
            steps = state.index.steps
            stride = max(1, len(steps) // STRIDE_STEPS)
            for step in steps[::stride]:
                if step in state.pending:
                    return step
        return min(state.pending)

    def _eta(self, state: _RunState) -> float | None:
        """Seconds until the run's queued and running steps are projected (None before any step finished).

        Queued steps count at the run's moving average per step; the running step by its own progress when it has
        reported some, else at the average minus what it has already run."""
        per_step = state.seconds_per_step or self._global_seconds_per_step()
        if per_step is None:
            return None
        eta = len(state.pending) * per_step
        if state.running is not None:
            elapsed = time.monotonic() - state.started
            eta += elapsed / state.progress - elapsed if state.progress > 0.05 else max(per_step - elapsed, 0.0)
        return round(eta, 1)

    def _global_seconds_per_step(self) -> float | None:
        known = [s.seconds_per_step for s in self._runs.values() if s.seconds_per_step is not None]
        return sum(known) / len(known) if known else None

    def clear_failures(self, index: RunIndex, steps: list[int]) -> None:
        """Forget earlier failures of ``steps`` so that an explicit request retries them."""
        with self._cond:
            state = self._runs.get(index.directory)
            if state is not None:
                for step in steps:
                    state.failed.pop(step, None)

    def want_pyramid(self, index: RunIndex, step: int, *, zooming: bool = False) -> None:
        """Queue ``step``'s landscape tile pyramid for rendering ahead (no-op with ``prerender_depth`` 0).

        ``zooming``: the user asked for the step's tiles, so it goes to the front; otherwise (the tab drew or prefetched
        the step's overview) it keeps its place, or joins the back the first time."""
        if self.settings.prerender_depth <= 0 or self.pyramid is None:
            return
        key = (index.directory, step)
        with self._cond:
            if zooming:
                self._pyramids[key] = index
                self._pyramids.move_to_end(key, last=False)
            elif key in self._pyramids:
                self._pyramids[key] = index  # the newest index, keeping the place
            elif len(self._pyramids) < PYRAMID_STEPS:
                self._pyramids[key] = index
            else:
                return
            self._pyramids_rendered.pop(key, None)  # queued again: "rendered" once this pass finds every tile
            while len(self._pyramids) > PYRAMID_STEPS:
                self._pyramids.popitem(last=True)
            self._ensure_worker()
            self._cond.notify_all()

    @contextlib.contextmanager
    def on_demand(self) -> Iterator[None]:
        """Around answering a user's landscape request: rendering ahead pauses until ``ahead_idle_s`` after the last
        such request has been answered, so tiles a user waits for never share the CPU with tiles rendered ahead."""
        with self._cond:
            self._demanding += 1
        try:
            yield
        finally:
            with self._cond:
                self._demanding -= 1
                self._last_demand = time.monotonic()
                self._cond.notify_all()

    def _ahead_wait(self) -> float:
        """Seconds rendering ahead must still wait for on-demand requests (with the lock held)."""
        if self._demanding:
            return self.ahead_idle_s or 0.05
        return self._last_demand + self.ahead_idle_s - time.monotonic()

    def set_ahead_idle(self, seconds: float) -> None:
        """Change how long rendering ahead waits after on-demand requests (a long wait holds it, e.g. while a test
        or a batch queues steps; 0 lets it start at once)."""
        with self._cond:
            self.ahead_idle_s = float(seconds)
            self._cond.notify_all()

    def pyramid_status(self) -> dict[str, Any]:
        """Which steps wait for their tile pyramid (``[run directory, step]``, next first) and which one renders."""
        with self._cond:
            return {"queued": [list(k) for k in self._pyramids if k != self._pyramid_running],
                    "running": list(self._pyramid_running) if self._pyramid_running else None,
                    "done": self.pyramids_done}

    def wait_pyramids(self, timeout: float) -> bool:
        """Block until no projection and no tile pyramid is waiting (tests and benchmarks); False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not self._pyramids and self._pyramid_running is None
                and all(s.running is None for s in self._runs.values()), timeout)

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="dvi-projection", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 120.0) -> None:
        """Stop the worker after its current step and wait for it (used by tests and on shutdown)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no run is queued or running (for tests and the CLI); False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and all(s.running is None for s in self._runs.values()), timeout)

    # -- the worker ------------------------------------------------------------------------------------------------

    def _work(self) -> None:
        import torch

        # The visualization models are small: extra intra-op threads mostly spin against TensorBoard's own
        # request threads and the training job (measured: 1 thread 2.4 s vs 119 s for the default on a busy 2-core
        # machine). Process-wide, but TensorBoard itself does not use torch.
        torch.set_num_threads(max(1, self.threads))
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._pyramids or self._stopped)
                if self._stopped:
                    return
                ahead: tuple[tuple[str, int], RunIndex] | None = None
                if not self._queue:  # nothing to project: render tiles ahead, once on-demand requests settle
                    wait = self._ahead_wait()
                    if wait > 0:
                        self._cond.wait(wait)
                        continue
                    ahead = next(iter(self._pyramids.items()))
                    self._pyramid_running = ahead[0]
            if ahead is not None:
                self._render_pyramid(*ahead)
                continue
            with self._cond:
                if not self._queue:
                    continue
                directory = self._queue[0]
                state = self._runs[directory]
                if not state.pending:
                    self._queue.popleft()
                    self._cond.notify_all()
                    continue
                step = self._next_step(state)
                state.pending.discard(step)
                state.running, state.progress, state.started = step, 0.0, time.monotonic()
                index = state.index
            error = self._project(index, step, state)
            if not error and step in state.looked_at:  # a user is looking at it: its tiles go first too
                self.want_pyramid(index, step, zooming=True)
            with self._cond:
                state.looked_at.discard(step)
                state.running = None
                if not error:
                    took = time.monotonic() - state.started
                    state.seconds_per_step = took if state.seconds_per_step is None else \
                        0.5 * state.seconds_per_step + 0.5 * took
                if error:
                    state.failed[step] = state.last_error = error
                if self._queue and self._queue[0] == directory:
                    self._queue.popleft()  # round robin: a run with more pending steps goes to the back
                    if state.pending:
                        self._queue.append(directory)
                self._cond.notify_all()

    def _render_pyramid(self, key: tuple[str, int], index: RunIndex) -> None:
        """Render one queued step's tiles ahead until done or until something more urgent comes (see module doc)."""

        def should_stop() -> bool:
            with self._cond:
                return bool(self._stopped or self._queue or next(iter(self._pyramids), None) != key
                            or self._ahead_wait() > 0)

        done = True
        try:
            assert self.pyramid is not None
            done = bool(self.pyramid(index, key[1], should_stop))
        except Exception:  # noqa: BLE001 - tiles not rendered ahead are rendered when asked
            logger.warning("DVI: rendering tiles ahead for %s step %d", index.name, key[1], exc_info=True)
        with self._cond:
            self._pyramid_running = None
            if done:
                self._pyramids.pop(key, None)
                self.pyramids_done += 1
                self._pyramids_rendered[key] = None
                self._pyramids_rendered.move_to_end(key)
                while len(self._pyramids_rendered) > PYRAMIDS_REMEMBERED:
                    self._pyramids_rendered.popitem(last=False)
            self._cond.notify_all()

    def _project(self, index: RunIndex, step: int, state: _RunState) -> str | None:
        """Project one step; return an error message instead of raising."""
        if step not in index.records or self.is_ready(index, step):
            return None

        def progress(fraction: float) -> None:
            state.progress = float(fraction)

        for attempt in (1, 2):
            try:
                method.project_step(index.store, self.results(index), index.records[step],
                                    self._prev_record(index, step), device=self.device, progress=progress)
                break
            except FileNotFoundError as err:
                # A request thread may discard an unreadable earlier result (deleting its files) while this step
                # reads it as its warm start; once more, from what is cached now, before calling it a failure.
                if attempt == 2:
                    logger.warning("DVI: projecting %s step %d failed: %s", index.name, step, err, exc_info=True)
                    return f"step {step}: {type(err).__name__}: {err}"
                logger.info("DVI: %s step %d lost a file while projecting (%s); projecting it again", index.name,
                            step, err)
            except Exception as err:  # noqa: BLE001 - reported in the run's status, never kills the worker
                logger.warning("DVI: projecting %s step %d failed: %s", index.name, step, err, exc_info=True)
                return f"step {step}: {type(err).__name__}: {err}"
        if self.after_step is not None:
            try:
                self.after_step(index, step)
            except Exception:  # noqa: BLE001 - a missing pre-render only makes the first visit slower
                logger.warning("DVI: after projecting %s step %d", index.name, step, exc_info=True)
        return None
