"""The plugin's routes on a large run: 100 steps x 100,000 samples, served by a real ``tensorboard`` process.

What is measured is serving, not projecting. The run is synthetic: 100,000 samples of 10 classes in 32 dimensions
(Gaussian classes whose spread shrinks as "training" goes on, 5 % of the labels flipped), a linear head, logged
step by step through the public API (``dvi.summary.snapshot``). Its results are written straight into the plugin's
cache with ``cache.ResultCache.save``, as the projection service writes them, from a cheap stand-in layout: a PCA
of step 0 to 2-D, mapped affinely onto the layout of **one** DVI model fitted on 3,000 samples of step 0, whose
model file is saved with every step (its decoder gives the map regions). Not a per-step projection: projection
speed is not what this measures. The routes read those files exactly as they read real results. After each step
the writer runs what the plugin's projection job runs after projecting a step (``trajectory.after_projection``: the
step's digest, with the class of the map region under every sample, and the run's dynamics folded and saved); its
time is reported apart (``--no-hook`` leaves it out: then the routes build digests on first use).

With TensorBoard started on the logdir (``--dvi_autoproject off``: nothing is projected behind the measurement),
it times, as the tab calls them: ``runs``; ``projection`` (the compact form the tab uses, alone and against the
step before, the binary form and JSON) of several steps;
``sample`` (one sample across every step); ``cube`` (the tab's size, then another); ``dynamics`` (binary, JSON and
the CSV of the tab's download link); ``suspects`` (JSON and CSV). Each route's first request (which
loads what it needs from disk: for the dynamics routes that is folding in every step, and the class of the map
region under every sample at every projected step) is reported apart from repeated requests (median). Then one new
step is logged and projected while TensorBoard runs, and the first cube and dynamics requests after it are timed
(new steps are folded in incrementally). Last, TensorBoard's resident memory (now and peak).
Targets (issue 14): every route under 300 ms, TensorBoard's resident memory <= 2 GB.

    python benchmarks/bench_server_scale.py [--quick] [--steps 100] [--samples 100000]

Writes ``results/server_scale.{json,md}`` (``--quick``: 10,000 x 10, ``results/server_scale_quick.*``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from helpers import start_tensorboard, stop  # noqa: E402 - the tests' way of starting a real tensorboard

sys.path.insert(0, HERE)
import results_io  # noqa: E402 - sibling module of this script
from bench_server import rss_mb  # noqa: E402 - one reader of /proc/<pid>/status for every benchmark

RUN = "big"
DIM, CLASSES = 32, 10
TARGET_MS, TARGET_RSS_MB = 300.0, 2048.0


class SyntheticRun:
    """The run's samples: class centres, per-sample directions, labels (5 % flipped) and a head fitting the centres."""

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(0, 1, (CLASSES, DIM)).astype(np.float32)
        self.truth = rng.integers(0, CLASSES, n)
        self.noise = rng.normal(0, 1, (n, DIM)).astype(np.float32)
        flip = rng.random(n) < 0.05
        self.labels = np.where(flip, (self.truth + rng.integers(1, CLASSES, n)) % CLASSES, self.truth)
        self.split = np.arange(n) < int(0.85 * n)
        self.head = torch.nn.Linear(DIM, CLASSES)
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(self.centres))
            self.head.bias.copy_(torch.from_numpy(-0.5 * (self.centres ** 2).sum(1)))

    def features(self, step: int, steps: int) -> np.ndarray:
        """The samples at ``step``: their class centre plus noise that shrinks from 2.0 to 0.4 over the run."""
        spread = 2.0 - 1.6 * step / max(1, steps - 1)
        return self.centres[self.truth] + spread * self.noise


