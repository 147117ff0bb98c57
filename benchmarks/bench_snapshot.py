"""Cost of logging one DVI step: `dvi.summary.snapshot` of 10,000 x 512 float32 features.

Compared in the same run with the peer a PyTorch user would otherwise reach for, `SummaryWriter.add_embedding`
(the Embedding Projector's TSV export), and with a bare `np.save` of the features (the floor). Reports median
seconds over repeats and bytes on disk per step; writes benchmarks/results/snapshot.{json,md}.

    python benchmarks/bench_snapshot.py [--n 10000] [--d 512] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

import tensorboard_plugin_dvi as dvi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_io  # noqa: E402 - sibling module of this script


def dir_bytes(path: str) -> int:
    """Total size of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def measure(name: str, fn: Callable[[str, int], None], repeats: int) -> dict:
    """Median wall seconds of ``fn(run_dir, step)`` and bytes it wrote per call."""
    root = tempfile.mkdtemp(prefix="dvi-bench-")
    try:
        times = []
        for step in range(repeats):
            started = time.perf_counter()
            fn(os.path.join(root, "run"), step)
            times.append(time.perf_counter() - started)
        return {"method": name, "seconds_median": statistics.median(times), "seconds_min": min(times),
                "bytes_per_step": dir_bytes(root) / repeats}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(args.n, args.d, generator=gen)
    head = torch.nn.Linear(args.d, 10)
    labels = torch.randint(0, 10, (args.n,), generator=gen)
    split = np.arange(args.n) < int(0.8 * args.n)
    images = torch.randint(0, 255, (args.n, 28, 28), generator=gen, dtype=torch.uint8)

    def snapshot(run_dir: str, step: int) -> None:
        dvi.summary.snapshot(run_dir, step, feats, labels, head, split=split)

    def snapshot_fp16(run_dir: str, step: int) -> None:
        dvi.summary.snapshot(run_dir, step, feats.half(), labels, head, split=split)

    def snapshot_inputs(run_dir: str, step: int) -> None:
        dvi.summary.snapshot(run_dir, step, feats, labels, head, split=split, inputs=images)

    def add_embedding(run_dir: str, step: int) -> None:
        writer = SummaryWriter(run_dir)
        writer.add_embedding(feats, metadata=labels.tolist(), global_step=step)
        writer.close()

    def np_save(run_dir: str, step: int) -> None:
        os.makedirs(run_dir, exist_ok=True)
        np.save(os.path.join(run_dir, f"{step}.npy"), feats.numpy())

    rows = [measure(name, fn, args.repeats) for name, fn in [
        ("dvi.summary.snapshot", snapshot), ("dvi.summary.snapshot (float16)", snapshot_fp16),
        ("dvi.summary.snapshot (+ inputs)", snapshot_inputs),
        ("SummaryWriter.add_embedding (peer)", add_embedding), ("np.save of features (floor)", np_save),
    ]]
    peer = rows[3]
    for row in rows:
        row["time_vs_add_embedding"] = row["seconds_median"] / peer["seconds_median"]
        row["bytes_vs_add_embedding"] = row["bytes_per_step"] / peer["bytes_per_step"]
    report = {"n": args.n, "d": args.d, "repeats": args.repeats, "machine": platform.machine(),
              "cpus": os.cpu_count(), "torch": torch.__version__, "rows": rows}
    write(report)


def write(report: dict) -> None:
    """Print the table and save it as JSON and Markdown."""
    lines = [f"Snapshot cost per step, {report['n']:,} x {report['d']} float32 features "
             f"({report['cpus']} CPUs, median of {report['repeats']})", "",
             "| method | seconds | MB on disk | time vs add_embedding | size vs add_embedding |",
             "|---|---:|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['method']} | {r['seconds_median']:.3f} | {r['bytes_per_step'] / 1e6:.1f} | "
                     f"{r['time_vs_add_embedding']:.2f} | {r['bytes_vs_add_embedding']:.2f} |")
    results_io.save("snapshot", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
