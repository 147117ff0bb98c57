"""One client trying to exhaust a real `tensorboard` with the DVI plugin, while other clients keep listing runs.

The burst: 16 concurrent cold landscapes of sizes near 1024 px (eight of them identical) and 8 `predict` calls of
100,000 points each, against a demo-sized run (10k MNIST samples x 256-d, one projected step). Meanwhile four other
clients poll `runs` and we record their latency. Measured: peak resident memory of the TensorBoard process (VmHWM,
target <= 1.5 GB), the other clients' `runs` latency (p95 target < 1 s), the burst's wall time, and how many
landscape renders actually ran (identical requests share one computation; sizes are rendered in a few buckets).
Writes benchmarks/results/abuse.{json,md}.

    python benchmarks/bench_abuse.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import results_io  # noqa: E402 - sibling module of this script
from bench_server import mnist_features, rss_mb, write_and_project  # noqa: E402
from helpers import start_tensorboard, stop  # noqa: E402 - the tests' way of starting a real tensorboard

SIZES = [1024, 1024, 1024, 1024, 1024, 1024, 1024, 1024, 1000, 1010, 990, 1020, 960, 1000, 1015, 1023]
PREDICT_CALLS, PREDICT_POINTS = 8, 100_000


def _request(url: str, data: bytes | None = None) -> tuple[int, float]:
    started = time.perf_counter()
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=900) as resp:
            resp.read()
            status = resp.status
    except urllib.error.HTTPError as err:
        status = err.code
    return status, time.perf_counter() - started


def _watch_memory(pid: int, stop_event: threading.Event, peak: list[float]) -> None:
    while not stop_event.is_set():
        try:
            peak[0] = max(peak[0], rss_mb(pid).get("VmRSS", 0.0))
        except OSError:
            return
        time.sleep(0.05)


def burst(url: str, pid: int) -> dict:
    """Fire the burst and the listing clients; return what was measured."""
    api = url + "/data/plugin/dvi/"
    bounds_body = urllib.request.urlopen(api + "projection?run=big&step=0", timeout=600).read()
    x0, y0, x1, y1 = json.loads(bounds_body)["bounds"]
    rng = np.random.default_rng(0)
    pts = np.stack([rng.uniform(x0, x1, PREDICT_POINTS), rng.uniform(y0, y1, PREDICT_POINTS)], 1)
    body = json.dumps(np.round(pts, 4).tolist()).encode()
    results: list[tuple[str, int, float]] = []
    lock = threading.Lock()

    def fire(kind: str, url_: str, data: bytes | None = None) -> None:
        status, seconds = _request(url_, data)
        with lock:
            results.append((kind, status, seconds))

    done = threading.Event()
    listing: list[float] = []

    def lister() -> None:
        while not done.is_set():
            status, seconds = _request(api + "runs")
            if status == 200:
                listing.append(seconds)
            time.sleep(0.1)

    peak, mem_stop = [0.0], threading.Event()
    watchers = [threading.Thread(target=_watch_memory, args=(pid, mem_stop, peak))]
    watchers += [threading.Thread(target=lister) for _ in range(4)]
    for t in watchers:
        t.start()
    time.sleep(1.0)
    baseline = list(listing)
    threads = [threading.Thread(target=fire, args=("landscape", api + f"landscape?run=big&step=0&size={s}"))
               for s in SIZES]
    threads += [threading.Thread(target=fire, args=("predict", api + "predict?run=big&step=0", body))
                for _ in range(PREDICT_CALLS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    done.set()
    mem_stop.set()
    for t in watchers:
        t.join()
    during = listing[len(baseline):]
    mem = rss_mb(pid)
    return {
        "burst_wall_s": round(wall, 2),
        "statuses": sorted({f"{k}:{s}" for k, s, _ in results}),
        "landscape_s_max": round(max(s for k, _, s in results if k == "landscape"), 2),
        "predict_s_max": round(max(s for k, _, s in results if k == "predict"), 2),
        "runs_latency_p95_s": round(float(np.percentile(during, 95)), 3) if during else None,
        "runs_latency_median_s": round(statistics.median(during), 3) if during else None,
        "runs_requests_during_burst": len(during),
        "peak_rss_mb_sampled": round(peak[0], 1),
        "peak_rss_mb_vmhwm": round(mem.get("VmHWM", 0.0), 1),
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        logdir = os.path.join(tmp, "logs")
        feats, labels, head = mnist_features(256)
        project_s = write_and_project(os.path.join(logdir, "big"), feats, labels, head)
        proc, url = start_tensorboard(logdir, "--load_fast=false")
        try:
            for _ in range(600):
                status, _ = _request(url + "/data/plugin/dvi/projection?run=big&step=0")
                if status == 200:
                    break
                time.sleep(0.5)
            before = rss_mb(proc.pid)
            measured = burst(url, proc.pid)
            renders = [n for n in os.listdir(os.path.join(logdir, "big", "plugins", "dvi", "cache",
                                                          os.listdir(os.path.join(logdir, "big", "plugins", "dvi",
                                                                                  "cache"))[0]))
                       if ".landscape" in n]
        finally:
            stop(proc)
    report = {"machine": platform.platform(), "cpus": os.cpu_count(), "projection_s": round(project_s, 1),
              "rss_before_burst_mb": round(before.get("VmRSS", 0.0), 1), "landscape_files_cached": len(renders),
              "distinct_sizes_requested": len(set(SIZES)), **measured,
              "targets": {"peak_rss_mb": 1536, "runs_latency_p95_s": 1.0}}
    peak = max(measured["peak_rss_mb_vmhwm"], measured["peak_rss_mb_sampled"])
    p95 = measured["runs_latency_p95_s"]
    lines = [
        "# Abuse burst against a real tensorboard (10k x 256, one projected step)",
        "",
        f"16 concurrent cold landscapes ({len(set(SIZES))} distinct sizes, 990-1024 px) + {PREDICT_CALLS} predict "
        f"calls of {PREDICT_POINTS:,} points; 4 other clients polling `runs`. Machine: {os.cpu_count()} CPUs.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| peak resident memory of TensorBoard | {peak:.0f} MB | <= 1536 MB: {'met' if peak <= 1536 else 'MISSED'} |",
        f"| other clients' `runs` latency p95 during the burst | {p95} s | < 1 s: "
        f"{'met' if p95 is not None and p95 < 1 else 'MISSED'} |",
        f"| other clients' `runs` latency median | {measured['runs_latency_median_s']} s | |",
        f"| burst wall time | {measured['burst_wall_s']} s | |",
        f"| slowest landscape / predict answer | {measured['landscape_s_max']} s / {measured['predict_s_max']} s | |",
        f"| landscape PNGs cached on disk after the burst | {len(renders)} (for {len(set(SIZES))} sizes) | a few "
        "buckets |",
        f"| answers | {', '.join(measured['statuses'])} | no 5xx |",
        f"| resident memory before the burst | {before.get('VmRSS', 0.0):.0f} MB | |",
    ]
    results_io.save("abuse", report, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
