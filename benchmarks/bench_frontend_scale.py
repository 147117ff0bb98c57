"""The DVI tab at 100,000 points x 100 steps, in headless Chromium (software WebGL), served by a real ``tensorboard``.

The logdir is the one ``bench_server_scale.py`` builds (100,000 samples of 10 classes, 32-d synthetic features, a
linear head, logged through the public API; each step's result written into the plugin's cache from a stand-in
layout, then what the projection job runs after a step: the step's digest, the run's dynamics, and the landscape
overviews at 256 and 512 px). TensorBoard serves it with ``--dvi_autoproject off``; the tab is TensorBoard's DVI
iframe page (``data/plugin_entry.html?name=dvi``) in Chromium with ``--disable-gpu`` (WebGL on SwiftShader).

Measured (targets from issue 14):

- **frame while animating** (<= 100 ms): the gaps between drawn frames while playback animates between steps, and
  how many points each frame drew (the level-of-detail subsample while moving, every point at rest);
- **slider move to a projected step** (<= 200 ms): from the slider's input event to the new step drawn with its
  landscape and at rest, for steps the tab never fetched (prefetch off: fetch, parse, draw) and for steps it
  prefetched in the background (as a user who has had the tab open a moment meets them);
- **transfer per step** (<= 1 MB): the bytes of each projection answer (the compact form, against the step the tab
  held before) and of each step's landscape overview;
- **browser memory** (<= 1 GB): the proportional set size (PSS, shared pages split between processes) of every
  Chromium process this script started, after the moves and playback; and the page's JavaScript heap.

Helpers (Chromium's flags, the slider and playback scripts, opening the tab) are ``bench_frontend.py``'s.

    python benchmarks/bench_frontend_scale.py [--samples 100000] [--steps 100] [--keep DIR] [--logdir DIR]

Writes ``results/frontend_scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)
import results_io  # noqa: E402 - sibling module of this script
from bench_frontend import CHROMIUM_ARGS, PLAY_JS, SLIDER_JS, open_tab  # noqa: E402 - the frontend benchmark's helpers
from bench_server_scale import RUN, JobHook, wait_listed, write_logdir  # noqa: E402 - the 100k x 100 logdir
from helpers import start_tensorboard, stop  # noqa: E402 - the tests' way of starting a real tensorboard

TARGETS = {"frame_ms": 100.0, "slider_ms": 200.0, "memory_mb": 1024.0, "transfer_bytes": 1 << 20}

PLAY_LOD_JS = PLAY_JS.replace(
    "if (__dvi.frames !== lastFrames && animating) { if (last !== null) deltas.push(now - last); last = now; }",
    "if (__dvi.frames !== lastFrames && animating) { if (last !== null) { deltas.push(now - last); "
    "drawn.push(__dvi.panels[0].lastFrameDrawn); } last = now; }").replace(
    "const deltas = [];", "const deltas = []; const drawn = [];").replace(
    "resolve({deltas, total_ms", "resolve({deltas, drawn, total_ms")


FETCH_TIMES_JS = """() => {
  const ms = (route) => performance.getEntriesByType('resource').filter((e) => e.name.includes(`/dvi/${route}?`))
    .map((e) => e.responseEnd - e.startTime);
  return {projection: ms('projection'), landscape: ms('landscape')};
}"""
"""Request to last byte (ms) of every projection and landscape answer in the page's resource timings."""


