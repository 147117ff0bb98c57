"""Frontend benchmark: the DVI tab in headless Chromium with 50,000 (and 10,000) points.

Measures, per renderer (WebGL, canvas 2D fallback):
- frame time while playing (positions interpolated between steps, landscapes cross-faded), median and p95;
- slider move → the new step drawn with its landscape: on the first visit to each projected step (fetch, parse,
  decode, upload; the overview landscape is prerendered as the plugin's background job does), and again once cached;
- zooming 4x → the visible map drawn sharp at the new level (the re-rendered landscape: a viewport image of the
  visible part when the level's tiles are not known to be rendered, else the tiles), and every tile drawn.

Targets: slider p95 <= 150 ms at 10k points, zoom 4x sharp within 500 ms, >= 10 frames a second at 50k points.

And the long-log time bar on a run of 1,000 logged steps (`--timebar-steps`): the overview strip above the slider
(accuracy, separation, neighbour change, displacement, alarm marks) drawn when its data arrives, redrawn (as on a
resize), after a drag-to-zoom, and a slider move, each to the next frame. Target: <= 100 ms.

The tab talks to a small stdlib HTTP server that implements the plugin's HTTP contract (http_api.md) over
synthetic coordinates, with overviews and level-3 tiles rendered ahead, so the numbers are the frontend's own cost,
not the projection's or the landscape renderer's. Pass `--url` to measure against a running TensorBoard instead
(its first run is used), or `--logdir` to have this script run `dvi-project` on a logdir (projections and landscape
overviews not yet cached) and start a real `tensorboard` on it. Against a real TensorBoard, zoom 4x is measured
twice: `cold`, right after a step is first drawn, before the plugin's background job has rendered any of its tiles
ahead (the viewport image, then the visible tiles, are rendered on demand), and as a user meets it, after the tab
has shown the step until the plugin reports (in `runs`, `status.tiles_ahead`) that it rendered the step's tile
pyramid; that wait is reported.

    python benchmarks/bench_frontend.py            # writes benchmarks/results/frontend.json and frontend.md
    python benchmarks/bench_frontend.py --only-timebar   # only the 1,000-step time bar; keeps the other results
    python benchmarks/bench_frontend.py --logdir demo_logs --points 10000 --renderers webgl --timebar-steps 0 \
        --name frontend.tensorboard   # the demo against a real tensorboard
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRONTEND = os.path.join(ROOT, "frontend")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]
ENTRY_SCRIPT = 'import("./index.js").then((m) => void m.render());'


def png_bytes(rgb: np.ndarray) -> bytes:
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


class SyntheticRun:
    """Clusters that tighten over steps, in the shape the plugin serves."""

    def __init__(self, name: str, n: int, steps: int, seed: int, warm_tiles: bool = True):
        rng = np.random.default_rng(seed)
        self.name, self.n, self.steps = name, n, list(range(steps))
        self.labels = (np.arange(n) % 10).astype(np.int32)
        self.split = (rng.random(n) < 0.8).astype(np.uint8)
        ang = np.arange(10) * 2 * np.pi / 10
        self.centers = np.stack([np.cos(ang), np.sin(ang)], 1) * 8
        start = rng.normal(0, 4, (n, 2))
        end = self.centers[self.labels] + rng.normal(0, 1.3, (n, 2))
        self.data = {}
        for s in self.steps:
            p = (s + 1) / steps
            pos = start * (1 - p) + end * p
            pred = self.labels.copy()
            wrong = rng.random(n) < 0.3 * (1 - p) + 0.03
            pred[wrong] = (pred[wrong] + 1) % 10
            c, r = (pos.min(0) + pos.max(0)) / 2, (pos.max(0) - pos.min(0)).max() / 2 * 1.1
            self.data[s] = {"x": pos[:, 0].astype(np.float32), "y": pos[:, 1].astype(np.float32), "pred": pred,
                            "conf": rng.uniform(0.4, 1, n).astype(np.float32),
                            "bounds": [float(c[0] - r), float(c[1] - r), float(c[0] + r), float(c[1] + r)]}
        self._png: dict = {}
        for s in self.steps:  # the plugin's background job prerenders each projected step's overview
            for size in (256, 512):
                self.landscape(s, size)
        if warm_tiles:  # level-3 tiles ready too, so zoom timings are the tab's cost, not this stand-in's renders
            for s in self.steps:
                for tx in range(8):
                    for ty in range(8):
                        self.landscape(s, 256, 3, tx, ty)

    def info(self) -> dict:
        return {"run": self.name, "steps": self.steps, "n": self.n, "dim": 512, "n_classes": 10,
                "classes": [str(i) for i in range(10)], "colors": COLORS, "has_head": True, "has_inputs": False,
                "flags": [], "source": "dvi", "broken_steps": [],
                "status": {"state": "ready", "ready": self.steps, "queued": [], "running": None, "progress": None,
                           "error": None}}

    def projection(self, step: int) -> bytes:
        d = self.data[step]
        head = {"run": self.name, "step": step, "n": self.n, "bounds": d["bounds"],
                "accuracy": {"train": float((d["pred"] == self.labels).mean()), "test": 0.0}, "flags": {}}
        arrays = [("ids", np.arange(self.n, dtype=np.int32)), ("x", d["x"]), ("y", d["y"]),
                  ("labels", self.labels), ("pred", d["pred"].astype(np.int32)), ("conf", d["conf"]),
                  ("split", self.split)]
        meta, chunks, off = [], [], 0
        for name, a in arrays:
            b = a.tobytes() + b"\0" * ((-a.nbytes) % 4)
            meta.append({"name": name, "dtype": str(a.dtype), "offset": off, "length": len(a)})
            chunks.append(b)
            off += len(b)
        head["arrays"] = meta
        hj = json.dumps(head).encode()
        return b"DVI1" + struct.pack("<I", len(hj)) + hj + b"".join(chunks)

    def landscape(self, step: int, size: int, z: int = 0, tx: int = 0, ty: int = 0) -> bytes:
        """The landscape PNG of tile (z, tx, ty) of the step's bounds (z = 0: the whole map)."""
        key = (step, size, z, tx, ty)
        if key not in self._png:
            b = self.data[step]["bounds"]
            side = (b[2] - b[0]) / 2 ** z
            x0, y1 = b[0] + tx * side, b[3] - ty * side
            px = (np.arange(size) + 0.5) / size * side
            gx, gy = np.meshgrid(x0 + px, y1 - px)
            d2 = (gx[..., None] - self.centers[:, 0]) ** 2 + (gy[..., None] - self.centers[:, 1]) ** 2
            cls = d2.argmin(-1)
            rgb = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in COLORS], float)
            self._png[key] = png_bytes(rgb[cls] * 0.45 + 255 * 0.55)
        return self._png[key]


