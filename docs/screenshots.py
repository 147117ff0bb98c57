"""Take the README's screenshots of the DVI tab on the demo runs (single run, a comparison, a zoomed map).

    python docs/screenshots.py --logdir demo_logs

Projects the demo logdir first if needed (`dvi-project`), starts a real `tensorboard`, drives Debian's Chromium
with Playwright and writes docs/tab_single.png, docs/tab_compare.png and docs/tab_zoom.png.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from helpers import start_tensorboard  # noqa: E402 - the tests' way of starting a real tensorboard

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def dvi_frame(page):
    for _ in range(300):
        for handle in page.query_selector_all("iframe"):
            frame = handle.content_frame()
            if frame is not None and "plugin_entry.html?name=dvi" in frame.url:
                return frame
        time.sleep(0.2)
    raise RuntimeError("the DVI iframe never appeared")


def shoot(browser, url: str, hash_: str, path: str, select: int | None = None, zoom: float | None = None) -> None:
    """One screenshot at 1440 x 900: `select` a sample (by id), then show the whole map, or zoom in on the sample."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url + "/" + hash_)
    frame = dvi_frame(page)
    frame.wait_for_function("window.__dvi && __dvi.ready", timeout=120_000)
    time.sleep(2.0)
    if select is not None:
        frame.locator("[data-testid=find-id]").fill(str(select))
        frame.locator("[data-testid=find-id]").press("Enter")  # selects and centres the sample
        time.sleep(1.0)
        if zoom is None:
            canvas = frame.locator("[data-testid=map-canvas]").first
            canvas.dblclick(position={"x": 5, "y": 5}, force=True)  # the whole map again (the selection stays)
        else:
            geo = frame.evaluate("__dvi.geometry(0)")
            box = frame.frame_element().bounding_box()
            page.mouse.move(box["x"] + geo["left"] + geo["width"] / 2, box["y"] + geo["top"] + geo["height"] / 2)
            page.mouse.wheel(0, -math.log(zoom / 2) / 0.0015)  # finding zoomed 2x already
        frame.wait_for_function("__dvi.panels.every(p => p.tiles.drawn === p.tiles.wanted)", timeout=120_000)
        time.sleep(2.0)
    page.mouse.move(0, 0)
    page.screenshot(path=path)
    page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="demo_logs")
    parser.add_argument("--step", type=int, default=11)
    parser.add_argument("--sample", type=int, default=None, help="sample id to select (default: a flipped one)")
    parser.add_argument("--skip-project", action="store_true", help="do not project the logdir first")
    args = parser.parse_args()
    from tensorboard_plugin_dvi import cli, storage

    if not args.skip_project:
        cli.main(["--logdir", args.logdir])
    if args.sample is None:
        records, _ = storage.RunStore(os.path.join(args.logdir, "noisy")).read_run()
        flags = storage.RunStore(os.path.join(args.logdir, "noisy")).load_step(records[max(records)]).flags
        args.sample = int(flags["flipped"][0])
    from playwright.sync_api import sync_playwright

    proc, url = start_tensorboard(args.logdir)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            shoot(browser, url, f"#dvi&p.dvi.run=noisy&p.dvi.step={args.step}",
                  os.path.join(HERE, "tab_single.png"), select=args.sample)
            shoot(browser, url, f"#dvi&p.dvi.run=noisy&p.dvi.step={args.step}&p.dvi.compare=clean%2Cnoisy",
                  os.path.join(HERE, "tab_compare.png"), select=args.sample)
            shoot(browser, url, f"#dvi&p.dvi.run=noisy&p.dvi.step={args.step}",
                  os.path.join(HERE, "tab_zoom.png"), select=args.sample, zoom=6.0)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)
    print("wrote docs/tab_single.png, docs/tab_compare.png and docs/tab_zoom.png")


if __name__ == "__main__":
    main()
