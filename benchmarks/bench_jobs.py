"""Many runs: ``dvi-project`` one run after another vs ``dvi-project --jobs 2``, on the same logdir contents.

Writes 8 runs x 6 steps (each run 600 of the bundled digits' features from a quickly trained MLP, 64-d, drifting
from step to step, with the MLP's head), copies the logdir, and projects one copy with the plain command (one run
after another, torch on ``--seq-threads`` threads, default 1) and the other with ``--jobs 2`` (two worker processes,
one torch thread each: the command's default on a 2-core machine). One thread is the fair baseline: on a busy
machine torch's default of every core oversubscribes it (threads spin against each other) and the one-after-another
run gets far slower. Both are the real ``dvi-project`` command in a subprocess; the wall time of each and the load
average beside it are recorded, and every step's result is checked to exist right after each command.

    python benchmarks/bench_jobs.py [--quick] [--runs 8] [--steps 6] [--jobs 2] [--seq-threads 1] [--note TEXT]

Writes ``results/jobs.{json,md}`` (``--quick``: 3 runs x 2 steps of 300 samples, ``results/jobs_quick.*``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import results_io  # noqa: E402 - sibling module of this script
from bench_server import mnist_features  # noqa: E402 - sibling module of this script


def write_runs(logdir: str, runs: int, steps: int, n: int) -> None:
    """``runs`` runs of ``steps`` steps, each a different slice of the digits whose features drift step by step."""
    import tensorboard_plugin_dvi as dvi

    feats, labels, head = mnist_features(64, epochs=40, train_rows=None)
    rng = np.random.default_rng(0)
    split = np.arange(n) < int(0.8 * n)
    for r in range(runs):
        pick = rng.choice(len(feats), n, replace=False)
        base, scale = feats[pick], feats.std()
        run_dir = os.path.join(logdir, f"run{r:02d}")
        for step in range(steps):
            drifted = base + rng.normal(0, 0.05 * scale * (step + 1), base.shape).astype(np.float32)
            dvi.summary.snapshot(run_dir, step, drifted, labels[pick], head, split=split)
        dvi.summary.close(run_dir)


def project(logdir: str, *extra: str) -> dict[str, Any]:
    """Run ``dvi-project`` on ``logdir``; its wall seconds, the load average before and after, and whether every
    step then had its result (checked at once, under the method version of that moment)."""
    exe = os.path.join(os.path.dirname(sys.executable), "dvi-project")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    out = subprocess.run([exe, "--logdir", logdir, "--quiet", *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if out.returncode:
        raise RuntimeError(f"dvi-project {' '.join(extra)} failed:\n{out.stderr}")
    return {"args": list(extra), "seconds": seconds, "load_average": [load_before, os.getloadavg()[0]],
            "complete": all_projected(logdir), "method": method_version()}


def method_version() -> str:
    """The projection method's version (part of the cache key: a change mid-benchmark would hide results)."""
    out = subprocess.run([sys.executable, "-c", "import dvi_core; print(dvi_core.__version__)"], capture_output=True,
                         text=True)
    return out.stdout.strip()


def all_projected(logdir: str) -> bool:
    """Whether every step of every run has its result, warm-started from the step before."""
    from tensorboard_plugin_dvi import cache, cli

    for location in cli.find_runs(logdir).values():
        store = cli.open_store(location, os.path.realpath(logdir))
        records, _ = store.read_run()
        results = cache.ResultCache(store, cache.Settings())
        steps = sorted(records)
        if not all(results.has(records[s], records[steps[i - 1]] if i else None) for i, s in enumerate(steps)):
            return False
    return True


def markdown(r: dict[str, Any]) -> str:
    """The results as a table for people."""
    seq, par = r["sequential"], r["parallel"]
    lines = [f"# Many runs: {r['runs']} runs x {r['steps']} steps of {r['n']:,} samples x 64", "",
             f"{r['when']}; {r['cpus']} CPUs shared with other work (load averages beside each number); "
             f"{r['note']}".rstrip("; "), "",
             "| command | wall s | load average before / after | every step projected |", "|---|---:|---|---|",
             f"| `dvi-project --threads {r['seq_threads']}` (one run after another) | {seq['seconds']:.1f} | "
             f"{seq['load_average'][0]:.1f} / {seq['load_average'][1]:.1f} | {seq['complete']} |",
             f"| `dvi-project --jobs {r['jobs']}` (1 torch thread per worker) | {par['seconds']:.1f} | "
             f"{par['load_average'][0]:.1f} / {par['load_average'][1]:.1f} | {par['complete']} |", "",
             f"Speed-up: {seq['seconds'] / par['seconds']:.2f}x. Method version: {seq['method']} / {par['method']}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--n", type=int, default=600, help="samples a step")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seq-threads", type=int, default=1,
                        help="torch threads of the one-after-another baseline (1: the same threads per run as each "
                             "--jobs worker)")
    parser.add_argument("--note", default="", help="a remark for the results (e.g. what else ran meanwhile)")
    args = parser.parse_args()
    runs, steps, n = (3, 2, 300) if args.quick else (args.runs, args.steps, args.n)
    work = tempfile.mkdtemp(prefix="dvi-bench-jobs-")
    seq_dir, par_dir = os.path.join(work, "sequential"), os.path.join(work, "parallel")
    write_runs(seq_dir, runs, steps, n)
    shutil.copytree(seq_dir, par_dir, symlinks=True)
    sequential = project(seq_dir, "--threads", str(args.seq_threads))
    parallel = project(par_dir, "--jobs", str(args.jobs))
    report = {"runs": runs, "steps": steps, "n": n, "jobs": args.jobs, "sequential": sequential,
              "parallel": parallel, "speedup": sequential["seconds"] / parallel["seconds"],
              "seq_threads": args.seq_threads, "note": args.note, "cpus": os.cpu_count(),
              "machine": platform.machine(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    shutil.rmtree(work, ignore_errors=True)
    results_io.save("jobs_quick" if args.quick else "jobs", report, markdown(report))


if __name__ == "__main__":
    main()