class LongRun(SyntheticRun):
    """A run of many logged steps (few points each) with the training routes' per-step overview and alarms: accuracy
    rising then dropping at two thirds of the run, a separation curve, neighbour change with spikes, displacement on
    every other step (as if half were projected), and an alarm at each spike."""

    def __init__(self, name: str, steps: int, n: int = 500, seed: int = 7):  # noqa: D107 - no landscapes prerendered
        rng = np.random.default_rng(seed)
        self.name, self.n, self.steps = name, n, list(range(steps))
        self.labels = (np.arange(n) % 10).astype(np.int32)
        self.split = np.ones(n, np.uint8)
        self.pos = rng.normal(0, 3, (n, 2)).astype(np.float32)
        t = np.linspace(0, 1, steps)
        acc = 0.1 + 0.85 * (1 - np.exp(-6 * t))
        acc[int(steps * 2 / 3):] -= 0.4
        self.spikes = sorted(int(x) for x in rng.choice(np.arange(5, steps), size=min(12, steps - 5), replace=False))
        change = 0.03 + 0.01 * rng.random(steps)
        change[self.spikes] = 0.4
        change[0] = np.nan
        displacement = np.where(np.arange(steps) % 2 == 0, 0.02 + 0.01 * rng.random(steps), np.nan)
        self.overview = {"accuracy": acc.round(5).tolist(), "mean_separation": (1 + 2 * t).round(5).tolist(),
                         "neighbour_change": [None if np.isnan(v) else round(float(v), 5) for v in change],
                         "displacement": [None if np.isnan(v) else round(float(v), 5) for v in displacement],
                         "watched": ["test"] * steps}
        self.alarms = [{"step": s, "kind": "jump", "source": "features", "classes": [], "class_names": [], "layers": [],
                        "value": 0.4, "threshold": 0.1, "reason": f"the representation jumped at step {s}"}
                       for s in self.spikes]
        self.alarms.insert(0, {"step": int(steps * 2 / 3), "kind": "forgetting", "source": "features", "classes": [0],
                               "class_names": ["0"], "layers": [], "value": 0.4, "threshold": 0.2,
                               "reason": "accuracy of '0' fell sharply"})
        self.alarms.sort(key=lambda a: a["step"])
        self._png: dict = {}

    def projection(self, step: int) -> bytes:
        """The same small map at every step (built on request: a thousand steps are not precomputed)."""
        self.data = {step: {"x": self.pos[:, 0], "y": self.pos[:, 1], "pred": self.labels,
                            "conf": np.ones(self.n, np.float32), "bounds": [-12.0, -12.0, 12.0, 12.0]}}
        return super().projection(step)

    def landscape(self, step: int, size: int, z: int = 0, tx: int = 0, ty: int = 0) -> bytes:
        key = (size, z, tx, ty)  # the same landscape at every step
        if key not in self._png:
            self._png[key] = png_bytes(np.full((size, size, 3), 235.0))
        return self._png[key]

    def stepstats(self) -> dict:
        return {"run": self.name, "steps": self.steps, "classes": [str(i) for i in range(10)], "skipped_steps": [],
                "pending_steps": 0, "overview": self.overview, "detail": {"steps": []}, "map": {"steps": []}}

    def alarms_body(self) -> dict:
        return {"run": self.name, "steps": self.steps, "classes": [str(i) for i in range(10)], "skipped_steps": [],
                "pending_steps": 0, "alarms": self.alarms, "counts": {}, "rules": {}}


