"""What the browser tests share: Chromium's flags, small HTTP helpers, and `Tab`, the DVI tab inside TensorBoard."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import urllib.request

import numpy as np
import pytest
from helpers import get

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
]
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(message: str):
    """Chromium or Playwright missing: a failure in CI (these tests must run there), a skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI=true and the browser tests cannot run: {message}")
    pytest.skip(message)


def chromium_path() -> str:
    path = os.environ.get("DVI_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        unavailable("Debian's chromium is not installed (make browser-deps)")
    return path


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def runs_by_name(url: str) -> dict:
    status, body = get(url + "/data/plugin/dvi/runs")
    return {r["run"]: r for r in json.loads(body)["runs"]} if status == 200 else {}


def projection(url: str, run: str, step: int) -> dict:
    status, body = get(f"{url}/data/plugin/dvi/projection?run={run}&step={step}")
    assert status == 200, f"projection {run}/{step}: {status} {body[:300]!r}"
    return json.loads(body)


def png_array(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


def hex_rgb(color: str) -> np.ndarray:
    c = color.lstrip("#")
    return np.array([int(c[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.int16)


class Tab:
    """The TensorBoard page and the DVI tab's iframe inside it."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, hash_: str = "#dvi") -> Tab:
        self.page.goto(self.url + "/" + hash_)
        return self.attach()

    def attach(self) -> Tab:
        deadline = time.time() + 60
        self.frame = None
        while time.time() < deadline and self.frame is None:
            # TensorBoard's plugin iframes are not always listed in page.frames: go through the elements.
            for handle in self.page.query_selector_all("iframe"):
                frame = handle.content_frame()
                if frame is not None and "plugin_entry.html?name=dvi" in frame.url:
                    self.frame = frame
            time.sleep(0.2)
        assert self.frame is not None, "the DVI tab's iframe (data/plugin_entry.html?name=dvi) never appeared"
        self.wait_ready()
        return self

    def js(self, expr: str, arg=None):
        return self.frame.evaluate(expr, arg)

    def wait(self, expr: str, timeout: float = 30.0):
        self.frame.wait_for_function(expr, timeout=timeout * 1000)

    def wait_ready(self, timeout: float = 60.0):
        self.wait("window.__dvi && __dvi.ready", timeout)

    def el(self, testid: str):
        return self.frame.locator(f"[data-testid={testid}]")

    def goto_step_index(self, index: int):
        self.el("step-slider").fill(str(index))
        self.wait(f"__dvi.step === __dvi.steps[{index}]")
        self.wait_ready()

    def page_point(self, x: float, y: float) -> tuple[float, float]:
        """Converts coordinates inside the iframe to page coordinates (for page.mouse)."""
        box = self.frame.frame_element().bounding_box()
        return box["x"] + x, box["y"] + y

    def canvas_pixels(self, panel: int = 0) -> np.ndarray:
        self.page.mouse.move(0, 0)  # no hover marker or tooltip in the picture
        return png_array(self.el("map-canvas").nth(panel).screenshot())
