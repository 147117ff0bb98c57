"""Per-step cost of the projection at paper size: 60,000 training samples x 512 features a step (plus 10,000 test).

The case is built from the bundled 10k MNIST digits: a wider network (784 -> 1024 -> 512 -> 10, ReLU) is trained on
six shifted, noisy copies of the digits (60,000 training inputs); the 10,000 test inputs are a seventh copy. After
each epoch its 512-d penultimate features of all 70,000 inputs are logged as one step through the public API
(``dvi.summary.snapshot``), exactly as a user's training loop would. umap-learn first fits the 60,000 training
features of the last step in a child process on the same threads (numba's compile included, as a user pays it),
which gives the ratio. Then all steps are projected in one child
process as ``dvi-project`` does (``method.project_step`` through the result cache, torch on ``--threads`` threads),
timing every step (the first from scratch, the others warm-started: the steady state) and the child's peak resident
memory. Every step is profiled with py-spy (sampling, attached to the child for that step only, so its time is not
inflated) when py-spy is installed; the top entries go into the results. Results are written after every stage, and
``--deadline-min`` stops the projection when the time is up, so a cut-short run still records (and labels) what it
measured, including the profile of the unfinished step.

It measures ``dvi_core`` as it is when it runs: nothing here tunes the method. Targets (issue 14): steady-state step
<= 30 s on 2 CPU threads, <= 0.5 x umap-learn's fit, peak memory <= 4 GB.

    python benchmarks/bench_scale.py [--quick] [--steps 2] [--threads 2] [--device cpu] [--no-umap]
                                     [--deadline-min M] [--keep DIR [--from-step S]] [--no-profile]

``--quick`` (6,000 + 1,000 samples) checks that everything runs in a couple of minutes and writes
``results/scale_quick.*``; the full case writes ``results/scale.{json,md}``. Heavy: tens of minutes on 2 cores.
Besides the profile, each step records the seconds spent in its main parts (layout, exact searches, placement,
evaluation, ...: :data:`PARTS`). ``--keep DIR`` keeps the built case and the projected steps' results in DIR and
reuses them in a later run; ``--keep DIR --from-step 1`` then re-times (and re-profiles) only the steady step, which
is the quick loop for working on its cost (``results/scale_partial.*``).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import results_io  # noqa: E402 - sibling module of this script

MNIST = os.path.join(ROOT, "examples", "data", "mnist10k.npz")
RUN = "scale"
TARGETS = {"steady_s": 30.0, "umap_ratio": 0.5, "peak_gb": 4.0}


# -- the case ----------------------------------------------------------------------------------------------------------


def augmented_digits(copies: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``copies`` x the 10k bundled digits, each copy shifted by up to 2 pixels and with pixel noise: [N, 784]."""
    with np.load(MNIST) as data:
        images = torch.from_numpy(data["images"]).float().div_(255)
        labels = torch.from_numpy(data["labels"].astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for _ in range(copies):
        dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=gen))
        shifted = torch.roll(images, shifts=(dy, dx), dims=(1, 2))
        noisy = (shifted + 0.15 * torch.randn(shifted.shape, generator=gen)).clamp_(0, 1)
        parts.append(noisy.reshape(len(images), -1))
    return torch.cat(parts), labels.repeat(copies)


class WideNet(torch.nn.Module):
    """784 -> 1024 -> 512 (the logged features) -> 10."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(784, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, dim),
                                        torch.nn.ReLU())
        self.head = torch.nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def train_epoch(net: WideNet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, seed: int,
                limit: int | None = None) -> None:
    """One epoch of minibatch Adam over the training inputs (``limit`` batches at most)."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    for i, start in enumerate(range(0, len(x), 256)):
        if limit is not None and i >= limit:
            break
        batch = order[start:start + 256]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[batch]), y[batch]).backward()
        opt.step()


