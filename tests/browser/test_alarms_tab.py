"""Alarms, layer small multiples and the long-log time bar, in the real tab inside a real `tensorboard`.

One tensorboard serves two runs written here: `continual` (an MLP on real digits learns 0-4 for three logged steps,
then only 5-9, so the plugin raises a forgetting alarm at step 3; layer statistics logged at every step) and `long`
(1,000 logged steps of a small run whose neighbourhoods are reshuffled at step 700, a `jump` alarm). Nothing is
projected (`--dvi_autoproject off`): alarms, step statistics and layer statistics need no projection. Each test
compares what the tab draws with what the plugin's routes answer, and clicks as a user would.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import get, poll, start_tensorboard, stop, write_continual_run
from tabkit import Tab, runs_by_name

import tensorboard_plugin_dvi as dvi

pytestmark = [pytest.mark.browser, pytest.mark.server]

STEPS, SWITCH = 8, 5
LONG_STEPS = 1000
JUMP_AT = 700
INKED_JS = """(selector) => [...document.querySelectorAll(selector)].map((c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let k = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) k++;
  return k;
})"""
CELL_JS = """([ti, li, t, l]) => {
  const c = document.querySelector('[data-testid=layers-heatmap]');
  const ctx = c.getContext('2d');
  const at = (a, b) => {
    const d = ctx.getImageData(Math.floor((a + 0.5) * c.width / t), Math.floor((b + 0.5) * c.height / l), 1, 1).data;
    return d[0] + d[1] + d[2];
  };
  const all = [];
  for (let a = 1; a < t; a++) for (let b = 0; b < l; b++) all.push(at(a, b));
  return {max: at(ti, li), min: Math.min(...all)};
}"""
TIMELINE_READY = "__dvi.timeline && __dvi.timeline.steps > 0 && !__dvi.timeline.pending && __dvi.overview.renders > 0"


def write_long_run(run_dir: str, steps: int = LONG_STEPS, n: int = 100, d: int = 8, c: int = 4, seed: int = 0) -> None:
    """`steps` snapshots of fixed class clusters with a tiny per-step jitter; at JUMP_AT every sample's offset from
    its centroid is drawn again, so its nearest neighbours change (the plugin's `jump` rule)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % c
    centroids = rng.normal(0, 3, (c, d))
    offsets = rng.normal(0, 1, (n, d))
    head = torch.nn.Linear(d, c)
    for step in range(steps):
        if step == JUMP_AT:
            offsets = rng.normal(0, 1, (n, d))
        feats = centroids[labels] + offsets + 0.01 * rng.normal(0, 1, (n, d))
        dvi.summary.snapshot(run_dir, step, torch.tensor(feats, dtype=torch.float32), labels, head)
    dvi.summary.close(run_dir)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvi_alarms_tab") / "logs"
    write_continual_run(str(root / "continual"), STEPS, SWITCH)
    write_long_run(str(root / "long"))
    proc, url = start_tensorboard(str(root), "--dvi_autoproject", "off")
    try:
        def listed():
            runs = runs_by_name(url)
            return "continual" in runs and len(runs.get("long", {}).get("steps", [])) == LONG_STEPS

        assert poll(listed, timeout=180, interval=1.0), f"runs never listed in full: {list(runs_by_name(url))}"
        yield url
    finally:
        stop(proc)


def route(url: str, path: str, run: str) -> dict:
    """A training route's JSON, asked until every step is folded in (a long log answers a prefix first)."""
    body: dict = {}

    def complete():
        nonlocal body
        status, raw = get(f"{url}/data/plugin/dvi/{path}?run={run}", timeout=60)
        assert status == 200, f"{path} {run}: {status} {raw[:300]!r}"
        body = json.loads(raw)
        return not body.get("pending_steps")

    assert poll(complete, timeout=120, interval=1.0), f"{path} never folded every step in"
    return body


@pytest.fixture
def tab(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    t = Tab(page, server)
    yield t
    assert not t.errors, f"JavaScript errors in the tab: {t.errors}"
    context.close()


def open_run(tab: Tab, run: str, extra: str = "") -> None:
    """Opens the tab on `run` (nothing is projected: waits for the time bar's overview, not for a map)."""
    tab.page.goto(f"{tab.url}/#dvi&p.dvi.run={run}{extra}")
    tab.frame = None
    for _ in range(300):
        for handle in tab.page.query_selector_all("iframe"):
            frame = handle.content_frame()
            if frame is not None and "plugin_entry.html?name=dvi" in frame.url:
                tab.frame = frame
        if tab.frame is not None:
            break
        tab.page.wait_for_timeout(200)
    assert tab.frame is not None, "the DVI tab's iframe never appeared"
    tab.wait(f"window.__dvi && __dvi.run === {json.dumps(run)}", timeout=60)
    tab.wait(TIMELINE_READY, timeout=120)


def slider_x(tab: Tab, index: int) -> float:
    """The x (in the iframe) of the slider thumb's centre at position `index` (8 px thumb inset, as the ticks)."""
    box = tab.el("step-slider").bounding_box()
    frame_box = tab.frame.frame_element().bounding_box()
    n = len(tab.js("__dvi.steps")) if not tab.js("__dvi.zoom") else int(tab.el("step-slider").get_attribute("max")) + 1
    return box["x"] - frame_box["x"] + 8 + (box["width"] - 16) * (index / max(1, n - 1))


# ----------------------------------------------------------------------------------------------- tests


def test_alarm_marks_sit_over_their_steps_and_move_the_time_bar_there(tab, server):
    alarms = route(server, "alarms", "continual")["alarms"]
    assert alarms and alarms[0]["step"] == SWITCH and alarms[0]["kind"] == "forgetting", alarms
    open_run(tab, "continual")
    steps = tab.js("__dvi.steps")
    marks = tab.el("alarm-mark")
    mark_steps = [int(marks.nth(i).get_attribute("data-step")) for i in range(marks.count())]
    assert mark_steps == sorted({a["step"] for a in alarms}), "one mark per alarm step, nothing else"
    first = marks.nth(0)
    assert "forgetting" in first.get_attribute("data-kinds").split()
    assert "forgetting" in first.get_attribute("title") and "'0'" in first.get_attribute("title")
    # The mark sits above the slider position of its step.
    frame_box = tab.frame.frame_element().bounding_box()
    box = first.bounding_box()
    centre = box["x"] - frame_box["x"] + box["width"] / 2
    expected = slider_x(tab, steps.index(SWITCH))
    assert abs(centre - expected) <= 3, f"mark at x={centre:.1f}, slider position of step {SWITCH} at {expected:.1f}"

    assert tab.js("__dvi.follow") is True and tab.js("__dvi.step") == steps[-1], "opens live, at the newest step"
    first.click()
    tab.wait(f"__dvi.step === {SWITCH}")
    assert tab.js("__dvi.follow") is False, "picking an alarm leaves live mode"
    assert tab.el("step-slider").input_value() == str(steps.index(SWITCH))

    # The list names every alarm with its reason; a click moves there too.
    items = tab.el("alarm-item")
    assert items.count() == len(alarms)
    texts = items.all_inner_texts()
    assert texts[0].startswith(f"step {SWITCH} · forgetting · accuracy of '0', '1', '2', '3', '4'"), texts[0]
    assert "dvi-on" in items.nth(0).get_attribute("class").split(), "the shown step's alarm is highlighted"
    tab.el("step-slider").fill("0")
    tab.wait(f"__dvi.step === {steps[0]}")
    items.nth(len(alarms) - 1).click()
    tab.wait(f"__dvi.step === {alarms[-1]['step']}")


def test_layer_small_multiples_are_grouped_by_block_and_outliers_move_the_time_bar(tab, server):
    body = route(server, "layers", "continual")
    open_run(tab, "continual")
    tab.el("view-layers").click()
    tab.el("layers-heatmap").wait_for(timeout=60000)
    assert not tab.el("maps").is_visible(), "the layers view replaces the maps"
    assert tab.el("timebar").is_visible(), "the time bar stays under the layers view"
    blocks = tab.el("layer-block")
    shown = {blocks.nth(i).get_attribute("data-block"):
             blocks.nth(i).locator("[data-testid=layer-multiple]").evaluate_all("els => els.map(e => e.dataset.layer)")
             for i in range(blocks.count())}
    expected: dict[str, list[str]] = {}
    for layer in body["layers"]:
        expected.setdefault(layer["block"] or "(top)", []).append(layer["name"])
    assert shown == expected, "one small multiple per layer, grouped by block"
    assert tab.el("layer-multiple").count() == len(body["layers"])
    # Each small multiple's canvas has a drawn line (not blank).
    inked = tab.frame.evaluate(INKED_JS, "[data-testid=layer-multiple] canvas")
    assert all(k > 20 for k in inked), f"blank small multiples: {inked}"

    outliers = tab.el("layer-outlier")
    assert outliers.count() == len(body["outliers"]) > 0
    t, k = body["outliers"][0]
    target = outliers.nth(0)
    assert int(target.get_attribute("data-step")) == body["steps"][t]
    assert target.get_attribute("data-layer") == body["layers"][k]["name"]
    target.click()
    step = body["steps"][t]
    tab.wait(f"__dvi.step === {step}")
    tab.wait(f"document.querySelector('[data-testid=layers-view]').dataset.step === '{step}'")
    assert tab.js("__dvi.view") == "layers", "picking an outlier keeps the layers view, with the time bar moved"
    # The heatmap's cell colours follow the relative change: the largest change is the darkest cell.
    rel = np.array([[np.nan if v is None else v for v in row] for row in body["rel_change"]], dtype=float)
    ti, li = np.unravel_index(np.nanargmax(rel), rel.shape)
    lum = tab.frame.evaluate(CELL_JS, [int(ti), int(li), rel.shape[0], rel.shape[1]])
    assert lum["max"] == lum["min"], f"the largest relative change is not the darkest cell: {lum}"


def test_a_1000_step_log_has_a_usable_time_bar_overview_and_zoom(tab, server):
    alarms = route(server, "alarms", "long")["alarms"]
    assert any(a["step"] == JUMP_AT and a["kind"] == "jump" for a in alarms), alarms
    open_run(tab, "long")
    assert len(tab.js("__dvi.steps")) == LONG_STEPS
    stats = tab.js("__dvi.overview")
    width = tab.el("overview").bounding_box()["width"]
    assert 0 < stats["columns"] <= 4 * width, f"more than one column per pixel per series: {stats}"
    assert stats["lastMs"] <= 100, f"the 1,000-step time bar took {stats['lastMs']:.1f} ms to render"
    # Forced redraws (as a resize or new data would): every one within 100 ms.
    times = tab.js("Array.from({length: 5}, () => __dvi.renderOverview())")
    assert max(times) <= 100, f"redraws of the 1,000-step time bar: {times} ms"
    ticks = tab.frame.locator("[data-testid=step-ticks] > span").count()
    assert ticks < 20, f"{ticks} tick elements for 1,000 unprojected steps (merged segments expected)"
    mark_steps = [int(s) for s in tab.el("alarm-mark").evaluate_all("els => els.map(e => e.dataset.step)")]
    assert mark_steps == sorted({a["step"] for a in alarms})
    # The overview canvas has ink (the series are drawn).
    ink = tab.frame.evaluate(INKED_JS, "[data-testid=overview-canvas]")[0]
    assert ink > 200, f"overview canvas nearly blank ({ink} pixels)"

    # Drag across the strip from ~step 650 to ~step 750: the slider now covers that range.
    box = tab.el("overview").bounding_box()
    y = box["y"] + box["height"] / 2
    x0 = box["x"] + (box["width"] - 1) * 650 / (LONG_STEPS - 1)
    x1 = box["x"] + (box["width"] - 1) * 750 / (LONG_STEPS - 1)
    tab.page.mouse.move(x0, y)
    tab.page.mouse.down()
    tab.page.mouse.move((x0 + x1) / 2, y, steps=4)
    tab.page.mouse.move(x1, y, steps=4)
    tab.page.mouse.up()
    tab.wait("__dvi.zoom !== null")
    lo, hi = tab.js("__dvi.zoom")
    assert abs(lo - 650) <= 3 and abs(hi - 750) <= 3, (lo, hi)
    assert int(tab.el("step-slider").get_attribute("max")) == hi - lo
    assert tab.el("zoom-out").is_visible() and f"{lo}–{hi}" in tab.el("zoom-out").inner_text()
    zoomed = tab.js("__dvi.overview")
    assert zoomed["renders"] > stats["renders"] and zoomed["lastMs"] <= 100, zoomed
    # The jump's mark is still there, now far from its neighbours; the slider moves inside the range.
    mark = tab.frame.locator(f"[data-testid=alarm-mark][data-step='{JUMP_AT}']")
    assert mark.count() == 1
    mark.click()
    tab.wait(f"__dvi.step === {JUMP_AT}")
    assert tab.el("step-slider").input_value() == str(JUMP_AT - lo)
    tab.el("step-slider").fill("10")
    tab.wait(f"__dvi.step === {lo + 10}")
    assert tab.el("step-value").get_attribute("data-step-label") is not None
    assert f"{lo + 11} / {LONG_STEPS}" in tab.el("step-label").inner_text()
    # The zoom is in the URL (a reload keeps it); the button shows every step again.
    hashes = [f"p.dvi.zoom={lo}%2C{hi}", f"p.dvi.zoom={lo},{hi}"]
    tab.page.wait_for_function(f"{json.dumps(hashes)}.some((k) => location.hash.includes(k))", timeout=10000)
    tab.el("zoom-out").click()
    tab.wait("__dvi.zoom === null")
    assert int(tab.el("step-slider").get_attribute("max")) == LONG_STEPS - 1
    assert tab.el("step-slider").input_value() == str(lo + 10)


def test_the_estimated_time_left_is_shown_while_a_run_is_projected(tab, server):
    """The header names the run's estimate (`status.eta_s`), answered here by a stand-in for the runs route."""
    runs = json.loads(get(f"{server}/data/plugin/dvi/runs")[1])

    def fake(route_):
        body = json.loads(json.dumps(runs))
        for r in body["runs"]:
            r["status"] = {**r["status"], "state": "running", "ready": [], "queued": r["steps"][1:],
                           "running": r["steps"][0], "progress": 0.25, "eta_s": 150}
        route_.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    tab.page.route(lambda u: u.split("?")[0].endswith("/data/plugin/dvi/runs"), fake)
    open_run(tab, "continual")
    tab.wait("document.querySelector('[data-testid=status]').textContent.includes('left')")
    assert tab.el("status").inner_text().endswith("about 3 min left")
    tab.el("map-progress-eta").wait_for(timeout=30000)
    assert tab.el("map-progress-eta").inner_text() == "This run: about 3 min left."