def chromium_pss_mb() -> dict[str, float]:
    """PSS and RSS (MB) summed over the Chromium processes descended from this process."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as handle:
                    parents[int(name)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - mine
        mine |= frontier
    pss = rss = 0.0
    count = 0
    for pid in mine:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if b"chrom" not in handle.read().split(b"\0")[0]:
                    continue
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) / 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) / 1024
            count += 1
        except OSError:
            continue
    return {"pss_mb": pss, "rss_mb": rss, "processes": count}


def transfers(page) -> list[dict]:
    """Records (url, bytes) of every projection and landscape answer the page receives, from now on."""
    seen: list[dict] = []

    def keep(resp) -> None:
        if "/data/plugin/dvi/projection?" in resp.url or "/data/plugin/dvi/landscape?" in resp.url:
            # a response the page dropped (navigation) has no body to count
            with contextlib.suppress(Exception):
                size = len(resp.body()) or int(resp.header_value("content-length") or 0)
                seen.append({"url": resp.url.split("/data/plugin/dvi/")[1], "bytes": size, "status": resp.status})

    page.on("response", keep)
    return seen


def measure(browser, base: str, steps: int, moves: int) -> dict:
    """Slider moves (uncached, then prefetched), playback frames, transfer and memory."""
    out: dict = {}
    page = open_tab(browser, base, RUN, "webgl", prefetch=False)
    seen = transfers(page)
    page.evaluate("performance.setResourceTimingBufferSize(10000); performance.clearResourceTimings()")
    all_steps = page.evaluate("__dvi.steps")
    out["points"] = page.evaluate("__dvi.pointsDrawn")
    out["renderer"] = page.evaluate("__dvi.renderer")
    # Steps never fetched: one step back each time (the tab holds the step after: the answer is relative to it)
    targets = [len(all_steps) - 2 - k for k in range(moves)]
    uncached = [page.evaluate(SLIDER_JS, i) for i in targets]
    page.wait_for_function("__dvi.ready", timeout=120000)
    n = len(all_steps)
    jumps = [page.evaluate(SLIDER_JS, i) for i in (n // 10, 3 * n // 5, 3 * n // 10)]  # answers against far steps
    page.wait_for_function("__dvi.ready", timeout=120000)
    out["slider_uncached_ms"] = uncached
    out["slider_uncached_jump_ms"] = jumps
    out["uncached_fetch_ms"] = page.evaluate(FETCH_TIMES_JS)
    proj = [t for t in seen if t["url"].startswith("projection?") and t["status"] == 200]
    land = [t for t in seen if t["url"].startswith("landscape?") and t["status"] == 200]
    out["projection_bytes"] = [t["bytes"] for t in proj]
    out["projection_urls"] = [t["url"] for t in proj][:6]
    out["landscape_bytes"] = [t["bytes"] for t in land]
    out["memory_after_uncached"] = chromium_pss_mb()
    page.close()

    page = open_tab(browser, base, RUN, "webgl", prefetch=True)
    page.wait_for_function("__dvi.fetches.projectionFetches >= 12", timeout=300000)  # prefetched around the step
    time.sleep(1.0)
    cached = [page.evaluate(SLIDER_JS, n - 1 - ((k * 3 + 1) % 10)) for k in range(moves)]
    page.wait_for_function("__dvi.ready", timeout=120000)
    out["slider_prefetched_ms"] = cached
    page.evaluate(SLIDER_JS, max(0, n - 12))
    play = page.evaluate(PLAY_LOD_JS)
    page.wait_for_function("__dvi.ready", timeout=120000)
    out["frame_ms"] = play["deltas"]
    out["frame_points_drawn"] = play["drawn"]
    out["points_drawn_at_rest"] = page.evaluate("__dvi.panels[0].lastFrameDrawn")
    out["js_heap_mb"] = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null")
    out["memory"] = chromium_pss_mb()
    out["fetches"] = page.evaluate("__dvi.fetches")
    page.close()
    return out


def summary(m: dict) -> dict:
    """Medians, 95th percentiles and maxima of the measured lists, and each target met or not."""
    def stats(values: list[float]) -> dict:
        a = np.asarray(values, dtype=float)
        if not a.size:
            return {"median": None, "p95": None, "max": None, "count": 0}
        return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "max": float(a.max()),
                "count": int(a.size)}

    s = {k: stats(m[k]) for k in ("frame_ms", "frame_points_drawn", "slider_uncached_ms", "slider_uncached_jump_ms",
                                  "slider_prefetched_ms", "projection_bytes", "landscape_bytes")}
    fetches = m.get("uncached_fetch_ms") or {}
    s["uncached_fetch_ms"] = {k: stats(fetches.get(k, [])) for k in ("projection", "landscape")}
    per_step = (s["projection_bytes"]["max"] or 0) + (s["landscape_bytes"]["max"] or 0)
    s["met"] = {
        "frame_ms_p95": s["frame_ms"]["p95"] is not None and s["frame_ms"]["p95"] <= TARGETS["frame_ms"],
        "slider_uncached_ms_p95": s["slider_uncached_ms"]["p95"] is not None
        and s["slider_uncached_ms"]["p95"] <= TARGETS["slider_ms"],
        "slider_prefetched_ms_p95": s["slider_prefetched_ms"]["p95"] is not None
        and s["slider_prefetched_ms"]["p95"] <= TARGETS["slider_ms"],
        "transfer_per_step_max": per_step <= TARGETS["transfer_bytes"],
        "memory_pss": m["memory"]["pss_mb"] <= TARGETS["memory_mb"],
    }
    s["transfer_per_step_max_bytes"] = per_step
    return s


def markdown(r: dict) -> str:
    """The results as a table for people."""
    m, s = r["measured"], r["summary"]
    f = lambda x, d=0: "n/a" if x is None else f"{x:,.{d}f}"  # noqa: E731 - a local formatter
    ok = lambda k: "met" if s["met"][k] else "**not met**"  # noqa: E731
    lines = [
        f"# The DVI tab at {r['n']:,} points x {r['steps']} steps (headless Chromium, software WebGL)", "",
        f"{r['when']}; {r['cpus']} CPUs shared with other work; load average {r['load_average'][0]:.1f} at the start, "
        f"{r['load_average'][1]:.1f} at the end. {r['chromium']}, `--disable-gpu` (WebGL on SwiftShader), viewport "
        "1400x860. Served by a real `tensorboard` (`--dvi_autoproject off`) from a synthetic logdir written by "
        "`bench_server_scale.py`'s writer (stand-in layouts, not per-step projections; each step's digest, dynamics "
        "and landscape overviews written as the projection job writes them). Renderer drawn: "
        f"{m['renderer']}, {m['points']:,} points.", "",
        "| measure | median | p95 | max | target | |", "|---|---:|---:|---:|---|---|",
        f"| frame while animating (ms), {s['frame_ms']['count']} frames | {f(s['frame_ms']['median'], 1)} | "
        f"{f(s['frame_ms']['p95'], 1)} | {f(s['frame_ms']['max'], 1)} | <= 100 ms | {ok('frame_ms_p95')} |",
        f"| points drawn per animated frame (level of detail) | {f(s['frame_points_drawn']['median'])} | "
        f"{f(s['frame_points_drawn']['p95'])} | {f(s['frame_points_drawn']['max'])} | | at rest: "
        f"{m['points_drawn_at_rest']:,} |",
        f"| slider move to a step never fetched (ms), one step back | {f(s['slider_uncached_ms']['median'])} | "
        f"{f(s['slider_uncached_ms']['p95'])} | {f(s['slider_uncached_ms']['max'])} | <= 200 ms | "
        f"{ok('slider_uncached_ms_p95')} |",
        f"| slider move to a step never fetched (ms), far jumps | {f(s['slider_uncached_jump_ms']['median'])} | "
        f"{f(s['slider_uncached_jump_ms']['p95'])} | {f(s['slider_uncached_jump_ms']['max'])} | | |",
        *(f"| never-fetched moves: {k} request to last byte (ms) | {f(v['median'])} | {f(v['p95'])} | "
          f"{f(v['max'])} | | |" for k, v in s["uncached_fetch_ms"].items()),
        f"| slider move to a prefetched step (ms) | {f(s['slider_prefetched_ms']['median'])} | "
        f"{f(s['slider_prefetched_ms']['p95'])} | {f(s['slider_prefetched_ms']['max'])} | <= 200 ms | "
        f"{ok('slider_prefetched_ms_p95')} |",
        f"| projection answer (bytes) | {f(s['projection_bytes']['median'])} | {f(s['projection_bytes']['p95'])} | "
        f"{f(s['projection_bytes']['max'])} | | |",
        f"| landscape overview (bytes) | {f(s['landscape_bytes']['median'])} | {f(s['landscape_bytes']['p95'])} | "
        f"{f(s['landscape_bytes']['max'])} | | |",
        f"| transfer per step, largest projection + largest overview (bytes) | | | "
        f"{f(s['transfer_per_step_max_bytes'])} | <= 1 MB | {ok('transfer_per_step_max')} |",
        f"| browser memory, PSS of {m['memory']['processes']} Chromium processes (MB) | | | "
        f"{f(m['memory']['pss_mb'])} | <= 1024 MB | {ok('memory_pss')} |",
        "", f"Chromium's RSS (shared pages counted in every process): {m['memory']['rss_mb']:,.0f} MB; the page's "
        f"JavaScript heap: {f(m['js_heap_mb'])} MB. Projection answers fetched: {m['fetches']['projectionFetches']} "
        f"({m['fetches']['projectionBytes']:,} bytes) in the prefetching tab. First answers: "
        + ", ".join(f"`{u}`" for u in m["projection_urls"][:3]) + ".",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--moves", type=int, default=8)
    parser.add_argument("--keep", help="write the logdir here and keep it (default: a temporary folder, removed)")
    parser.add_argument("--logdir", help="a logdir this script wrote before (with --keep): not written again")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    import torch
    from playwright.sync_api import sync_playwright

    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    work = None
    if args.logdir:
        logdir, write_s = args.logdir, None
    else:
        work = args.keep or tempfile.mkdtemp(prefix="dvi-bench-frontend-scale-")
        logdir = os.path.join(work, "logs")
        _, _, _, write_s = write_logdir(logdir, args.samples, args.steps, JobHook(landscapes=True))
        print(f"logdir written in {write_s:.0f} s", flush=True)
    proc, url = start_tensorboard(logdir, "--dvi_autoproject", "off")
    try:
        wait_listed(url + "/data/plugin/dvi", args.steps)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
            chromium = f"Chromium {browser.version}"
            measured = measure(browser, url, args.steps, args.moves)
            browser.close()
    finally:
        stop(proc)
    report = {"n": args.samples, "steps": args.steps, "write_s": write_s, "measured": measured,
              "summary": summary(measured), "targets": TARGETS, "chromium": chromium,
              "load_average": [load_start, os.getloadavg()[0]], "cpus": os.cpu_count(),
              "machine": platform.machine(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(report["summary"], indent=1))
    if work and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    results_io.save("frontend_scale", report, markdown(report))


if __name__ == "__main__":
    main()
