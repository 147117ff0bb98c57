"""Projecting many runs at once for ``dvi-project``: local worker processes (``--jobs N``) or Ray (``--ray``).

The steps of one run form a chain (each step is warm-started from the previous step's result), while different runs
are independent. So ``--jobs N`` gives each of N local processes whole runs, and ``--ray`` submits every run as a
chain of step tasks: a step's task depends on its predecessor's task, and the chains of different runs spread over
the cluster's nodes. Either way each step is projected by :func:`tensorboard_plugin_dvi.method.project_step` through
a :class:`~tensorboard_plugin_dvi.cache.ResultCache`, exactly as the plugin does: every file is written atomically
into the run's cache folder, so a TensorBoard reading the same logdir serves each step as soon as it lands.

Only plain names travel between processes (a :class:`Job` holds the logdir path, the run name and the settings; an
outcome holds numbers and strings): workers read the run's arrays from the (shared) logdir themselves, and nothing
loaded from a logdir is ever pickled. Ray is imported only when ``--ray`` is used (``pip install
tensorboard-plugin-dvi[ray]``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from tensorboard_plugin_dvi import cache, discovery, method, projector_import, storage

RAY_MISSING = "--ray needs Ray: pip install 'tensorboard-plugin-dvi[ray]' (or pip install 'ray>=2.9')"


@dataclasses.dataclass(frozen=True)
class Job:
    """Everything a worker needs to project one run: plain strings and numbers, never loaded data."""

    logdir: str  # the logdir's real path (the same path on every node of a cluster: a shared filesystem)
    run: str  # the run's name as TensorBoard gives it, relative to the logdir
    variant: str = "dvi"
    seed: int = 0
    n_neighbors: int = 15
    device: str = "cpu"
    threads: int = 1  # torch intra-op threads of the worker

    def settings(self) -> cache.Settings:
        """The cache settings of this job (the device is not one: it does not change the result)."""
        return cache.Settings(variant=self.variant, seed=self.seed, n_neighbors=self.n_neighbors)


@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """What happened to one step: projected, already done (``skipped``) or failed (``error``), where and when."""

    run: str
    step: int
    seconds: float = 0.0
    started: float = 0.0  # wall-clock time.time() on the worker
    ended: float = 0.0
    pid: int = 0
    host: str = ""
    error: str | None = None
    skipped: bool = False

    def line(self) -> str:
        """One line for the terminal."""
        where = f"{self.host}:{self.pid}"
        if self.error:
            return f"{self.run}: step {self.step} failed: {self.error} [{where}]"
        if self.skipped:
            return f"{self.run}: step {self.step} already projected [{where}]"
        return f"{self.run}: step {self.step} projected in {self.seconds:.1f} s [{where}]"


def open_store(location: discovery.RunLocation, root: str) -> storage.RunStore:
    """The store holding a run's steps; an imported (Embedding Projector) run's steps are converted first."""
    if location.kind == discovery.PROJECTOR:
        imported = projector_import.ProjectorRun(
            location.directory,
            lambda path: discovery.locate(root, os.path.join(location.name, path)).directory or _outside(path), root)
        imported.scan(convert=True)
        return imported.store
    return storage.RunStore(location.directory, root)


def _outside(path: str) -> str:
    raise storage.StepError(f"{path} resolves outside the logdir")


class RunSteps:
    """One run opened from its name: its step records, and projecting one step of it through the result cache."""

    def __init__(self, job: Job) -> None:
        location = discovery.locate(job.logdir, job.run)
        if location.skipped or location.kind is None:
            raise storage.StepError(location.skipped or f"run {job.run!r} has no DVI data")
        self.job = job
        self.store = open_store(location, job.logdir)
        self.records, self.problems = self.store.read_run()
        self.steps = sorted(self.records)
        self.results = cache.ResultCache(self.store, job.settings())

    def prev_record(self, step: int) -> dict[str, Any] | None:
        """The record of the step logged before ``step`` (its warm start), None for the first."""
        pos = self.steps.index(step)
        return self.records[self.steps[pos - 1]] if pos else None

    def done(self, step: int) -> bool:
        """Whether ``step`` already has its result, warm-started from its predecessor."""
        return self.results.has(self.records[step], self.prev_record(step))

    def project(self, step: int, progress: Callable[[float], None] | None = None) -> StepOutcome:
        """Project ``step`` unless it is done; a failure is returned in the outcome, never raised."""
        started, base = time.time(), {"run": self.job.run, "step": step, "pid": os.getpid(),
                                      "host": socket.gethostname()}
        if step not in self.records:
            return StepOutcome(**base, started=started, ended=started, error="the step is no longer in the run")
        if self.done(step):
            return StepOutcome(**base, started=started, ended=time.time(), skipped=True)
        error = None
        try:
            method.project_step(self.store, self.results, self.records[step], self.prev_record(step),
                                device=self.job.device, progress=progress)
        except Exception as err:  # noqa: BLE001 - reported in the outcome; the next steps still go on
            error = f"{type(err).__name__}: {err}"
        ended = time.time()
        return StepOutcome(**base, seconds=ended - started, started=started, ended=ended, error=error)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(max(1, threads))


def project_run_job(job: Job, echo: bool = False) -> list[StepOutcome]:
    """Project every step of one run in order, in this process (a ``--jobs`` worker); outcomes in step order.

    A run that cannot be opened gives one outcome with step -1 and the reason. With ``echo`` each outcome is
    printed to stderr as it happens (workers share the terminal).
    """
    _set_threads(job.threads)
    try:
        run = RunSteps(job)
    except (OSError, ValueError, storage.StepError) as err:
        return [StepOutcome(job.run, -1, pid=os.getpid(), host=socket.gethostname(),
                            error=f"the run could not be opened: {type(err).__name__}: {err}")]
    if echo:
        for problem in run.problems:
            print(f"{job.run}: step {problem.step} skipped: {problem.error}", file=sys.stderr, flush=True)
    outcomes = []
    for step in run.steps:
        outcome = run.project(step)
        outcomes.append(outcome)
        if echo and not outcome.skipped:
            print(outcome.line(), file=sys.stderr, flush=True)
    return outcomes


def run_local(jobs: list[Job], workers: int, echo: bool = False) -> list[StepOutcome]:
    """Project ``jobs`` (one run each) in ``workers`` local processes; every outcome, grouped by run.

    Workers are started with ``spawn`` (a fresh interpreter: forking a process whose torch thread pools are running
    can deadlock), and each sets its own torch thread count from its job.
    """
    if not jobs:
        return []
    context = multiprocessing.get_context("spawn")
    outcomes: dict[str, list[StepOutcome]] = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))),
                                                mp_context=context) as pool:
        futures = {pool.submit(project_run_job, job, echo): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            job = futures[future]
            try:
                outcomes[job.run] = future.result()
            except Exception as err:  # noqa: BLE001 - a worker that died (e.g. out of memory) fails its run only
                outcomes[job.run] = [StepOutcome(job.run, -1, error=f"the worker failed: {type(err).__name__}: {err}")]
    return [o for job in jobs for o in outcomes[job.run]]


# -- Ray --------------------------------------------------------------------------------------------------------------


def import_ray() -> Any:
    """The ``ray`` module, with its usage reporting switched off first (nothing leaves the cluster); ImportError
    with the install command when Ray is not installed."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as err:
        raise ImportError(RAY_MISSING) from err
    return ray


