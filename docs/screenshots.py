"""Take the README's screenshots of the DVI tab on the demo runs (single run, a comparison, a zoomed map) and, with
`--alarms-logdir`, of the alarms and the layer view on a continual-learning run (examples/continual.py).

    python docs/screenshots.py --logdir demo_logs
    python docs/screenshots.py --only-alarms --alarms-logdir continual_logs [--alarms-run continual]
    python docs/screenshots.py --only-dynamics --skip-project --logdir demo_logs

Projects the logdirs first if needed (`dvi-project`), starts a real `tensorboard`, drives Debian's Chromium
with Playwright and writes docs/tab_single.png, docs/tab_compare.png and docs/tab_zoom.png, and docs/tab_alarms.png
(the map at the first alarm, the time bar's alarm marks and the alarm list) and docs/tab_layers.png (the layers view),
and docs/tab_dynamics.png (the "Training dynamics" view of the noisy run: correctness cube, per-class curves, suspects;
it needs no projection, so `--only-dynamics --skip-project` makes it from freshly trained logs).
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


def shoot_alarms(browser, url: str, run: str) -> None:
    """The map at the run's first alarm (picked by clicking its mark on the time bar), then the layers view there."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{url}/#dvi&p.dvi.run={run}")
    frame = dvi_frame(page)
    frame.wait_for_function("window.__dvi && __dvi.ready && __dvi.timeline && !__dvi.timeline.pending", timeout=300_000)
    frame.locator("[data-testid=alarm-mark]").first.click()
    frame.wait_for_function("__dvi.ready && !__dvi.follow", timeout=300_000)
    time.sleep(2.0)
    page.mouse.move(0, 0)
    page.screenshot(path=os.path.join(HERE, "tab_alarms.png"))
    frame.locator("[data-testid=view-layers]").click()
    frame.wait_for_selector("[data-testid=layers-heatmap]", timeout=120_000)
    time.sleep(1.0)
    page.screenshot(path=os.path.join(HERE, "tab_layers.png"))
    page.close()


def shoot_dynamics(browser, url: str, run: str = "noisy") -> None:
    """The "Map | Training dynamics" switch on `run`: the correctness cube, per-class curves and the suspects."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{url}/#dvi&p.dvi.run={run}")
    frame = dvi_frame(page)
    frame.wait_for_selector("[data-testid=view-dynamics]", timeout=120_000)
    frame.locator("[data-testid=view-dynamics]").click()
    frame.wait_for_selector("[data-testid=dyn-cube]", timeout=300_000)
    frame.wait_for_selector("[data-testid=dyn-suspect]", timeout=60_000)
    time.sleep(1.5)  # the suspects' thumbnails
    page.mouse.move(0, 0)
    page.screenshot(path=os.path.join(HERE, "tab_dynamics.png"))
    page.close()


def take_demo(browser, url: str, args) -> None:
    shoot(browser, url, f"#dvi&p.dvi.run=noisy&p.dvi.step={args.step}",
          os.path.join(HERE, "tab_single.png"), select=args.sample)
    shoot(browser, url, f"#dvi&p.dvi.run=noisy&p.dvi.step={args.step}&p.dvi.compare=clean%2Cnoisy",
          os.path.join(HERE, "tab_compare.png"), select=args.sample)
    shoot(browser, url, f"#dvi&p.dvi.run=noisy&p.dvi.step={args.step}",
          os.path.join(HERE, "tab_zoom.png"), select=args.sample, zoom=6.0)
    shoot_dynamics(browser, url, "noisy")


def with_browser(logdir: str, take) -> None:
    """Runs `take(browser, url)` against a real tensorboard on `logdir`."""
    from playwright.sync_api import sync_playwright

    proc, url = start_tensorboard(logdir)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            take(browser, url)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="demo_logs")
    parser.add_argument("--step", type=int, default=11)
    parser.add_argument("--sample", type=int, default=None, help="sample id to select (default: a flipped one)")
    parser.add_argument("--skip-project", action="store_true", help="do not project the logdir first")
    parser.add_argument("--alarms-logdir", default=None, help="a logdir with a continual-learning run (alarms, layers)")
    parser.add_argument("--alarms-run", default="continual")
    parser.add_argument("--only-alarms", action="store_true", help="only docs/tab_alarms.png and docs/tab_layers.png")
    parser.add_argument("--only-dynamics", action="store_true",
                        help="only docs/tab_dynamics.png (from --logdir; needs no projection)")
    args = parser.parse_args()
    from tensorboard_plugin_dvi import cli, storage

    if args.only_dynamics:
        if not args.skip_project:
            cli.main(["--logdir", args.logdir, "--run", "noisy"])
        with_browser(args.logdir, lambda browser, url: shoot_dynamics(browser, url, "noisy"))
        print("wrote docs/tab_dynamics.png")
    elif not args.only_alarms:
        if not args.skip_project:
            cli.main(["--logdir", args.logdir])
        if args.sample is None:
            records, _ = storage.RunStore(os.path.join(args.logdir, "noisy")).read_run()
            flags = storage.RunStore(os.path.join(args.logdir, "noisy")).load_step(records[max(records)]).flags
            args.sample = int(flags["flipped"][0])
        with_browser(args.logdir, lambda browser, url: take_demo(browser, url, args))
        print("wrote docs/tab_single.png, docs/tab_compare.png, docs/tab_zoom.png and docs/tab_dynamics.png")
    if args.alarms_logdir:
        if not args.skip_project:
            cli.main(["--logdir", args.alarms_logdir, "--run", args.alarms_run])
        with_browser(args.alarms_logdir, lambda browser, url: shoot_alarms(browser, url, args.alarms_run))
        print("wrote docs/tab_alarms.png and docs/tab_layers.png")


if __name__ == "__main__":
    main()