class StandIn:
    """The stand-in layout: a PCA of step 0 to 2-D, mapped affinely onto the coordinates of one DVI model fitted
    on 3,000 samples of step 0 (so the model's decoder, used for the map regions, sees coordinates of its own
    scale). Placing 100,000 samples takes milliseconds; the model file saved with every step is that one model."""

    def __init__(self, run: SyntheticRun, steps: int) -> None:
        from dvi_core import DVIProjector

        feats = run.features(0, steps)
        self.mean = feats.mean(0)
        _, _, vt = np.linalg.svd(feats[:20_000] - self.mean, full_matrices=False)
        self.axes = vt[:2].T
        self.model = DVIProjector(n_neighbors=15, seed=0).fit_step(feats[:3000], run.head)
        pca = np.c_[(feats[:3000] - self.mean) @ self.axes, np.ones(3000)]
        self.affine = np.linalg.lstsq(pca, self.model.embedding_, rcond=None)[0]

    def layout(self, feats: np.ndarray) -> np.ndarray:
        """2-D coordinates of ``feats`` [N, 2] (float32)."""
        pca = (feats - self.mean) @ self.axes
        return (pca @ self.affine[:2] + self.affine[2]).astype(np.float32)


class JobHook:
    """What the plugin's projection job runs after each projected step (``trajectory.after_projection``: the step's
    digest with the region class under every sample, the run's dynamics folded and saved), run here by the process
    that writes the results, as the job would have."""

    def __init__(self, landscapes: bool = False) -> None:
        """``landscapes``: also prerender each step's landscape overview, as the plugin's job does after the hook."""
        from tensorboard_plugin_dvi import cache, diagnosis, jobs, trajectory, views

        self.landscapes = landscapes

        self.views = views.Views(jobs.ProjectionService(cache.Settings()), autoproject="off")
        self.checkpoints = trajectory.DynamicsCheckpoints(self.views)
        self.diagnosis = diagnosis.Diagnosis(
            positions=trajectory.DigestPositions(self.views), checkpoints=self.checkpoints,
            quantities=lambda index, step: trajectory.quantities_of(self.views, index, step))
        self.seconds = 0.0

    def __call__(self, run_dir: str, step: int) -> None:
        from tensorboard_plugin_dvi import catalog, storage, trajectory

        started = time.perf_counter()
        store = storage.RunStore(run_dir, os.path.realpath(os.path.dirname(run_dir)))
        records, problems = store.read_run()
        index = catalog.RunIndex(RUN, run_dir, records, problems, store)
        trajectory.after_projection(self.views, self.diagnosis, index, step)
        if self.landscapes:
            self.views.prerender(index, step)
        self.checkpoints.wait(120)
        self.seconds += time.perf_counter() - started


def log_step(run_dir: str, run: SyntheticRun, model: StandIn, step: int, steps: int,
             prev: dict[str, Any] | None, hook: JobHook | None = None) -> dict[str, Any]:
    """Log one step through the public API and write its result into the plugin's cache (then run the job's hook
    when given); the step's record."""
    import tensorboard_plugin_dvi as dvi
    from tensorboard_plugin_dvi import cache, storage

    feats = run.features(step, steps)
    record = dvi.summary.snapshot(run_dir, step, feats, run.labels, run.head, split=run.split)
    results = cache.ResultCache(storage.RunStore(run_dir), cache.Settings())
    results.save(record, prev, np.arange(len(feats)), model.layout(feats), {"train": {}, "test": {}},
                 model.model.save)
    if hook is not None:
        hook(run_dir, step)
    return record


def write_logdir(logdir: str, n: int, steps: int,
                 hook: JobHook | None = None) -> tuple[SyntheticRun, StandIn, dict[str, Any], float]:
    """The run of ``steps`` steps with every result written (and the job's hook run after each, when given); the
    run, the stand-in model, the last step's record and the seconds taken."""
    import tensorboard_plugin_dvi as dvi

    started = time.perf_counter()
    run = SyntheticRun(n)
    model = StandIn(run, steps)
    run_dir, record = os.path.join(logdir, RUN), None
    for step in range(steps):
        record = log_step(run_dir, run, model, step, steps, record, hook)
        if step % 10 == 9:
            print(f"{step + 1} steps written ({time.perf_counter() - started:.0f} s)", flush=True)
    dvi.summary.close(run_dir)
    return run, model, record, time.perf_counter() - started