def make_server(runs: dict) -> ThreadingHTTPServer:
    sha = __import__("base64").b64encode(hashlib.sha256(ENTRY_SCRIPT.encode()).digest()).decode()
    csp = ("default-src 'self';img-src 'self' data: blob:;style-src 'self' 'unsafe-inline';connect-src 'self';"
           f"script-src 'self' 'unsafe-eval' 'sha256-{sha}'")  # as TensorBoard's CSP

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, code, body, ctype, extra=()):
            body = body.encode() if isinstance(body, str) else body
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            pts = json.loads(self.rfile.read(n) or b"[]")
            self.reply(200, json.dumps({"probs": [[0.1] * 10 for _ in pts], "pred": [0 for _ in pts]}),
                       "application/json")

        def do_GET(self):
            u = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(u.query).items()}
            if u.path == "/data/plugin_entry.html":
                html = f'<!DOCTYPE html><head><base href="plugin/dvi/" /></head><body><script type="module">' \
                       f'{ENTRY_SCRIPT}</script></body>'
                return self.reply(200, html, "text/html", [("Content-Security-Policy", csp)])
            m = re.match(r"^/data/plugin/dvi/(.*)$", u.path)
            rest = m.group(1) if m else ""
            run = runs.get(q.get("run", ""))
            if rest == "runs":
                return self.reply(200, json.dumps({"runs": [r.info() for r in runs.values()]}), "application/json")
            if rest == "projection" and run:
                return self.reply(200, run.projection(int(q["step"])), "application/octet-stream")
            if rest == "landscape" and run and "box" in q:  # viewport images are not served by this stand-in:
                return self.reply(404, json.dumps({"error": "no viewport images here"}), "application/json")
            if rest == "landscape" and run:
                tile = [int(q.get(k, 0)) for k in ("z", "tx", "ty")]
                return self.reply(200, run.landscape(int(q["step"]), int(q.get("size", 256)), *tile), "image/png")
            if rest == "stepstats" and isinstance(run, LongRun):
                return self.reply(200, json.dumps(run.stepstats()), "application/json")
            if rest == "alarms" and isinstance(run, LongRun):
                return self.reply(200, json.dumps(run.alarms_body()), "application/json")
            if rest in ("stepstats", "alarms", "layers") and run:
                return self.reply(404, json.dumps({"error": "no step statistics for this synthetic run"}),
                                  "application/json")
            if rest == "metrics" and run:
                m = {"nn": 0.5, "boundary": 0.6, "ppr": 0.99, "ccr": 0.01, "temporal": 0.3, "trustworthiness": 0.95}
                return self.reply(200, json.dumps({"run": run.name, "step": int(q["step"]), "train": m, "test": m}),
                                  "application/json")
            path = os.path.realpath(os.path.join(FRONTEND, rest))
            if m and path.startswith(os.path.realpath(FRONTEND) + os.sep) and os.path.isfile(path):
                ctype = {".js": "text/javascript", ".css": "text/css"}.get(os.path.splitext(path)[1], "text/plain")
                with open(path, "rb") as f:
                    return self.reply(200, f.read(), ctype)
            self.reply(404, json.dumps({"error": "not found"}), "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


PLAY_JS = """() => new Promise((resolve) => {
  const deltas = []; let last = null; let lastFrames = __dvi.frames; const t0 = performance.now();
  document.querySelector('[data-testid=play]').click();
  function tick(now) {
    const animating = __dvi.panels[0].animating;
    if (__dvi.frames !== lastFrames && animating) { if (last !== null) deltas.push(now - last); last = now; }
    else if (!animating) last = null;
    lastFrames = __dvi.frames;
    if (__dvi.playing || performance.now() - t0 < 300) requestAnimationFrame(tick);
    else resolve({deltas, total_ms: performance.now() - t0});
  }
  requestAnimationFrame(tick);
})"""

SLIDER_JS = """(index) => new Promise((resolve) => {
  const slider = document.querySelector('[data-testid=step-slider]');
  const target = __dvi.steps[index]; const frames0 = __dvi.frames; const t0 = performance.now();
  if (__dvi.panels[0].step === target && !__dvi.panels[0].animating) return resolve(0);  // nothing to redraw
  slider.value = String(index);
  slider.dispatchEvent(new Event('input', {bubbles: true}));
  function check() {
    const p = __dvi.panels[0];
    if (p.step === target && p.landscape && __dvi.frames > frames0 && !p.animating) resolve(performance.now() - t0);
    else requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
})"""

ZOOM_JS = """(factor) => new Promise((resolve) => {
  const canvas = document.querySelector('[data-testid=map-canvas]');
  const overlay = canvas.nextElementSibling;
  const r = canvas.getBoundingClientRect();
  performance.clearResourceTimings();  // the tile requests' timings are read after the zoom (tile_timing)
  const t0 = performance.now();
  const z0 = __dvi.panels[0].tiles.z;
  overlay.dispatchEvent(new WheelEvent('wheel', {deltaY: -Math.log(factor) / 0.0015, clientX: r.left + r.width / 2,
    clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));
  let sharp = null;  // {ms, by}: the first frame the visible map was sharp at the new level (viewport image or tiles)
  function check() {
    const t = __dvi.panels[0].tiles;
    const ms = performance.now() - t0;
    const isSharp = t.sharp === undefined ? t.wanted > 0 && t.drawn === t.wanted : t.sharp;  // a tab without viewports
    if (!sharp && t.z > z0 && isSharp) sharp = {ms, by: t.firstSharp ? t.firstSharp.by : null};
    if (sharp && t.wanted > 0 && t.drawn === t.wanted) resolve({t0, ms: sharp.ms, by: sharp.by, tiles_ms: ms, z: t.z,
      tiles: t.wanted, sharpness: t.pxPerUnit / t.overviewPxPerUnit});
    else if (ms > 20000) resolve({ms: NaN, z: t.z, tiles: t.wanted, sharpness: null});
    else requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
})"""

ZOOM_FACTS = ("ms", "by", "tiles_ms", "probe_requests", "probe_first_request_ms", "probe_last_answer_ms",
              "viewport_requests", "viewport_first_request_ms", "viewport_last_answer_ms", "tile_requests",
              "first_request_ms", "last_answer_ms")
"""What each zoom records: sharp (``ms``, by a viewport image or the tiles), every tile drawn (``tiles_ms``), and
the requests' timings."""

TILE_TIMING_JS = """([t0, pattern]) => performance.getEntriesByType('resource')
  .filter((e) => new RegExp(pattern).test(e.name) && e.startTime >= t0)
  .map((e) => [e.startTime - t0, e.responseEnd - t0])"""


def tile_timing(page, zoom: dict) -> dict:
    """Where a zoom's time went, from the browser's resource timings of its requests (ms after the wheel event): the
    centre tile asked for cached-only (the probe), the viewport image's halves, the tiles; each kind's first request
    sent and last answer received; the rest is decoding and drawing."""
    out: dict = {}
    for name, pattern in (("tile", "^(?!.*cached=1).*[?&]z=[1-9]"), ("viewport", "[?&]box="), ("probe", "cached=1")):
        spans = page.evaluate(TILE_TIMING_JS, [zoom["t0"], pattern]) if "t0" in zoom else []
        prefix = "" if name == "tile" else f"{name}_"
        out[f"{name}_requests"] = len(spans)
        if spans:
            out[f"{prefix}first_request_ms"] = round(min(a for a, _ in spans), 1)
            out[f"{prefix}last_answer_ms"] = round(max(b for _, b in spans), 1)
    return out


RESET_JS = """() => document.querySelector('[data-testid=map-canvas]').nextElementSibling.dispatchEvent(
  new MouseEvent('dblclick', {bubbles: true}))"""


TIMEBAR_READY = "window.__dvi && __dvi.timeline && __dvi.timeline.steps > 0 && __dvi.overview.renders > 0"

# From an action to the next frame after the store's reaction drew the time bar (the chrome renders in a microtask).
NEXT_FRAME_JS = """(act) => new Promise((resolve) => {
  const t0 = performance.now();
  const before = __dvi.overview.renders;
  if (act === 'slider') {
    const slider = document.querySelector('[data-testid=step-slider]');
    slider.value = String((Number(slider.value) + 37) % (Number(slider.max) + 1));
    slider.dispatchEvent(new Event('input', {bubbles: true}));
  } else {
    const el = document.querySelector('[data-testid=overview]');
    const r = el.getBoundingClientRect();
    const at = (type, f) => el.dispatchEvent(new PointerEvent(type, {bubbles: true, pointerId: 1, button: 0,
      clientX: r.left + f * r.width, clientY: r.top + r.height / 2}));
    if (act === 'zoom') { at('pointerdown', 0.3); at('pointermove', 0.5); at('pointerup', 0.6); }
    else el.dispatchEvent(new MouseEvent('dblclick', {bubbles: true}));
  }
  requestAnimationFrame(() => resolve({ms: performance.now() - t0, rendered: __dvi.overview.renders > before}));
})"""


def measure_timebar(browser, base: str, run: str, repeats: int = 12) -> dict:
    """The 1,000-step time bar: first draw, redraws, zoom and un-zoom, slider moves (ms, to the next frame)."""
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    page.goto(f"{base}/data/plugin_entry.html?name=dvi&prefetch=0")
    page.wait_for_function(TIMEBAR_READY, timeout=120000)
    if page.evaluate("__dvi.run") != run:
        page.select_option("[data-testid=run-select]", run)
        page.wait_for_function(f"__dvi.run === {json.dumps(run)} && __dvi.timeline.run === {json.dumps(run)}",
                               timeout=120000)
    time.sleep(0.5)
    first = page.evaluate("__dvi.overview")
    redraw = [page.evaluate("__dvi.renderOverview()") for _ in range(repeats)]
    zoom, unzoom, slider = [], [], []
    for _ in range(repeats):
        z = page.evaluate(NEXT_FRAME_JS, "zoom")
        assert z["rendered"] and page.evaluate("__dvi.zoom") is not None, "the drag did not zoom the time bar"
        zoom.append(z["ms"])
        u = page.evaluate(NEXT_FRAME_JS, "unzoom")
        assert u["rendered"] and page.evaluate("__dvi.zoom") is None, "the double-click did not show every step"
        unzoom.append(u["ms"])
        slider.append(page.evaluate(NEXT_FRAME_JS, "slider")["ms"])
        time.sleep(0.05)
    out = {"run": run, "steps": len(page.evaluate("__dvi.steps")), "alarms": page.evaluate("__dvi.timeline.alarms"),
           "marks": page.evaluate("__dvi.overview.marks"), "columns": page.evaluate("__dvi.overview.columns"),
           "strip_px": page.evaluate("document.querySelector('[data-testid=overview]').clientWidth"),
           "tick_elements": page.evaluate("document.querySelectorAll('[data-testid=step-ticks] > span').length"),
           "first_draw_ms": first["lastMs"], "redraw_ms_median": float(np.median(redraw)),
           "redraw_ms_p95": float(np.percentile(redraw, 95)), "zoom_ms_median": float(np.median(zoom)),
           "zoom_ms_p95": float(np.percentile(zoom, 95)), "unzoom_ms_median": float(np.median(unzoom)),
           "unzoom_ms_p95": float(np.percentile(unzoom, 95)), "slider_ms_median": float(np.median(slider)),
           "slider_ms_p95": float(np.percentile(slider, 95)), "repeats": repeats}
    page.close()
    return out


def open_tab(browser, base: str, run: str, renderer: str, prefetch: bool = True):
    page = browser.new_page(viewport={"width": 1400, "height": 860})
    page.goto(f"{base}/data/plugin_entry.html?name=dvi&renderer={renderer}&prefetch={int(prefetch)}")
    page.wait_for_function("window.__dvi && __dvi.ready", timeout=120000)
    if page.evaluate("__dvi.run") != run:
        page.select_option("[data-testid=run-select]", run)
        page.wait_for_function(f"__dvi.run === {json.dumps(run)} && __dvi.ready", timeout=120000)
    return page


def first_visits(browser, base: str, run: str, renderer: str) -> list[float]:
    """Slider moves to steps the tab never fetched (background prefetch off): fetch, parse, decode, upload, draw."""
    page = open_tab(browser, base, run, renderer, prefetch=False)
    steps = page.evaluate("__dvi.steps")
    out = [page.evaluate(SLIDER_JS, i) for i in range(len(steps) - 1)]
    page.close()
    return out


def tiles_ahead(base: str, run: str, step: int) -> str:
    """Where the plugin's background job stands with ``step``'s tile pyramid: queued, running, or done (neither)."""
    runs = json.loads(urllib.request.urlopen(base + "/data/plugin/dvi/runs").read())["runs"]
    ahead = next(r for r in runs if r["run"] == run)["status"].get("tiles_ahead") or {}
    return "running" if ahead.get("running") == step else "queued" if step in ahead.get("queued", []) else "done"


def wait_for_tiles_ahead(base: str, run: str, step: int, timeout: float = 600.0) -> float:
    """Seconds until the plugin reports ``step``'s tile pyramid rendered (the tab showing the step meanwhile)."""
    t0 = time.time()
    while tiles_ahead(base, run, step) != "done":
        if time.time() - t0 > timeout:
            raise TimeoutError(f"step {step}'s tiles were not rendered ahead within {timeout:.0f} s")
        time.sleep(0.25)
    return time.time() - t0


def cold_zooms(browser, base: str, run: str, renderer: str, count: int = 3) -> list[dict]:
    """Zoom 4x right after a step is first drawn (prefetch off; 0.3 s after the draw, before the plugin renders any
    tile ahead: it waits 0.5 s after a user's last landscape request): every visible tile is rendered on demand.
    Runs first, on a fresh TensorBoard, on even steps (the later measurements zoom into odd ones)."""
    page = open_tab(browser, base, run, renderer, prefetch=False)
    steps = page.evaluate("__dvi.steps")
    out = []
    for k in range(count):
        index = (2 * k + 2) % len(steps)
        page.evaluate(SLIDER_JS, index)
        page.wait_for_function("__dvi.ready", timeout=120000)
        time.sleep(0.3)
        state = tiles_ahead(base, run, steps[index])
        z = page.evaluate(ZOOM_JS, 4.0)
        out.append({**z, **tile_timing(page, z), "step": steps[index], "tiles_ahead_at_zoom": state})
        page.evaluate(RESET_JS)
        time.sleep(0.3)
    page.close()
    return out


def measure(browser, base: str, run: str, renderer: str, moves: int, real: bool = False) -> dict:
    cold_zoom = cold_zooms(browser, base, run, renderer) if real else []
    cold = first_visits(browser, base, run, renderer)
    page = open_tab(browser, base, run, renderer)
    steps = page.evaluate("__dvi.steps")
    # As a user meets it: the tab has been open a moment and prefetched the projected steps in the background.
    page.wait_for_function(f"__dvi.fetches.projectionFetches >= {len(steps)} && "
                           f"__dvi.fetches.landscapeFetches >= {len(steps)}", timeout=120000)
    time.sleep(0.5)
    visits = [page.evaluate(SLIDER_JS, (k * 3 + 1) % len(steps)) for k in range(moves)]  # never the same step twice
    page.wait_for_function("__dvi.ready", timeout=120000)
    page.evaluate(SLIDER_JS, 0)
    play = page.evaluate(PLAY_JS)
    d = np.array(play["deltas"]) if play["deltas"] else np.array([np.nan])
    page.wait_for_function("__dvi.ready", timeout=120000)
    time.sleep(0.3)
    zooms, waits = [], []
    for k in range(3):
        page.evaluate(SLIDER_JS, (2 * k + 1) % len(steps))  # another step each time: its tiles are not in the tab
        page.wait_for_function("__dvi.ready", timeout=120000)
        if real:  # as a user meets it: the tab showing the step while the plugin renders its tiles ahead
            waits.append(wait_for_tiles_ahead(base, run, steps[(2 * k + 1) % len(steps)]))
        time.sleep(0.3)
        z = page.evaluate(ZOOM_JS, 4.0)
        zooms.append({**z, **tile_timing(page, z)})
        page.evaluate(RESET_JS)
        time.sleep(0.3)
    zoom_ms = [z["ms"] for z in zooms]
    out = {"run": run, "renderer": page.evaluate("__dvi.renderer"), "points": page.evaluate("__dvi.pointsDrawn"),
           "steps": len(steps), "frame_ms_median": float(np.median(d)), "frame_ms_p95": float(np.percentile(d, 95)),
           "fps_median": float(1000 / np.median(d)), "animated_frames": int(len(play["deltas"])),
           "slider_ms_p95": float(np.percentile(visits, 95)), "slider_ms_median": float(np.median(visits)),
           "slider_uncached_ms_p95": float(np.percentile(cold, 95)),
           "slider_uncached_ms_median": float(np.median(cold)),
           "zoom4x_sharp_ms_median": float(np.median(zoom_ms)), "zoom4x_sharp_ms_max": float(np.max(zoom_ms)),
           "zoom4x_tile_level": zooms[0]["z"], "zoom4x_tiles": zooms[0]["tiles"],
           "zoom4x_tile_sharpness_vs_overview": zooms[0]["sharpness"],
           "zoom4x_timings": [{k: z.get(k) for k in ZOOM_FACTS} for z in zooms],
           "projection_fetches": page.evaluate("__dvi.fetches.projectionFetches")}
    if real:
        cold_ms = [z["ms"] for z in cold_zoom]
        out.update({"zoom4x_waited_for_tiles_ahead_s": [round(w, 1) for w in waits],
                    "zoom4x_cold_ms_median": float(np.median(cold_ms)), "zoom4x_cold_ms_max": float(np.max(cold_ms)),
                    "zoom4x_cold": cold_zoom})
    page.close()
    return out


def start_tensorboard(logdir: str, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """``dvi-project`` on ``logdir`` (what is not cached yet: projections, landscape overviews, the newest step's
    tile pyramid), then a real ``tensorboard`` on it, started as the tests start one; the process and its base URL."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from helpers import start_tensorboard as start  # the tests' way of starting a real tensorboard

    subprocess.run([os.path.join(os.path.dirname(sys.executable), "dvi-project"), "--logdir", logdir, "--threads", "1"],
                   check=True)
    return start(logdir, timeout=timeout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running TensorBoard (default: a synthetic server over the HTTP contract)")
    ap.add_argument("--logdir", help="run dvi-project on this logdir, then measure a real tensorboard started on it")
    ap.add_argument("--describe", help="how the results name the data (default: the URL or the logdir's path)")
    ap.add_argument("--points", type=int, nargs="+", default=[50000, 10000])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--moves", type=int, default=8)
    ap.add_argument("--renderers", nargs="+", default=["webgl", "canvas2d"])
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--name", default="frontend", help="results file stem under benchmarks/results/")
    ap.add_argument("--timebar-steps", type=int, default=1000, help="steps of the long-log time bar run (0: skip)")
    ap.add_argument("--only-timebar", action="store_true",
                    help="measure only the long-log time bar; the other results are kept from the results file")
    args = ap.parse_args()
    load_start = [round(x, 2) for x in os.getloadavg()]
    from playwright.sync_api import sync_playwright

    server = tensorboard = None
    long_name = f"long{args.timebar_steps}"
    if args.logdir:
        tensorboard, args.url = start_tensorboard(args.logdir)
    if args.url:
        base = args.url.rstrip("/")
        runs_to_measure = [json.loads(__import__("urllib.request").request.urlopen(
            base + "/data/plugin/dvi/runs").read())["runs"][0]["run"]]
    else:
        points = [] if args.only_timebar else args.points
        runs = {f"n{n}": SyntheticRun(f"n{n}", n, args.steps, seed=i) for i, n in enumerate(points)}
        if args.timebar_steps:
            runs[long_name] = LongRun(long_name, args.timebar_steps)
        server = make_server(runs)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        runs_to_measure = [r for r in runs if r != long_name]
    results, timebar = [], None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS)
        version = browser.version
        for run in runs_to_measure:
            for renderer in args.renderers:
                r = measure(browser, base, run, renderer, args.moves, real=bool(args.url))
                print(json.dumps(r))
                results.append(r)
        if server and args.timebar_steps:
            timebar = measure_timebar(browser, base, long_name)
            print(json.dumps(timebar))
        browser.close()
    if server:
        server.shutdown()
    if tensorboard is not None:
        tensorboard.terminate()
        tensorboard.wait(30)
    env = {"chromium": version, "gpu": "none: --disable-gpu, WebGL on SwiftShader (software)",
           "cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "viewport": "1400x860, device pixel ratio 1",
           "data": "synthetic (http_api.md contract)" if server else args.describe or
           (f"a real `tensorboard` on {os.path.abspath(args.logdir)}" if args.logdir else base),
           "load_average": [round(x, 2) for x in os.getloadavg()], "load_average_start": load_start}
    write_results(args.name, env, results, timebar, keep_others=args.only_timebar)


def write_results(name: str, env: dict, results: list, timebar: dict | None, keep_others: bool) -> None:
    """Writes benchmarks/results/<name>.json and .md; with `keep_others`, the map results come from the old file."""
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    old = {}
    if keep_others and os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        results = old.get("results", [])
    body = {"environment": old.get("environment", env), "results": results}
    if timebar is not None:
        body["timebar"] = {"environment": env, **timebar}
    elif old.get("timebar"):
        body["timebar"] = old["timebar"]
    with open(path, "w") as f:
        json.dump(body, f, indent=2)
    lines = map_table(body["environment"], results)
    md = os.path.join(RESULTS, f"{name}.md")
    if keep_others and os.path.exists(md):  # the map results' text as it was written with them
        with open(md) as f:
            lines = f.read().split("\n## Long-log time bar")[0].rstrip("\n").split("\n")
    lines += timebar_table(body.get("timebar"))
    with open(md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def map_table(env: dict, results: list) -> list[str]:
    server = env["data"].startswith("synthetic")
    lines = ["# Frontend benchmark (headless Chromium)", "",
             f"Chromium {env['chromium']}, {env['gpu']}, {env['cpu_count']} CPUs, {env['viewport']}; data: "
             f"{env['data']}. Frame time is measured while playing (interpolation of positions, landscape "
             "cross-fade). Slider: from the `input` event to the first frame showing the new step with its landscape; "
             "`slider` is as a user meets it (the tab open a moment, projected steps prefetched in the background), "
             "`uncached` is a step never fetched before (prefetch off: fetch, parse, decode, upload; "
             + ("the overview landscape and level-3 tiles rendered ahead by the stand-in server). " if server else
                "overviews rendered ahead by `dvi-project` or the plugin's background job, as a projected step's "
                "are). ")
             + "Zoom 4x sharp: from the wheel event until the visible map is first drawn at the new level's "
             "resolution, by a viewport image (the visible part rendered as one image, asked for when the level's "
             "tiles are not known to be rendered) or by every visible tile; the level's pixels per data unit relative "
             "to the overview's in the last column"
             + ("." if server else "; as a user meets it: after the tab has shown the step while the plugin "
                "rendered the step's tiles ahead in the background (the wait is below, with the cold number).")
             + (f" Load average while measuring: {_loads(env)}." if env.get("load_average") else ""), "",
             "Targets: slider p95 <= 150 ms at 10k points; zoom 4x sharp within 500 ms; >= 10 fps at 50k points.", "",
             "| points | renderer | fps | frame median (ms) | frame p95 (ms) | slider p95 (ms) | uncached p95 (ms) | "
             "zoom 4x sharp median / max (ms) | tiles (level) | tile sharpness |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['points']:,} | {r['renderer']} | {r['fps_median']:.1f} | {r['frame_ms_median']:.1f} | "
                     f"{r['frame_ms_p95']:.1f} | {r['slider_ms_p95']:.1f} | {r['slider_uncached_ms_p95']:.1f} | "
                     f"{r['zoom4x_sharp_ms_median']:.0f} / {r['zoom4x_sharp_ms_max']:.0f} | "
                     f"{r['zoom4x_tiles']} ({r['zoom4x_tile_level']}) | "
                     f"{r['zoom4x_tile_sharpness_vs_overview'] or 0:.0f}x |")
    for r in results:
        if "zoom4x_cold_ms_median" not in r:
            continue
        states = ", ".join(f"step {c['step']}: {c['tiles_ahead_at_zoom']}" for c in r["zoom4x_cold"])
        waits = ", ".join(f"{w:.1f}" for w in r["zoom4x_waited_for_tiles_ahead_s"])
        lines += ["", f"Zoom 4x at {r['points']:,} points ({r['renderer']}), two ways:", "",
                  f"- **tiles rendered ahead** (the table): {r['zoom4x_sharp_ms_median']:.0f} ms median, "
                  f"{r['zoom4x_sharp_ms_max']:.0f} ms max (sharp by {_by(r['zoom4x_timings'])}; every tile drawn: "
                  f"{_median(r['zoom4x_timings'], 'tiles_ms')} ms median). Before each zoom the tab showed the step "
                  "until the plugin "
                  f"reported its tile pyramid rendered (`status.tiles_ahead` in `runs`): waited {waits} s after "
                  "the slider move (the background job renders the pyramids of the steps the tab drew, in the "
                  "order it drew them, the newest first; a step a user zooms into goes to the front).",
                  f"- **cold, rendered on demand**: {r['zoom4x_cold_ms_median']:.0f} ms median, "
                  f"{r['zoom4x_cold_ms_max']:.0f} ms max (sharp by {_by(r['zoom4x_cold'])}): zoomed 0.3 s after a "
                  f"step was first drawn, none of its tiles rendered ahead (the step's pyramid at the zoom: {states}); "
                  f"then its {r['zoom4x_cold'][0]['tiles']} tiles, rendered by the plugin while rendering ahead "
                  f"pauses, all drawn at {_median(r['zoom4x_cold'], 'tiles_ms')} ms median.",
                  "- where the time goes (medians, ms after the wheel event; the browser's resource timings): "
                  + "; ".join(f"{name}: {text}" for name, text in (
                      ("rendered ahead", _spans(r["zoom4x_timings"])), ("cold", _spans(r["zoom4x_cold"])))
                      if text) + "."]
    lines += ["", "Measured without a GPU: WebGL runs on Chromium's software rasterizer (SwiftShader), so these "
              "frame times are an upper bound; hardware WebGL was not measured here."]
    return lines


def _spans(zooms: list[dict]) -> str | None:
    """The median request timeline of zooms: viewport images requested and answered, then tiles; sharp; None when
    no request was timed."""
    parts = []
    names = {"probe": "centre tile asked for if rendered", "viewport": "viewport halves", "tile": "tiles"}
    for kind, prefix in (("probe", "probe_"), ("viewport", "viewport_"), ("tile", "")):
        timed = [z for z in zooms if z.get(f"{kind}_requests")]
        if timed:
            first = float(np.median([z[f"{prefix}first_request_ms"] for z in timed]))
            last = float(np.median([z[f"{prefix}last_answer_ms"] for z in timed]))
            parts.append(f"{names[kind]}: requested at {first:.0f}, last answered at {last:.0f} ({len(timed)} of "
                         f"{len(zooms)} zooms)")
    if not parts:
        return None
    return ", ".join(parts) + f"; sharp at {_median(zooms, 'ms')}, every tile drawn at {_median(zooms, 'tiles_ms')}"


def _median(zooms: list[dict], key: str) -> str:
    values = [z[key] for z in zooms if z.get(key) is not None]
    return f"{float(np.median(values)):.0f}" if values else "?"


def _by(zooms: list[dict]) -> str:
    """How the zooms first got sharp: 'a viewport image in 3 of 3', ..."""
    counts = collections.Counter(z.get("by") or "tiles" for z in zooms)
    names = {"viewport": "a viewport image", "tiles": "the tiles"}
    return ", ".join(f"{names.get(k, k)} in {n} of {len(zooms)}" for k, n in counts.most_common())


def _loads(env: dict) -> str:
    """'1.2, 1.0, 0.9 (at the start: ...)': the load averages at the end of the run and, if recorded, its start."""
    text = ", ".join(f"{x:.1f}" for x in env["load_average"])
    if env.get("load_average_start"):
        text += " at the end, " + ", ".join(f"{x:.1f}" for x in env["load_average_start"]) + " at the start"
    return text


def timebar_table(t: dict | None) -> list[str]:
    if not t:
        return []
    env = t["environment"]
    load = ", ".join(f"{x:.1f}" for x in env.get("load_average", []))
    return ["", f"## Long-log time bar ({t['steps']:,} logged steps)", "",
            f"Chromium {env['chromium']}, {env['cpu_count']} CPUs (load average {load} while measuring), "
            f"{env['viewport']}, {env['date']}; a synthetic run served over the `runs`, `stepstats` and `alarms` "
            f"contract ({t['alarms']} alarms). The overview strip ({t['strip_px']} px wide) summarises the four series "
            f"to one column per pixel ({t['columns']} columns drawn) with {t['marks']} alarm marks; the slider's "
            f"readiness ticks take {t['tick_elements']} element(s) (merged segments). `first draw` and `redraw` time "
            "the strip's own render "
            "(series and marks); `zoom` (a drag across the strip), `every step` (a double-click) and `slider` (an "
            f"`input` event) run from the event to the next animation frame, {t['repeats']} times each.", "",
            "Target: the time bar of a 1,000-step run renders in <= 100 ms.", "",
            "| first draw (ms) | redraw median / p95 (ms) | zoom median / p95 (ms) | every step median / p95 (ms) | "
            "slider median / p95 (ms) |", "|---:|---:|---:|---:|---:|",
            f"| {t['first_draw_ms']:.1f} | {t['redraw_ms_median']:.1f} / {t['redraw_ms_p95']:.1f} | "
            f"{t['zoom_ms_median']:.1f} / {t['zoom_ms_p95']:.1f} | {t['unzoom_ms_median']:.1f} / "
            f"{t['unzoom_ms_p95']:.1f} | {t['slider_ms_median']:.1f} / {t['slider_ms_p95']:.1f} |"]


if __name__ == "__main__":
    main()
