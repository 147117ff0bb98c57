"""The 60,000 x 512 step on one GPU: the case of ``bench_scale.py``, projected with ``device="cuda"``.

Builds the same case as ``bench_scale.py`` (the bundled digits through a wider network, logged through the public
API), projects every step in one child process on the GPU as ``dvi-project --device cuda`` does, and records each
step's time, the GPU's peak allocated memory and the process's peak resident memory. Target (issue 14): <= 5 s a
step on one GPU. Where torch sees no CUDA device it says so, writes nothing and exits with status 2: a benchmark that
did not run is never recorded as a result.

    python benchmarks/bench_gpu.py [--quick] [--steps 3]

Writes ``results/gpu.{json,md}`` (``--quick``: ``results/gpu_quick.*``). Meant for a machine lent with a GPU; a run
of the full case takes a few minutes there, most of it building the case.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from typing import Any

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_scale  # noqa: E402 - sibling module: the same case and the same child process
import results_io  # noqa: E402 - sibling module of this script

TARGET_S = 5.0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Build the case, project it on the GPU and return the measurements."""
    n_train, n_test = (6_000, 1_000) if args.quick else (args.train, args.test)
    workdir = tempfile.mkdtemp(prefix="dvi-bench-gpu-")
    logdir = os.path.join(workdir, "logs")
    torch.set_num_threads(args.threads)
    case = bench_scale.write_case(os.path.join(logdir, bench_scale.RUN), n_train, n_test, args.dim, args.steps)
    print(f"case written in {case['build_s']:.0f} s", flush=True)
    projected = bench_scale.project_steps(logdir, args.threads, "cuda", profile_dir=None, deadline_s=None)
    steps, peak_mb = projected["steps"], projected["peak_rss_mb"]
    shutil.rmtree(workdir, ignore_errors=True)
    return {"case": case, "gpu": torch.cuda.get_device_name(0), "threads": args.threads, "steps": steps,
            "first_step_s": steps[0]["seconds"],
            "steady_step_s": sum(s["seconds"] for s in steps[1:]) / max(1, len(steps) - 1) if len(steps) > 1 else None,
            "peak_rss_mb": peak_mb, "cuda_peak_mb": max(s.get("cuda_peak_mb", 0.0) for s in steps),
            "machine": platform.machine(), "cpus": os.cpu_count(), "load_average": os.getloadavg()[0],
            "method": bench_scale._method_version(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def markdown(r: dict[str, Any]) -> str:
    """The results as a table for people."""
    c = r["case"]
    lines = [f"# Projection on a GPU: {c['n_train']:,} train + {c['n_test']:,} test x {c['dim']} a step", "",
             f"{r['when']}; {r['gpu']}; dvi_core {r['method']['dvi_core']} at {r['method']['commit']}; "
             f"{r['cpus']} CPUs, torch on {r['threads']} CPU thread(s); load average {r['load_average']:.1f}.", "",
             "| step | seconds | GPU peak allocated (MB) |", "|---:|---:|---:|"]
    lines += [f"| {s['step']} | {s['seconds']:.2f} | {s.get('cuda_peak_mb', 0):.0f} |" for s in r["steps"]]
    lines += ["", f"First step {r['first_step_s']:.2f} s."]
    if r["steady_step_s"] is not None:
        met = "met" if r["steady_step_s"] <= TARGET_S else "**not met**"
        lines.append(f"Steady-state step {r['steady_step_s']:.2f} s (target <= {TARGET_S:.0f} s: {met}).")
    lines.append(f"Peak resident memory of the projecting process {r['peak_rss_mb'] / 1024:.2f} GB.")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6,000 + 1,000 samples")
    parser.add_argument("--train", type=int, default=60_000)
    parser.add_argument("--test", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="CPU threads for torch beside the GPU")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("NOT RUN: torch sees no CUDA device on this machine; nothing was measured or written.", file=sys.stderr)
        return 2
    report = measure(args)
    results_io.save("gpu_quick" if args.quick else "gpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