def write_case(run_dir: str, n_train: int, n_test: int, dim: int, steps: int, seed: int = 0) -> dict[str, Any]:
    """Train the network and log ``steps`` epochs of [n_train + n_test, dim] features to ``run_dir``."""
    import tensorboard_plugin_dvi as dvi

    torch.manual_seed(seed)
    copies = -(-(n_train + n_test) // 10_000)
    x, y = augmented_digits(copies, seed)
    x, y = x[:n_train + n_test], y[:n_train + n_test]
    split = np.arange(len(x)) < n_train
    net = WideNet(dim)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    started, accuracy = time.perf_counter(), []
    for step in range(steps):
        train_epoch(net, x[:n_train], y[:n_train], opt, seed + step, limit=None if n_train >= 20_000 else 60)
        with torch.no_grad():
            feats = torch.cat([net.body(x[s:s + 8192]) for s in range(0, len(x), 8192)])
            accuracy.append(float((net.head(feats[n_train:]).argmax(1) == y[n_train:]).float().mean()))
        dvi.summary.snapshot(run_dir, step, feats, y, net.head, split=split)
    dvi.summary.close(run_dir)
    return {"n_train": n_train, "n_test": n_test, "dim": dim, "steps": steps, "test_accuracy": accuracy,
            "build_s": time.perf_counter() - started}


# -- the child processes -----------------------------------------------------------------------------------------------


PARTS = (  # (module, attribute, label): the parts of a step whose inclusive seconds are recorded
    ("dvi_core.projector", "DVIProjector.fit_step", "fit_step"),
    ("dvi_core.projector", "DVIProjector._complex", "fit: kNN + complexes"),
    ("dvi_core.projector", "knn", "fit: kNN + complexes: kNN graph"),
    ("dvi_core.projector", "exact_query", "fit: exact searches (boundary points)"),
    ("dvi_core.projector", "cross_query", "fit: exact searches (boundary points)"),
    ("dvi_core.projector", "DVIProjector._layout", "fit: layout"),
    ("dvi_core.projector", "DVIProjector._init_models", "fit: decoder init (frame)"),
    ("dvi_core.projector", "train_models", "fit: decoder training"),
    ("dvi_core.projector", "settle", "fit: settle"),
    ("dvi_core.projector", "DVIProjector._placement_encoder", "fit: placement encoder"),
    ("tensorboard_plugin_dvi.method", "boundary.boundary_samples", "boundary samples (representation space)"),
    ("dvi_core.projector", "StepProjection.transform", "transform (test split, boundary points)"),
    ("tensorboard_plugin_dvi.method", "metrics.evaluate_step", "evaluate_step"),
    ("dvi_core.metrics", "trustworthiness", "evaluate: trustworthiness"),
    ("dvi_core.landscape", "class_grid", "evaluate: landscape grid"),
    ("tensorboard_plugin_dvi.cache", "ResultCache.save", "cache write"),
)


def time_parts() -> dict[str, float]:
    """Wrap the :data:`PARTS` so each call adds its wall time to the returned dict (inclusive; nested parts are
    counted in their parents too). Instrumentation only: the functions still run as they are."""
    import functools
    import importlib

    totals: dict[str, float] = collections.defaultdict(float)
    for module, attr, label in PARTS:
        owner: Any = importlib.import_module(module)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        fn = getattr(owner, name)

        def timed(*args: Any, _fn: Callable[..., Any] = fn, _label: str = label, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                totals[_label] += time.perf_counter() - started

        setattr(owner, name, functools.wraps(fn)(timed))
    return totals


def child_project(logdir: str, threads: int, device: str, from_step: int | None = None) -> None:
    """Project the steps of the run in this process, printing ``start STEP`` and ``end STEP {json}`` lines.

    With ``from_step``, the earlier steps are not timed: their cached results are used (projected first, untimed,
    when the cache lacks them), so one steady step can be measured and profiled again without the first one."""
    from tensorboard_plugin_dvi import cache, method, storage

    torch.set_num_threads(threads)
    store = storage.RunStore(os.path.join(logdir, RUN))
    records, _ = store.read_run()
    results = cache.ResultCache(store, cache.Settings())
    steps = sorted(records)
    parts = time_parts()
    if from_step is not None:  # what the untimed earlier steps would have done: compile pynndescent's numba code
        from dvi_core.neighbors import knn

        knn(np.random.default_rng(0).normal(size=(2000, 8)).astype(np.float32), 15, method="pynndescent")
    for pos, step in enumerate(steps):
        prev = records[steps[pos - 1]] if pos else None
        if from_step is not None and step < from_step:
            if not results.has(records[step], prev):
                method.project_step(store, results, records[step], prev, device=device)
            continue
        parts.clear()
        print(f"start {step}", flush=True)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = method.project_step(store, results, records[step], prev, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        info = {"step": step, "warm": pos > 0, "seconds": time.perf_counter() - started, "n": len(result.ids),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "load_average": os.getloadavg()[0], "metrics": result.metrics,
                "parts": {k: round(v, 2) for k, v in parts.items()}}
        if device.startswith("cuda"):
            info["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
        print("end " + json.dumps(info), flush=True)


def child_umap(logdir: str, step: int) -> None:
    """Fit umap-learn on the training features of ``step`` (numba compile included); print the seconds as JSON."""
    from tensorboard_plugin_dvi import storage

    store = storage.RunStore(os.path.join(logdir, RUN))
    records, _ = store.read_run()
    data = store.load_step(records[step])
    feats = data.features[data.split.astype(bool)].astype(np.float32)
    started = time.perf_counter()
    import umap

    umap.UMAP(n_neighbors=15, n_components=2).fit(feats)
    print(json.dumps({"seconds": time.perf_counter() - started, "n": len(feats),
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def _child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)})
    return env


# -- measuring ---------------------------------------------------------------------------------------------------------


def start_profiler(pid: int, path: str) -> subprocess.Popen | None:
    """py-spy sampling ``pid`` into a raw (collapsed stacks) file; None when py-spy is not installed."""
    exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--format", "raw", "--rate", "20", "--nonblocking",
                             "-o", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(spy: subprocess.Popen | None) -> None:
    """Make py-spy write its file (SIGINT) and wait for it."""
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(60)
    except subprocess.TimeoutExpired:
        spy.kill()


class Deadline:
    """Stops a child process (and its profiler, which then writes what it has) when the time is up."""

    def __init__(self, proc: subprocess.Popen, seconds: float | None) -> None:
        self.proc, self.spy, self.hit = proc, None, False
        self.timer = threading.Timer(seconds, self.stop) if seconds else None
        if self.timer:
            self.timer.start()

    def stop(self) -> None:
        self.hit = True
        stop_profiler(self.spy)
        self.proc.kill()

    def cancel(self) -> None:
        if self.timer:
            self.timer.cancel()


def project_steps(logdir: str, threads: int, device: str, profile_dir: str | None, deadline_s: float | None,
                  on_step: Callable[[list[dict[str, Any]]], None] = lambda steps: None,
                  from_step: int | None = None) -> dict[str, Any]:
    """Run :func:`child_project`: every finished step's measurements, the child's peak resident memory (MB), and
    whether the deadline cut it short. Each step is profiled into ``profile_dir/profile_<step>.txt``."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child-project", "--logdir", logdir, "--threads",
           str(threads), "--device", device] + ([] if from_step is None else ["--from-step", str(from_step)])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_child_env(threads))
    limit, steps = Deadline(proc, deadline_s), []
    assert proc.stdout is not None
    for line in proc.stdout:
        kind, _, rest = line.strip().partition(" ")
        if kind == "start" and profile_dir:
            limit.spy = start_profiler(proc.pid, os.path.join(profile_dir, f"profile_{int(rest)}.txt"))
        elif kind == "end":
            stop_profiler(limit.spy)
            limit.spy = None
            steps.append(json.loads(rest))
            print(f"step {steps[-1]['step']}: {steps[-1]['seconds']:.1f} s, peak {steps[-1]['peak_rss_mb']:.0f} MB, "
                  f"load {steps[-1]['load_average']:.1f}", flush=True)
            on_step(steps)
    limit.cancel()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode and not limit.hit:
        raise RuntimeError(f"the projecting child failed with exit code {proc.returncode}")
    return {"steps": steps, "peak_rss_mb": usage.ru_maxrss / 1024, "cut_short": limit.hit}


def fit_umap(logdir: str, step: int, threads: int) -> dict[str, Any]:
    """Run :func:`child_umap`; its seconds and memory."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child-umap", "--logdir", logdir, "--step", str(step)]
    load_before = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_child_env(threads))
    out, _ = proc.communicate()
    proc.returncode = 0
    info = json.loads(out.strip().splitlines()[-1])
    info["load_average"] = [load_before, os.getloadavg()[0]]
    return info


def summarize_profile(path: str, top: int = 20) -> dict[str, Any] | None:
    """Top functions of a py-spy raw profile: by samples anywhere on the stack (inclusive) and at its top (self)."""
    if not os.path.exists(path):
        return None
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_frame(f) for f in stack.split(";")]
            total += int(count)
            own[frames[-1]] += int(count)
            for frame in set(frames):
                inclusive[frame] += int(count)
    share = lambda c: round(100 * c / max(total, 1), 1)  # noqa: E731 - tiny local helper
    return {"samples": total, "rate_hz": 20,
            "inclusive": [[f, share(c)] for f, c in inclusive.most_common(top * 3) if _interesting(f)][:top],
            "self": [[f, share(c)] for f, c in own.most_common(top)]}


def _frame(raw: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (package/file.py)`` (lines merged)."""
    name, _, where = raw.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", f"{ROOT}/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def _interesting(frame: str) -> bool:
    """Frames worth listing in the inclusive top (not the script's own driver frames or the interpreter's)."""
    return not any(s in frame for s in ("bench_scale.py", "<module>", "runpy.py", "threading.py"))


# -- the report --------------------------------------------------------------------------------------------------------


def measure(args: argparse.Namespace, save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Build the case, fit umap-learn, project every step; ``save`` the report after each stage (a cut-short run
    still leaves what it measured)."""
    n_train, n_test = (6_000, 1_000) if args.quick else (args.train, args.test)
    started = time.time()
    workdir = args.keep or tempfile.mkdtemp(prefix="dvi-bench-scale-")
    os.makedirs(workdir, exist_ok=True)
    for name in os.listdir(workdir):  # a kept folder's profiles are of an earlier run
        if name.startswith("profile_"):
            os.remove(os.path.join(workdir, name))
    logdir = os.path.join(workdir, "logs")
    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {"threads": args.threads, "device": args.device, "machine": platform.machine(),
                              "from_step": args.from_step,
                              "cpus": os.cpu_count(), "method": _method_version(), "steps": [], "umap": None,
                              "load_average": [os.getloadavg()[0], None], "complete": False,
                              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    case_file = os.path.join(workdir, "case.json")
    if args.keep and os.path.exists(case_file):  # the kept case: built by an earlier run with the same --keep
        with open(case_file) as handle:
            report["case"] = json.load(handle)
        report["case"]["reused"] = True
    else:
        report["case"] = write_case(os.path.join(logdir, RUN), n_train, n_test, args.dim, args.steps)
        with open(case_file, "w") as handle:
            json.dump(report["case"], handle)
    how = f"reused from {workdir}" if report["case"].get("reused") else f"written in {report['case']['build_s']:.0f} s"
    print(f"case {how}: {n_train} + {n_test} x {args.dim}, {args.steps} steps", flush=True)
    if not args.no_umap and args.from_step is None:  # first: it is shorter and certain to finish; the ratio needs it
        report["umap"] = fit_umap(logdir, args.steps - 1, args.threads)
        print(f"umap-learn: {report['umap']['seconds']:.1f} s", flush=True)
        save(report)

    def on_step(steps: list[dict[str, Any]]) -> None:
        report["steps"] = steps
        save(finish(report, workdir))

    deadline = args.deadline_min * 60 - (time.time() - started) if args.deadline_min else None
    projected = project_steps(logdir, args.threads, args.device, workdir if args.profile else None, deadline,
                              on_step, args.from_step)
    report.update(steps=projected["steps"], peak_rss_mb=projected["peak_rss_mb"], cut_short=projected["cut_short"],
                  complete=not projected["cut_short"])
    save(finish(report, workdir))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def finish(report: dict[str, Any], workdir: str) -> dict[str, Any]:
    """Derived numbers and profiles from what has been measured so far."""
    steps = report["steps"]
    report["load_average"][1] = os.getloadavg()[0]
    first = [s["seconds"] for s in steps if not s.get("warm", s is steps[0])]
    warm = [s["seconds"] for s in steps if s.get("warm", s is not steps[0])]
    report["first_step_s"] = first[0] if first else None
    report["steady_step_s"] = float(np.mean(warm)) if warm else None
    report.setdefault("peak_rss_mb", None)
    if steps:
        report["peak_rss_mb"] = max(report["peak_rss_mb"] or 0, max(s["peak_rss_mb"] for s in steps))
    if report.get("umap") and report["steady_step_s"]:
        report["umap_ratio"] = report["steady_step_s"] / report["umap"]["seconds"]
    report["profiles"] = {}
    for name in sorted(os.listdir(workdir)):
        if name.startswith("profile_"):
            summary = summarize_profile(os.path.join(workdir, name))
            if summary:
                report["profiles"][name[len("profile_"):-len(".txt")]] = summary
    return report


def _method_version() -> dict[str, str]:
    """dvi_core's version and the commit it was measured at (``+dirty`` when dvi_core had uncommitted changes)."""
    import dvi_core

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--", "dvi_core") else ""
    return {"dvi_core": dvi_core.__version__, "commit": git("rev-parse", "--short", "HEAD") + dirty}


def markdown(r: dict[str, Any]) -> str:
    """The results as a table for people (of a finished run, or of what a cut-short run measured)."""
    c, steady, peak = r["case"], r.get("steady_step_s"), r.get("peak_rss_mb")
    lines = [f"# Projection at scale: {c['n_train']:,} train + {c['n_test']:,} test x {c['dim']} a step", "",
             f"{r['when']}; dvi_core {r['method']['dvi_core']} at {r['method']['commit']}; {r['cpus']} CPUs, "
             f"torch on {r['threads']} thread(s), device {r['device']}; load average {r['load_average'][0]:.1f} at "
             f"the start, {r['load_average'][1] or 0:.1f} at the end (a shared machine: times are noisy)."]
    if not r.get("complete"):
        lines += ["", f"**Incomplete**: {len(r['steps'])} of {c['steps'] - (r.get('from_step') or 0)} steps finished"
                      + (" before the deadline stopped the run." if r.get("cut_short") else " so far.")]
    lines += ["", "| step | seconds | load average | peak RSS so far (MB) |", "|---:|---:|---:|---:|"]
    lines += [f"| {s['step']} | {s['seconds']:.1f} | {s['load_average']:.1f} | {s['peak_rss_mb']:.0f} |"
              for s in r["steps"]]
    lines += parts_markdown(r["steps"])
    lines += ["", "| measure | value | target | met |", "|---|---:|---:|---|"]
    if r.get("first_step_s") is not None:
        lines.append(f"| first step (s) | {r['first_step_s']:.1f} | | |")
    if steady is not None:
        lines.append(f"| steady-state step (s) | {steady:.1f} | <= {TARGETS['steady_s']:.0f} | "
                     f"{_yes(steady <= TARGETS['steady_s'])} |")
    if peak:
        lines.append(f"| peak resident memory (GB) | {peak / 1024:.2f} | <= {TARGETS['peak_gb']:.0f} | "
                     f"{_yes(peak / 1024 <= TARGETS['peak_gb'])} |")
    if r.get("umap"):
        u = r["umap"]
        lines.append(f"| umap-learn fit of the {u['n']:,} training features (s, compile included) | "
                     f"{u['seconds']:.1f} | | |")
    if r.get("umap_ratio") is not None:
        lines.append(f"| steady step / umap-learn fit | {r['umap_ratio']:.2f} | <= {TARGETS['umap_ratio']} | "
                     f"{_yes(r['umap_ratio'] <= TARGETS['umap_ratio'])} |")
    lines += ["", f"Case built (network trained and steps logged) in {c['build_s']:.0f} s"
                  + (" by an earlier run (kept with --keep)" if c.get("reused") else "") + "; the network's test "
                  f"accuracy per step: {', '.join(f'{a:.3f}' for a in c['test_accuracy'])}."]
    lines += metrics_markdown(r["steps"])
    for step, profile in r.get("profiles", {}).items():
        finished = any(s["step"] == int(step) for s in r["steps"])
        lines += profile_markdown(int(step), profile, finished)
    if not r.get("profiles"):
        lines += ["", "No profile (run with --no-profile, or py-spy is not installed: `pip install py-spy`)."]
    return "\n".join(lines) + "\n"


def metrics_markdown(steps: list[dict[str, Any]]) -> list[str]:
    """The quality metrics each step recorded (what the tab shows), train / test."""
    keys = ("nn", "boundary", "ppr", "trustworthiness", "temporal", "landscape_agreement")
    if not steps or not all("metrics" in s for s in steps):
        return []
    from dvi_core import metrics

    fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731 - tiny local helper
    lines = ["", f"Quality metrics (train / test). Above {metrics.EVAL_MAX_N:,} samples a split, the per-sample ones "
                 f"are means over a fixed seeded subsample of {metrics.EVAL_SAMPLES:,} samples, each judged against "
                 "all samples of its split (`dvi_core.metrics.evaluate_step`, standard error about 0.005); landscape "
                 "agreement uses every dot.", "", "| step | " + " | ".join(keys) + " |", "|---:|" + "---|" * len(keys)]
    for s in steps:
        m = s["metrics"]
        cells = [f"{fmt(m.get('train', {}).get(k))} / {fmt(m.get('test', {}).get(k))}" for k in keys]
        lines.append(f"| {s['step']} | " + " | ".join(cells) + " |")
    return lines


def parts_markdown(steps: list[dict[str, Any]]) -> list[str]:
    """Seconds per part of each step (inclusive: a part's nested parts are in its time too)."""
    labels = [label for label in dict.fromkeys(label for _, _, label in PARTS)  # a label may time several functions
              if any(label in s.get("parts", {}) for s in steps)]
    if not labels:
        return []
    lines = ["", "Seconds per part (wall time, inclusive; the rest of a step is loading, copying and the glue):", "",
             "| part | " + " | ".join(f"step {s['step']}" for s in steps) + " |",
             "|---|" + "---:|" * len(steps)]
    for label in labels:
        cells = [f"{s['parts'][label]:.1f}" if label in s.get("parts", {}) else "" for s in steps]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def profile_markdown(step: int, p: dict[str, Any], finished: bool) -> list[str]:
    """One step's profile: its top entries."""
    state = "" if finished else " (the step did not finish: the profile covers the part that ran)"
    lines = ["", f"## Where step {step}'s time goes{state}", "",
             f"py-spy, {p['samples']} samples at {p['rate_hz']} Hz. Share of samples with the function anywhere on "
             "the stack (inclusive):", "", "| % | function |", "|---:|---|"]
    lines += [f"| {share} | `{frame}` |" for frame, share in p["inclusive"]]
    lines += ["", "Share of samples where the function itself was running (self; time inside torch or numba "
                  "kernels is charged to the Python function that called them):", "", "| % | function |", "|---:|---|"]
    lines += [f"| {share} | `{frame}` |" for frame, share in p["self"]]
    return lines


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6,000 + 1,000 samples: a check that it runs")
    parser.add_argument("--train", type=int, default=60_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2, help="logged epochs (the first is projected from scratch)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-umap", action="store_true", help="skip the umap-learn comparison")
    parser.add_argument("--deadline-min", type=float, default=None,
                        help="stop projecting after this many minutes from the start and record what finished")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="build the case in DIR and keep it (with the projected steps' cached results); a later "
                             "run with the same DIR reuses the case instead of training the network again")
    parser.add_argument("--from-step", type=int, default=None,
                        help="time (and profile) only the steps from this one on; earlier steps come from the cache "
                             "of --keep DIR (projected untimed when missing). Skips umap-learn; writes scale_partial.*")
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="do not run py-spy")
    parser.add_argument("--child-project", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-umap", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--logdir", help=argparse.SUPPRESS)
    parser.add_argument("--step", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_project:
        return child_project(args.logdir, args.threads, args.device, args.from_step)
    if args.child_umap:
        return child_umap(args.logdir, args.step)
    name = "scale_quick" if args.quick else "scale_partial" if args.from_step is not None else "scale"
    measure(args, lambda report: results_io.save(name, report, markdown(report)))


if __name__ == "__main__":
    main()