def get_ms(url: str) -> tuple[float, int, int]:
    """GET ``url``: milliseconds, status and body bytes."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=900) as resp:
            body, status = resp.read(), resp.status
    except urllib.error.HTTPError as err:
        body, status = err.read(), err.code
    return 1000 * (time.perf_counter() - started), status, len(body)


def route(base: str, path: str, repeats: int = 7, warm_paths: list[str] | None = None) -> dict[str, Any]:
    """First request and the median of ``repeats`` more (over ``warm_paths`` in turn when given)."""
    first, status, size = get_ms(base + path)
    if status != 200:
        raise RuntimeError(f"{path}: HTTP {status}")
    paths = warm_paths or [path]
    warm = [get_ms(base + paths[i % len(paths)])[0] for i in range(repeats)]
    return {"path": path, "first_ms": first, "warm_ms": statistics.median(warm), "warm_max_ms": max(warm),
            "bytes": size, "load_average": os.getloadavg()[0]}


def wait_listed(base: str, steps: int, timeout: float = 600) -> float:
    """Poll ``runs`` until the run lists ``steps`` steps; the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with urllib.request.urlopen(base + "/runs", timeout=60) as resp:
            runs = {r["run"]: r for r in json.loads(resp.read())["runs"]}
        if RUN in runs and len(runs[RUN]["steps"]) >= steps:
            return time.perf_counter() - started
        time.sleep(0.5)
    raise RuntimeError(f"TensorBoard never listed {steps} steps")