def connect(address: str | None) -> Any:
    """Ray, connected to the cluster at ``address`` (``"auto"``: ``RAY_ADDRESS`` or the cluster that ``ray start``
    began on this node); an already connected Ray (e.g. a notebook's, a test's) is used as it is."""
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address or "auto", log_to_driver=False, logging_level="WARNING")
    return ray


def ray_step(job: Job, step: int, after: StepOutcome | None = None) -> StepOutcome:
    """A Ray task: project one step of a run. ``after`` is the predecessor's outcome; passing its task's reference
    makes Ray start this task only once that step's result is on the shared filesystem."""
    del after  # only an ordering dependency
    _set_threads(job.threads)
    try:
        return RunSteps(job).project(step)
    except (OSError, ValueError, storage.StepError) as err:
        return StepOutcome(job.run, step, pid=os.getpid(), host=socket.gethostname(),
                           error=f"the run could not be opened: {type(err).__name__}: {err}")


def pending_steps(job: Job) -> list[int]:
    """Steps of the run still to project (read on the driver: a few small index files)."""
    run = RunSteps(job)
    return [step for step in run.steps if not run.done(step)]


def submit_chains(ray: Any, jobs: list[Job]) -> tuple[list[Any], list[StepOutcome]]:
    """Submit every run's pending steps as a chain of tasks; the task references, and outcomes known at once (runs
    that cannot be opened)."""
    task = ray.remote(ray_step)
    refs, known = [], []
    for job in jobs:
        try:
            steps = pending_steps(job)
        except (OSError, ValueError, storage.StepError) as err:
            known.append(StepOutcome(job.run, -1, error=f"the run could not be opened: {type(err).__name__}: {err}"))
            continue
        options = {"num_cpus": job.threads, "num_gpus": 1 if job.device.startswith("cuda") else 0}
        prev = None
        for step in steps:
            prev = task.options(**options).remote(job, step, prev)
            refs.append(prev)
    return refs, known


def run_ray(jobs: list[Job], address: str | None, echo: bool = False) -> list[StepOutcome]:
    """Project ``jobs`` over a Ray cluster, each run a chain of step tasks; every outcome, as they finish."""
    ray = connect(address)
    refs, outcomes = submit_chains(ray, jobs)
    for outcome in _as_completed(ray, refs):
        outcomes.append(outcome)
        if echo:
            print(outcome.line(), file=sys.stderr, flush=True)
    return outcomes


def _as_completed(ray: Any, refs: list[Any]) -> Iterator[StepOutcome]:
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        yield from ray.get(ready)
