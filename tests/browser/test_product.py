"""The tab's "Done when" checks, against a real `tensorboard` under both loaders (--load_fast=true and false).

One tensorboard per loader serves three small runs (two projected up front, one to which a step is appended while
the tab is open). Each test drives the tab as a user would and reads what is on screen: step labels, panel titles,
the camera, the URL after a reload, the landscape tiles' resolution and pixels.
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest
from helpers import get, poll, start_tensorboard, stop, write_run
from tabkit import Tab, png_array, post, projection, runs_by_name

pytestmark = [pytest.mark.browser, pytest.mark.server]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 160
STEPS = 3
RUNS = ("clean", "noisy", "live")
RECORD_LABELS_JS = """() => {
  window.__labelLog = [];
  const tick = () => {
    const visible = (e) => e.offsetParent !== null;
    const labels = [...document.querySelectorAll('[data-step-label]')].filter(visible)
      .map((e) => e.dataset.stepLabel).filter((v) => v !== '');
    const veil = document.querySelector('[data-testid=map-progress]');
    const acc = document.querySelector('[data-testid=acc-train]');
    const p = __dvi.panels[0];
    const waiting = !!veil && !veil.classList.contains('dvi-hidden');
    __labelLog.push({shown: p ? p.step : null, labels, waiting,
      pending: waiting ? Number(veil.querySelector('[data-pending-step]').dataset.pendingStep) : null,
      acc: acc ? acc.textContent : null});
    if (__labelLog.length < 20000) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
SAVED_CAMERA_JS = """(() => {
  const saved = JSON.parse(sessionStorage.getItem('dvi.tab.state') || '{}');
  if (!saved.cam) return false;
  const [x, y, zoom] = saved.cam.split(',').map(Number);
  const c = __dvi.camera;
  return Math.abs(x - c.x) < 1e-4 && Math.abs(y - c.y) < 1e-4 && Math.abs(zoom - c.zoom) < 1e-3;
})()"""


@pytest.fixture(scope="module", params=["true", "false"], ids=["load_fast", "python_loader"])
def server(request, tmp_path_factory):
    """A real tensorboard (one per loader) with `clean` and `noisy` projected and `live` projected up to step 1."""
    root = tmp_path_factory.mktemp(f"dvi_product_{request.param}") / "logs"
    write_run(str(root / "clean"), steps=STEPS, n=N, d=16, c=3, seed=0, inputs=True)
    write_run(str(root / "noisy"), steps=STEPS, n=N, d=16, c=3, seed=1, inputs=True)
    write_run(str(root / "live"), steps=2, n=N, d=16, c=3, seed=2)
    proc, url = start_tensorboard(str(root), f"--load_fast={request.param}")
    try:
        assert poll(lambda: set(RUNS) <= set(runs_by_name(url)), timeout=90), "runs never listed"
        for run in RUNS:
            status, body = post(url + "/data/plugin/dvi/project", {"run": run}, {"X-XSRF-Protected": "1"})
            assert status in (200, 202), f"project {run}: {status} {body[:300]!r}"

        def projected():
            runs = runs_by_name(url)
            return all(runs.get(r, {}).get("status", {}).get("state") == "ready" for r in RUNS)

        assert poll(projected, timeout=600, interval=1.0), f"projection never finished: {runs_by_name(url)}"
        yield url, str(root)
    finally:
        stop(proc)


@pytest.fixture
def tab(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    t = Tab(page, server[0])
    yield t
    assert not t.errors, f"JavaScript errors in the tab: {t.errors}"
    context.close()


def append_step(run_dir: str) -> int:
    """Log one more step to a run (the last step's features, slightly moved); return its number."""
    import tensorboard_plugin_dvi as dvi
    from tensorboard_plugin_dvi import storage

    store = storage.RunStore(run_dir)
    records, _ = store.read_run()
    last = max(records)
    data, head = store.load_step(records[last]), store.load_head(records[last])
    dvi.summary.snapshot(run_dir, last + 1, data.features * 0.97, data.labels, head, split=data.split,
                         sample_ids=data.ids)
    dvi.summary.close(run_dir)
    return last + 1


def wheel_zoom(tab: Tab, factor: float, panel: int = 0, at: tuple[float, float] = (0.5, 0.5)) -> None:
    """Zooms panel `panel` by `factor` with one wheel event at a fraction of its canvas."""
    geo = tab.js(f"__dvi.geometry({panel})")
    tab.page.mouse.move(*tab.page_point(geo["left"] + geo["width"] * at[0], geo["top"] + geo["height"] * at[1]))
    tab.page.mouse.wheel(0, -math.log(factor) / 0.0015)


def zoom_of(tab: Tab, panel: int) -> float:
    """The panel's zoom relative to fitting its bounds, from its drawn geometry."""
    g = tab.js(f"__dvi.geometry({panel})")
    b = g["bounds"]
    fit = min(g["width"] / (b[2] - b[0]), g["height"] / (b[3] - b[1])) * 0.97
    return g["scale"] / fit


# ----------------------------------------------------------------------------------------------- tests


def test_live_mode_follows_a_new_step_and_every_label_shows_the_shown_map_while_it_is_pending(tab, server):
    url, root = server
    tab.open("#dvi&p.dvi.run=live")
    assert tab.js("__dvi.follow") is True
    assert tab.js("__dvi.panels[0].step") == 1
    tab.js(RECORD_LABELS_JS)
    new_step = append_step(f"{root}/live")
    tab.wait(f"__dvi.step === {new_step}", timeout=60)  # live: the tab moved to the new step by itself
    tab.wait(f"__dvi.panels[0].step === {new_step} && __dvi.ready", timeout=300)
    time.sleep(0.3)
    log = tab.js("__labelLog")
    pending = [e for e in log if e["waiting"]]
    assert pending, "the new step was never shown as pending (no overlay seen)"
    assert all(e["pending"] == new_step for e in pending), "the overlay named another step"
    assert all(e["shown"] == new_step - 1 for e in pending), "while pending, the previous map stays on screen"
    wrong = [e for e in log if e["shown"] is not None and any(lbl != str(e["shown"]) for lbl in e["labels"])]
    assert not wrong, f"{len(wrong)} of {len(log)} frames had a step label that is not the shown map's: {wrong[:3]}"
    assert any(e["labels"] for e in pending), "no step label was visible while pending"
    # The accuracy beside the map is the shown step's, at every frame.
    shown_steps = {e["shown"] for e in log if e["shown"] is not None}
    acc = {s: projection(url, "live", s)["accuracy"]["train"] for s in shown_steps}
    bad = [e for e in log if e["acc"] and e["shown"] is not None
           and abs(float(e["acc"].rstrip("%")) - 100 * acc[e["shown"]]) > 0.05 + 1e-9]
    assert not bad, f"accuracy of another step shown: {bad[:3]}"
    assert tab.el("step-value").inner_text() == str(new_step)


def test_compare_panels_share_one_camera_and_label_their_panels(tab):
    tab.open("#dvi&p.dvi.run=noisy&p.dvi.compare=noisy%2Cclean")
    tab.wait("__dvi.panels.length === 2")
    tab.wait_ready()
    order = [p["run"] for p in tab.js("__dvi.panels")]
    assert order == ["noisy", "clean"]
    assert tab.el("panel-run").all_inner_texts() == order, "panel titles name their runs"
    chips = tab.frame.locator("[data-testid=compare-runs] button[aria-pressed=true]").all_inner_texts()
    assert chips == order, f"chips {chips} not in panel order {order}"
    tab.wait("document.querySelectorAll('[data-testid=metrics-run]').length === 2", timeout=60)
    assert tab.el("metrics-run").all_inner_texts() == order, "quality sections not labelled in panel order"

    wheel_zoom(tab, 4.0, panel=0, at=(0.4, 0.4))
    tab.wait("Math.abs(__dvi.camera.zoom - 4) < 0.05")
    time.sleep(0.3)
    z0, z1 = zoom_of(tab, 0), zoom_of(tab, 1)
    assert abs(z0 - 4) < 0.1 and abs(z1 - 4) < 0.1, f"zooming one panel left the other behind: {z0:.2f} vs {z1:.2f}"
    c = [tab.js(f"__dvi.geometry({i})") for i in range(2)]
    rel = [((g["cx"] - g["bounds"][0]) / (g["bounds"][2] - g["bounds"][0])) for g in c]
    assert abs(rel[0] - rel[1]) < 1e-3, f"panels centred on different places: {rel}"

    # Shared selection, labelled per run; a double-click resets the camera and keeps it.
    tab.el("find-id").fill("3")
    tab.el("find-id").press("Enter")
    tab.wait("__dvi.selected === 3 && __dvi.panels.every(p => p.selected >= 0 && p.trajectory)")
    tab.wait("document.querySelectorAll('[data-testid=inspect-run]').length === 2")
    assert [t.split(" ·")[0] for t in tab.el("inspect-run").all_inner_texts()] == order
    geo = tab.js("__dvi.geometry(1)")
    tab.page.mouse.dblclick(*tab.page_point(geo["left"] + 6, geo["top"] + 6))
    tab.wait("Math.abs(__dvi.camera.zoom - 1) < 1e-6")
    time.sleep(0.5)
    assert tab.js("__dvi.selected") == 3, "double-click cleared the selection"

    # Unlinked: each panel keeps its own camera.
    tab.el("camera-link").click()
    tab.wait("__dvi.linked === false")
    wheel_zoom(tab, 3.0, panel=1)
    time.sleep(0.4)
    assert abs(zoom_of(tab, 1) - 3) < 0.1 and abs(zoom_of(tab, 0) - 1) < 0.05, "unlinked panels moved together"


def test_reload_restores_filters_selection_and_camera(tab, server):
    url, _ = server
    tab.open("#dvi&p.dvi.run=clean")
    tab.goto_step_index(1)
    tab.el("filter-label").select_option("1")
    tab.el("filter-misclassified").check()
    tab.el("filter-split-train").click()
    tab.el("find-id").fill("5")
    tab.el("find-id").press("Enter")
    tab.wait("__dvi.selected === 5")
    wheel_zoom(tab, 2.5, at=(0.3, 0.6))
    tab.wait("__dvi.camera.zoom > 2")
    time.sleep(0.3)
    before = {k: tab.js(f"__dvi.{k}") for k in ("filter", "camera", "selected", "step", "run", "highlighted")}
    tab.wait(SAVED_CAMERA_JS, timeout=10)  # the URL writes are debounced: wait for this camera to be saved
    tab.page.wait_for_function("location.hash.includes('p.dvi.cam=') && location.hash.includes('p.dvi.split=train')",
                               timeout=10000)
    tab.page.reload()
    tab.attach()
    after = {k: tab.js(f"__dvi.{k}") for k in ("filter", "camera", "selected", "step", "run", "highlighted")}
    assert after["filter"] == before["filter"]
    assert after["selected"] == 5 and after["step"] == 1 and after["run"] == "clean"
    for k in ("x", "y", "zoom"):
        assert abs(after["camera"][k] - before["camera"][k]) < 1e-3, (k, before["camera"], after["camera"])
    p1 = projection(url, "clean", 1)
    labels, pred, split = (np.array(p1[k]) for k in ("labels", "pred", "split"))
    expected = int(np.sum((labels == 1) & (labels != pred) & (split == 1)))
    assert after["highlighted"] == before["highlighted"] == expected
    assert tab.el("filter-label").input_value() == "1"
    assert tab.el("filter-misclassified").is_checked()
    assert abs(zoom_of(tab, 0) - before["camera"]["zoom"]) < 0.01


def test_zoomed_landscape_is_redrawn_from_sharper_tiles(tab, server):
    url, _ = server
    tab.open("#dvi&p.dvi.run=clean")
    tab.goto_step_index(STEPS - 1)
    wheel_zoom(tab, 6.0)
    tab.wait("__dvi.panels[0].tiles.z >= 3 && __dvi.panels[0].tiles.drawn >= 1", timeout=60)
    tiles = tab.js("__dvi.panels[0].tiles")
    assert tiles["pxPerUnit"] >= 4 * tiles["overviewPxPerUnit"], tiles
    # The canvas shows the tile's own pixels where the tile is drawn (away from the points).
    tab.wait(f"__dvi.panels[0].tiles.drawn >= {1}")
    time.sleep(0.5)
    geo = tab.js("__dvi.geometry(0)")
    z = tiles["z"]
    b = geo["bounds"]
    side = (b[2] - b[0]) / 2 ** z
    tx = int((geo["cx"] - b[0]) // side)
    ty = int((b[3] - geo["cy"]) // side)
    status, png = get(f"{url}/data/plugin/dvi/landscape?run=clean&step={STEPS - 1}&z={z}&tx={tx}&ty={ty}&size=256")
    assert status == 200, f"tile z={z} ({tx}, {ty}): {status} {png[:200]!r}"
    tile = png_array(png)
    px = tab.canvas_pixels()
    h, w, _ = px.shape
    pos = np.array(tab.js("__dvi.positions(0)"), dtype=float).reshape(-1, 2)
    sx = w / 2 + (pos[:, 0] - geo["cx"]) * geo["scale"]
    sy = h / 2 - (pos[:, 1] - geo["cy"]) * geo["scale"]
    x0, y1 = b[0] + tx * side, b[3] - ty * side
    rng = np.random.default_rng(0)
    u = rng.uniform(0, w - 1, 6000)
    v = rng.uniform(0, h - 1, 6000)
    dx = geo["cx"] + (u - w / 2) / geo["scale"]
    dy = geo["cy"] - (v - h / 2) / geo["scale"]
    col = ((dx - x0) / side * 256).astype(int)
    row = ((y1 - dy) / side * 256).astype(int)
    keep = (col >= 1) & (col < 255) & (row >= 1) & (row < 255)
    near = np.min((u[:, None] - sx[None]) ** 2 + (v[:, None] - sy[None]) ** 2, axis=1) < 12 ** 2
    keep &= ~near
    assert keep.sum() > 200, "too few pixels of the centre tile away from points"
    agree = np.abs(px[v[keep].astype(int), u[keep].astype(int)] - tile[row[keep], col[keep]]).max(axis=1) <= 40
    assert agree.mean() >= 0.85, f"only {agree.mean():.2f} of the zoomed map's background matches its tile"


def test_a_cold_zoom_draws_a_sharp_viewport_image_before_its_tiles(tab, server):
    """Zooming to a level whose tiles the plugin has not rendered (deeper than it renders ahead, so none can be
    cached), the tab first draws the visible part of the map as one image at the level's resolution, then the tiles,
    which replace it."""
    url, _ = server
    tab.open("#dvi&p.dvi.run=noisy")
    tab.goto_step_index(STEPS - 1)
    requests = []
    tab.page.on("request", lambda r: requests.append(r.url) if "landscape?" in r.url else None)
    wheel_zoom(tab, 12.0)
    tab.wait("__dvi.panels[0].tiles.firstSharp !== null", timeout=60)
    tiles = tab.js("__dvi.panels[0].tiles")
    depth = runs_by_name(url)["noisy"]["status"]["tiles_ahead"]["depth"]
    first = tiles["firstSharp"]
    assert tiles["z"] > depth, f"level {tiles['z']} is rendered ahead (depth {depth}): zoom deeper"
    assert first["by"] == "viewport" and first["tilesDrawn"] < first["wanted"], first
    assert first["pxPerUnit"] >= 4 * tiles["overviewPxPerUnit"], (first, tiles["overviewPxPerUnit"])
    assert abs(first["pxPerUnit"] - tiles["pxPerUnit"]) < 1e-6 * tiles["pxPerUnit"], "the tiles' own pixel density"
    views = [u for u in requests if "box=" in u]
    probes = [u for u in requests if "cached=1" in u]
    assert len(views) == 2, f"the viewport in two halves: {views}"
    assert len(probes) == 1 and requests.index(probes[0]) < requests.index(views[0]), "first: is the centre tile there?"
    plain = [i for i, u in enumerate(requests) if "&z=" in u and "cached=1" not in u]
    assert requests.index(views[-1]) < min(plain), "tiles after the viewport"
    # The tiles arrive and replace it.
    tab.wait("(t => t.wanted > 0 && t.drawn === t.wanted && !t.viewDrawn)(__dvi.panels[0].tiles)", timeout=120)
    assert tab.js("__dvi.panels[0].tiles.sharp") is True
    # Those tiles are rendered now: after a reload (same camera) the centre tile answers the probe, and the tiles
    # come at once, without a viewport image.
    tab.wait(SAVED_CAMERA_JS, timeout=10)
    requests.clear()
    tab.page.reload()
    tab.attach()
    tab.wait("(t => t.z > 0 && t.wanted > 0 && t.drawn === t.wanted)(__dvi.panels[0].tiles)", timeout=120)
    after = tab.js("__dvi.panels[0].tiles")
    assert after["firstSharp"]["by"] == "tiles" and after["viewRequests"] == 0, after
    assert not [u for u in requests if "box=" in u]
    # Panning at the same level asks for the missing tiles only.
    before = len([u for u in requests if "box=" in u])
    geo = tab.js("__dvi.geometry(0)")
    x, y = tab.page_point(geo["left"] + geo["width"] / 2, geo["top"] + geo["height"] / 2)
    tab.page.mouse.move(x, y)
    tab.page.mouse.down()
    tab.page.mouse.move(x - 120, y - 40, steps=4)
    tab.page.mouse.up()
    tab.wait("(t => t.wanted > 0 && t.drawn === t.wanted)(__dvi.panels[0].tiles)", timeout=120)
    assert len([u for u in requests if "box=" in u]) == before


def test_a_map_at_rest_asks_for_its_zoom_tiles_ahead(tab, server):
    """Resting at the overview level, the tab fetches one level-1 tile, which puts its step's tile pyramid first in
    the plugin's render-ahead queue (the overview alone may come from the tab's own cache)."""
    url, _ = server
    tab.open("#dvi&p.dvi.run=noisy")
    tab.goto_step_index(1)
    tab.wait("__dvi.panels[0].tiles.aheadStep === 1", timeout=30)
    tiles = tab.js("__dvi.panels[0].tiles")
    assert tiles["z"] == 0 and tiles["drawn"] == 0, f"the overview level, no tile drawn over it: {tiles}"

    def ahead():
        status = runs_by_name(url)["noisy"]["status"]["tiles_ahead"]
        return status if status["running"] == 1 or (status["queued"] or [None])[0] == 1 or 1 not in status["queued"] \
            else None

    assert poll(ahead, timeout=30), f"step 1's tiles are not next: {runs_by_name(url)['noisy']['status']}"


def test_first_step_prediction_changed_says_why_nothing_matches(tab):
    tab.open("#dvi&p.dvi.run=clean")
    tab.goto_step_index(0)
    tab.el("filter-changed").check()
    tab.wait("__dvi.highlighted === 0")
    assert "first step" in tab.el("filter-note").inner_text()
    tab.goto_step_index(1)
    tab.wait("!document.querySelector('[data-testid=filter-note]').textContent")


def test_narrow_window_keeps_the_map_in_view_when_filtering(tab):
    tab.page.set_viewport_size({"width": 800, "height": 700})
    tab.open("#dvi&p.dvi.run=clean")
    assert not tab.el("side").is_visible(), "the side bar starts folded on a narrow window"
    tab.el("side-toggle").click()
    tab.el("filter-label").select_option("2")
    tab.wait("__dvi.filter.label === 2")
    box = tab.el("map-canvas").bounding_box()
    frame_box = tab.frame.frame_element().bounding_box()
    assert box["y"] >= frame_box["y"] - 1 and box["y"] + 50 < frame_box["y"] + frame_box["height"], "map scrolled away"
    assert json.loads(json.dumps(tab.js("__dvi.filter")))["label"] == 2


def test_trajectory_dots_name_their_step_and_the_quality_panel_states_its_reference(tab):
    tab.open("#dvi&p.dvi.run=noisy")
    tab.goto_step_index(STEPS - 1)
    tab.el("find-id").fill("3")
    tab.el("find-id").press("Enter")
    tab.wait("__dvi.selected === 3 && __dvi.panels[0].trajectory")
    time.sleep(0.3)
    at = tab.js("__dvi.screenPosition(3)")
    tab.page.mouse.move(*tab.page_point(at["x"] + 1, at["y"]))
    readout = tab.el("readout-trajectory-step")
    readout.wait_for(timeout=10000)
    assert readout.inner_text() == f"#3 at step {STEPS - 1}"
    assert tab.el("sparkline-key").is_visible(), "the sparkline has no key"
    assert "wrong" in tab.el("sparkline-key").inner_text()

    tab.wait("document.querySelector('[data-testid=metric-ref-nn-train]') !== null", timeout=60)
    with open(os.path.join(ROOT, "frontend", "reference.js")) as handle:
        ref = json.loads(handle.read().split("export const REFERENCE = ", 1)[1].rstrip().rstrip(";"))
    assert ref["method"] == "umap-learn"
    assert tab.el("metric-ref-nn-train").inner_text().endswith(f"{ref['metrics']['train']['nn']:.2f}")
    name = tab.frame.locator("tr[data-metric=nn] .dvi-metric-name")
    assert "nearest neighbours" in name.get_attribute("title"), "no explanation on hover"
    tab.wait("document.querySelector('tr[data-metric=nn] [data-testid=metric-trend] polyline') !== null", timeout=60)
    points = tab.frame.locator("tr[data-metric=nn] [data-testid=metric-trend] polyline").get_attribute("points")
    assert len(points.split()) == STEPS, f"the trend does not cover the {STEPS} projected steps: {points}"


def test_training_dynamics_view_picks_a_sample_onto_the_map(tab):
    tab.open("#dvi&p.dvi.run=noisy")
    tab.el("view-dynamics").click()
    tab.wait("document.querySelector('[data-testid=dyn-cube]') !== null", timeout=90)
    assert not tab.el("maps").is_visible(), "the maps stay hidden under the dynamics view"
    row = tab.el("dyn-suspect").first
    sample_id = int(row.locator("td").nth(1).inner_text())
    row.click()
    tab.wait(f"__dvi.selected === {sample_id}")
    assert tab.el("maps").is_visible(), "picking a sample goes back to the map"
    assert tab.el("inspect-id").inner_text() == f"#{sample_id}"


def open_dynamics(tab: Tab, run: str = "noisy") -> None:
    tab.open(f"#dvi&p.dvi.run={run}")
    tab.el("view-dynamics").click()
    tab.wait("document.querySelector('[data-testid=dyn-cube]') !== null", timeout=90)


def test_training_dynamics_cube_cell_click_selects_its_sample_at_its_step(tab, server):
    from tensorboard_plugin_dvi import cube as cube_mod

    url = server[0]
    open_dynamics(tab)
    canvas = tab.el("dyn-cube")
    width, height = int(canvas.get_attribute("width")), int(canvas.get_attribute("height"))
    # The same request the view makes (rows = canvas height, cols = canvas width): its row -> ids, column -> steps.
    status, blob = get(f"{url}/data/plugin/dvi/cube?run=noisy&rows={height}&cols={min(width, 1024)}")
    assert status == 200, blob[:300]
    header, arrays = cube_mod.decode(blob)
    rows, cols = header["rows"], header["cols"]
    assert cols == STEPS, f"one pixel column per step expected for {STEPS} steps, got {cols}"
    step_now = tab.js("__dvi.step")
    assert step_now == header["steps"][-1], "the tab opens at the last step"
    col = 0  # the first step: a different step from the one shown
    # A row in the middle of the second band that holds exactly one sample (so the cell is that one sample).
    band = header["bands"][1]
    candidates = [r for r in range(band["row"], band["row"] + band["rows"])
                  if arrays["row_start"][r + 1] - arrays["row_start"][r] == 1]
    assert candidates, f"no single-sample row in band {band}"
    row = candidates[len(candidates) // 2]
    sample = int(arrays["ids"][arrays["row_start"][row]])
    step = header["steps"][arrays["col_start"][col]]
    assert step != step_now
    assert tab.js("__dvi.selected") != sample

    box = canvas.bounding_box()
    canvas.click(position={"x": (col + 0.5) * box["width"] / cols, "y": (row + 0.5) * box["height"] / rows})
    tab.wait(f"__dvi.selected === {sample} && __dvi.step === {step}", timeout=60)
    assert tab.el("maps").is_visible(), "picking a cell goes back to the map"
    assert tab.el("inspect-id").inner_text() == f"#{sample}"
    tab.wait(f"""(() => {{
      const labels = [...document.querySelectorAll('[data-step-label]')].filter((e) => e.offsetParent !== null)
        .map((e) => e.dataset.stepLabel).filter((v) => v !== '');
      return labels.length > 0 && labels.every((v) => Number(v) === {step});
    }})()""", timeout=60)  # every visible step label shows the cell's step


def test_training_dynamics_suspects_csv_download_matches_the_route(tab, server):
    import csv
    import io

    url = server[0]
    open_dynamics(tab)
    with tab.page.expect_download(timeout=30_000) as info:
        tab.el("dyn-suspects-csv").click()
    download = info.value
    assert download.suggested_filename == "noisy-suspects.csv"
    with open(download.path(), encoding="utf-8") as handle:
        downloaded = list(csv.DictReader(handle))
    status, body = get(f"{url}/data/plugin/dvi/suspects?run=noisy&k=100")
    assert status == 200, body[:300]
    expected = json.loads(body)["suspects"]
    assert expected, "the noisy run has no suspects to compare"
    assert [int(r["id"]) for r in downloaded] == [r["id"] for r in expected]
    assert [int(r["rank"]) for r in downloaded] == list(range(1, len(expected) + 1))
    assert [r["category"] for r in downloaded] == [r["category"] for r in expected]
    assert [float(r["score"]) for r in downloaded] == pytest.approx([r["score"] for r in expected])
    status, body = get(f"{url}/data/plugin/dvi/suspects?run=noisy&k=100&format=csv")
    assert status == 200
    assert list(csv.DictReader(io.StringIO(body.decode("utf-8")))) == downloaded, "the link's CSV is not the route's"
    shown = [int(v) for v in tab.frame.locator("[data-testid=dyn-suspect] td:nth-child(2)").all_inner_texts()]
    assert sorted(shown) == sorted(r["id"] for r in expected), "the table lists other samples than the CSV"