def measure_routes(base: str, steps: int, n: int) -> dict[str, dict[str, Any]]:
    """Every route, as the tab calls it."""
    q = f"run={RUN}"
    some = [0, steps // 2, steps - 1]
    out = {"runs": route(base, "/runs")}
    out["projection_binary"] = route(base, f"/projection?{q}&step={steps - 1}&format=binary",
                                     warm_paths=[f"/projection?{q}&step={s}&format=binary" for s in some])
    out["projection_json"] = route(base, f"/projection?{q}&step={steps - 1}", repeats=3)
    out["projection_compact"] = route(base, f"/projection?{q}&step={steps - 2}&format=compact",
                                      warm_paths=[f"/projection?{q}&step={s}&format=compact" for s in some])
    out["projection_compact_base"] = route(
        base, f"/projection?{q}&step={steps - 3}&format=compact&base={steps - 4}",
        warm_paths=[f"/projection?{q}&step={s}&format=compact&base={s - 1}" for s in some if s > 0])
    out["sample"] = route(base, f"/sample?{q}&id=17", warm_paths=[f"/sample?{q}&id={i}" for i in (5, n // 2, n - 3)])
    out["cube"] = route(base, f"/cube?{q}&rows=360&cols=600")  # as the tab asks: 360 rows, its width in columns
    out["cube_other_size"] = route(base, f"/cube?{q}&rows=512&cols={min(steps, 1024)}")
    out["dynamics_binary"] = route(base, f"/dynamics?{q}&format=binary")
    out["dynamics_json"] = route(base, f"/dynamics?{q}", repeats=3)
    out["dynamics_csv"] = route(base, f"/dynamics?{q}&format=csv", repeats=3)  # the tab's download link
    out["suspects"] = route(base, f"/suspects?{q}&k=100")
    out["suspects_csv"] = route(base, f"/suspects?{q}&k=100&format=csv", repeats=3)
    return out


def measure_new_step(base: str, logdir: str, run: SyntheticRun, model: StandIn, steps: int,
                     last: dict[str, Any], hook: JobHook | None) -> dict[str, Any]:
    """Log and project one more step while TensorBoard runs; the first cube and dynamics requests after it."""
    log_step(os.path.join(logdir, RUN), run, model, steps, steps + 1, last, hook)
    listed_s = wait_listed(base, steps + 1)
    q = f"run={RUN}"
    cube_ms = get_ms(base + f"/cube?{q}&rows=360&cols=600")[0]
    suspects_ms = get_ms(base + f"/suspects?{q}&k=100")[0]
    dynamics_ms = get_ms(base + f"/dynamics?{q}&format=binary")[0]
    return {"listed_after_s": listed_s, "cube_first_ms": cube_ms, "suspects_first_ms": suspects_ms,
            "dynamics_binary_first_ms": dynamics_ms, "load_average": os.getloadavg()[0]}


def markdown(r: dict[str, Any]) -> str:
    """The results as a table for people."""
    lines = [f"# Serving {r['steps']} steps x {r['n']:,} samples (real tensorboard process)", "",
             f"{r['when']}; {r['cpus']} CPUs shared with other work; load average {r['load_average'][0]:.1f} at "
             f"the start, {r['load_average'][1]:.1f} at the end. The run ({DIM}-d synthetic features, "
             f"{CLASSES} classes) and its results were written in {r['write_s']:.0f} s (the hook below included); "
             "the results are a stand-in "
             "layout (a PCA of step 0 mapped onto the layout of one DVI model fitted on 3,000 samples of step 0, "
             "whose model file every step carries): projection speed is not measured here. "
             + (f"After each step the writer ran the projection job's after-step hook (the step's digest with the "
                f"region class under every sample, the run's dynamics folded and saved): {r['hook_s']:.0f} s in "
                f"all, {r['hook_s'] / max(1, r['steps']):.2f} s a step. 'First request' is the first after "
                "TensorBoard started on the finished logdir." if r.get("hook_s") is not None else
                "No after-step hook ran: first requests build the steps' digests."), "",
             "| route | first request ms | repeated, median ms | repeated, max ms | bytes | under 300 ms |",
             "|---|---:|---:|---:|---:|---|"]
    for m in r["routes"].values():
        ok = "yes" if m["warm_ms"] <= TARGET_MS else "**no**"
        first = "" if m["first_ms"] <= TARGET_MS else " (first: **no**)"
        lines.append(f"| `{m['path']}` | {m['first_ms']:.0f} | {m['warm_ms']:.1f} | {m['warm_max_ms']:.1f} | "
                     f"{m['bytes']:,} | {ok}{first} |")
    s = r["new_step"]
    lines += ["", f"A new step logged while serving: listed after {s['listed_after_s']:.1f} s; the first requests "
                  f"then took: cube {s['cube_first_ms']:.0f} ms, suspects {s['suspects_first_ms']:.0f} ms, dynamics "
                  f"(binary, folding the new step's map positions in) {s['dynamics_binary_first_ms']:.0f} ms "
                  f"(load average {s['load_average']:.1f}).", "",
              f"TensorBoard resident memory: {r['rss_mb']['VmRSS']:.0f} MB now, {r['rss_mb']['VmHWM']:.0f} MB peak "
              f"(target <= {TARGET_RSS_MB:.0f} MB: {_met(r['rss_mb']['VmHWM'] <= TARGET_RSS_MB)})."]
    return "\n".join(lines) + "\n"


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


@contextlib.contextmanager
def held(path: str | None) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (waited for) while the block runs; nothing when ``path`` is None."""
    if path is None:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 samples x 10 steps")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--keep", help="write the logdir here and keep it (default: a temporary folder, removed)")
    parser.add_argument("--no-hook", action="store_true", help="do not run the projection job's after-step hook")
    parser.add_argument("--lock", help="hold an exclusive flock on this file while TensorBoard is timed (not while "
                        "the logdir is written), so timing runs of others do not overlap with the timed part")
    args = parser.parse_args()
    steps, n = (10, 10_000) if args.quick else (args.steps, args.samples)
    torch.set_num_threads(1)
    work = args.keep or tempfile.mkdtemp(prefix="dvi-bench-server-scale-")
    logdir = os.path.join(work, "logs")
    load_start = os.getloadavg()[0]
    hook = None if args.no_hook else JobHook()
    run, model, last, write_s = write_logdir(logdir, n, steps, hook)
    print(f"logdir written in {write_s:.0f} s", flush=True)
    with held(args.lock):
        load_timed = os.getloadavg()[0]
        proc, url = start_tensorboard(logdir, "--dvi_autoproject", "off")
        try:
            base = url + "/data/plugin/dvi"
            wait_listed(base, steps)
            routes = measure_routes(base, steps, n)
            new_step = measure_new_step(base, logdir, run, model, steps, last, hook)
            memory = rss_mb(proc.pid)
        finally:
            stop(proc)
    if args.lock:  # the routes' load, not the writing's
        load_start = load_timed
    report = {"steps": steps, "n": n, "write_s": write_s, "hook_s": hook.seconds if hook else None,
              "routes": routes, "new_step": new_step, "rss_mb": memory,
              "load_average": [load_start, os.getloadavg()[0]], "cpus": os.cpu_count(), "machine": platform.machine(),
              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    results_io.save("server_scale_quick" if args.quick else "server_scale", report, markdown(report))


if __name__ == "__main__":
    main()
