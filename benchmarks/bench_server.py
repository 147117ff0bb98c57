"""Serving latency and payloads of the DVI plugin inside a real `tensorboard` process.

Measured (one run of this script, same machine):
  * landscape 256x256: cold (first request, computed) and cached latency, demo-sized run (10k x 256) and 50k run;
  * projection payload bytes (JSON vs binary) and cached latency for 10k and 50k points;
  * `runs` latency with 20 runs x 50 steps;
  * peak resident memory of the TensorBoard process.
Targets (issue 4): cached landscape < 100 ms, cold < 1 s; binary projection of 50k points < 1 MB and < 200 ms.
Writes benchmarks/results/server.{json,md}.

    python benchmarks/bench_server.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request

import numpy as np
import torch

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import cache, method, storage

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from helpers import start_tensorboard  # noqa: E402 - the tests' way of starting a real tensorboard

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_io  # noqa: E402 - sibling module of this script

MNIST = os.path.join(os.path.dirname(HERE), "examples", "data", "mnist10k.npz")


def mnist_features(dim: int = 256, seed: int = 0, *, epochs: int = 60,
                   train_rows: int | None = 8000) -> tuple[np.ndarray, np.ndarray, torch.nn.Module]:
    """Real 10k MNIST features from a quickly trained 784 -> ``dim`` MLP, its labels and its linear head.

    The MLP is trained full-batch for ``epochs`` on the first ``train_rows`` digits (all when None).
    """
    with np.load(MNIST) as data:
        x = torch.from_numpy(data["images"]).float().div_(255).reshape(-1, 784)
        y = torch.from_numpy(data["labels"].astype(np.int64))
    torch.manual_seed(seed)
    body, head = torch.nn.Sequential(torch.nn.Linear(784, dim), torch.nn.ReLU()), torch.nn.Linear(dim, 10)
    opt = torch.optim.Adam([*body.parameters(), *head.parameters()], lr=3e-3)
    rows = slice(None, train_rows)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(body(x[rows])), y[rows]).backward()
        opt.step()
    with torch.no_grad():
        return body(x).numpy(), y.numpy(), head


def write_and_project(run_dir: str, feats: np.ndarray, labels: np.ndarray, head: torch.nn.Module) -> float:
    """Log one step and project it offline; return the projection's wall seconds."""
    split = np.arange(len(feats)) < int(0.8 * len(feats))
    dvi.summary.snapshot(run_dir, 0, feats, labels, head, split=split)
    dvi.summary.close(run_dir)
    store = storage.RunStore(run_dir)
    records, _ = store.read_run()
    started = time.perf_counter()
    method.project_step(store, cache.ResultCache(store, cache.Settings()), records[0], None)
    return time.perf_counter() - started


def timed_get(url: str) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as resp:
        body = resp.read()
        return time.perf_counter() - started, resp.status, body


def wait_ready(url: str, runs: list[str]) -> None:
    for _ in range(600):
        _, status, body = timed_get(url + "/data/plugin/dvi/runs")
        listed = {r["run"]: r for r in json.loads(body)["runs"]}
        if all(r in listed and listed[r]["status"]["ready"] for r in runs):
            return
        time.sleep(0.5)
    raise RuntimeError("runs never became ready")


def median_ms(fn, repeats: int = 7) -> float:
    return 1000 * statistics.median(fn() for _ in range(repeats))


def rss_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def bench_run(url: str, run: str, n: int) -> dict:
    base = f"{url}/data/plugin/dvi"
    cold, status, _ = timed_get(f"{base}/landscape?run={run}&step=0&size=256")
    assert status == 200
    cached = median_ms(lambda: timed_get(f"{base}/landscape?run={run}&step=0&size=256")[0])
    json_bytes = len(timed_get(f"{base}/projection?run={run}&step=0")[2])
    bin_bytes = len(timed_get(f"{base}/projection?run={run}&step=0&format=binary")[2])
    json_ms = median_ms(lambda: timed_get(f"{base}/projection?run={run}&step=0")[0])
    bin_ms = median_ms(lambda: timed_get(f"{base}/projection?run={run}&step=0&format=binary")[0])
    return {"run": run, "n": n, "landscape_cold_ms": 1000 * cold, "landscape_cached_ms": cached,
            "projection_json_bytes": json_bytes, "projection_binary_bytes": bin_bytes,
            "projection_json_ms": json_ms, "projection_binary_ms": bin_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 runs x 20 steps for the runs-latency case")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the plugin's worker does (--dvi_threads 1)
    root = tempfile.mkdtemp(prefix="dvi-bench-server-")
    logdir = os.path.join(root, "logs")
    feats, labels, head = mnist_features()
    fit_s = {"demo10k": write_and_project(os.path.join(logdir, "demo10k"), feats, labels, head)}
    rng = np.random.default_rng(0)
    big = np.concatenate([feats + rng.normal(0, 0.05 * feats.std(), feats.shape).astype(np.float32)
                          for _ in range(5)])
    fit_s["synthetic50k"] = write_and_project(os.path.join(logdir, "synthetic50k"), big, np.tile(labels, 5), head)
    n_runs, n_steps = (10, 20) if args.quick else (20, 50)
    small = torch.nn.Linear(16, 4)
    for r in range(n_runs):
        x = torch.randn(64, 16)
        for s in range(n_steps):
            dvi.summary.snapshot(os.path.join(logdir, "many", f"r{r:02d}"), s, x + 0.01 * s,
                                 torch.randint(0, 4, (64,)), small)
        dvi.summary.close(os.path.join(logdir, "many", f"r{r:02d}"))
    proc, url = start_tensorboard(logdir)
    try:
        wait_ready(url, ["demo10k", "synthetic50k"])
        rows = [bench_run(url, "demo10k", len(feats)), bench_run(url, "synthetic50k", len(big))]
        runs_ms = median_ms(lambda: timed_get(url + "/data/plugin/dvi/runs")[0])
        memory = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    report = {"machine": platform.machine(), "cpus": os.cpu_count(), "rows": rows, "projection_fit_seconds": fit_s,
              "runs_route_ms": runs_ms, "runs_route_case": f"{n_runs + 2} runs, {n_runs} of them x {n_steps} steps",
              "tensorboard_rss_mb": memory.get("VmRSS"), "tensorboard_peak_rss_mb": memory.get("VmHWM")}
    write(report)


def write(report: dict) -> None:
    lines = [f"Plugin serving benchmark ({report['cpus']} CPUs, real tensorboard process)", "",
             "| run | N | landscape 256 cold ms | cached ms | projection JSON bytes | binary bytes | "
             "JSON ms | binary ms |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        lines.append(f"| {r['run']} | {r['n']:,} | {r['landscape_cold_ms']:.0f} | {r['landscape_cached_ms']:.1f} | "
                     f"{r['projection_json_bytes']:,} | {r['projection_binary_bytes']:,} | "
                     f"{r['projection_json_ms']:.1f} | {r['projection_binary_ms']:.1f} |")
    lines += ["", f"`runs` route ({report['runs_route_case']}): {report['runs_route_ms']:.1f} ms (median)",
              f"TensorBoard process memory: {report['tensorboard_rss_mb']:.0f} MB resident, "
              f"{report['tensorboard_peak_rss_mb']:.0f} MB peak",
              "Projection fit of one step (offline, s): " + ", ".join(
                  f"{k} {v:.1f}" for k, v in report["projection_fit_seconds"].items())]
    results_io.save("server", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
