"""The DVI tab in a real headless Chromium, inside a real `tensorboard` process, on a small projected logdir.

Two runs are written with ``dvi.summary.snapshot`` and projected through the plugin's own ``project`` route; the
tab is then driven as a user would (slider, play, filters, clicks, compare, reload). State is read through the
tab's read-only ``window.__dvi`` hooks, and what is drawn is checked on the canvas pixels.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from helpers import get, poll, start_tensorboard, stop, write_run
from tabkit import Tab, hex_rgb, png_array, post, projection, runs_by_name

pytestmark = [pytest.mark.browser, pytest.mark.server]

RUNS = ("clean", "noisy")
STEPS = 3
N = 160

# ----------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("dvi_browser") / "logs"
    write_run(str(root / "clean"), steps=STEPS, n=N, d=16, c=3, seed=0, inputs=True)
    write_run(str(root / "noisy"), steps=STEPS, n=N, d=16, c=3, seed=1, inputs=True)
    return str(root)


@pytest.fixture(scope="module")
def server(logdir):
    """A real tensorboard on the logdir, with every step of both runs projected through the plugin."""
    proc, url = start_tensorboard(logdir)
    try:
        assert poll(lambda: set(RUNS) <= set(runs_by_name(url)), timeout=90), "runs never listed"
        for run in RUNS:
            status, body = post(url + "/data/plugin/dvi/project", {"run": run}, {"X-XSRF-Protected": "1"})
            assert status in (200, 202), f"project {run}: {status} {body[:300]!r}"

        def projected():
            runs = runs_by_name(url)
            return all(runs.get(r, {}).get("status", {}).get("state") == "ready" for r in RUNS)

        assert poll(projected, timeout=600, interval=1.0), f"projection never finished: {runs_by_name(url)}"
        yield url
    finally:
        stop(proc)


@pytest.fixture
def tab(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    page = context.new_page()
    t = Tab(page, server).open()
    yield t
    assert not t.errors, f"JavaScript errors in the tab: {t.errors}"
    context.close()


# ----------------------------------------------------------------------------------------------- tests


def test_tab_loads_inside_tensorboard_iframe(tab):
    assert "data/plugin_entry.html?name=dvi" in tab.frame.url
    assert tab.frame.frame_element().evaluate("e => e.tagName") == "IFRAME"
    options = tab.el("run-select").locator("option").all_inner_texts()
    assert sorted(options) == sorted(RUNS)
    assert tab.js("__dvi.run") in RUNS
    assert tab.js("__dvi.steps") == list(range(STEPS))
    assert tab.js("__dvi.pointsDrawn") == N


def test_map_draws_points_in_label_colours_over_an_aligned_landscape(tab, server):
    tab.goto_step_index(STEPS - 1)
    run, step = tab.js("__dvi.run"), tab.js("__dvi.step")
    info = runs_by_name(server)[run]
    proj = projection(server, run, step)
    geo = tab.js("__dvi.geometry(0)")
    px = tab.canvas_pixels()
    h, w, _ = px.shape
    assert (w, h) == (round(geo["width"]), round(geo["height"]))

    pos = np.array(tab.js("__dvi.positions(0)"), dtype=float).reshape(-1, 2)
    sx = w / 2 + (pos[:, 0] - geo["cx"]) * geo["scale"]
    sy = h / 2 - (pos[:, 1] - geo["cy"]) * geo["scale"]
    ids = np.array(proj["ids"])
    labels = np.array(proj["labels"])[np.argsort(ids)]
    preds = np.array(proj["pred"])[np.argsort(ids)]
    colors = np.array([hex_rgb(c) for c in info["colors"]])

    # Points: at the centre of a correctly classified sample, its label colour (overlaps aside).
    correct = np.where(labels == preds)[0]
    inside = correct[(sx[correct] > 2) & (sx[correct] < w - 2) & (sy[correct] > 2) & (sy[correct] < h - 2)]
    assert len(inside) > 10, "too few correctly classified points on screen to check"
    got = px[sy[inside].astype(int), sx[inside].astype(int)]
    match = np.abs(got - colors[labels[inside] % len(colors)]).max(axis=1) <= 60
    assert match.mean() >= 0.5, f"only {match.mean():.2f} of point centres show their label colour"

    # Landscape: away from the points, the canvas shows the landscape PNG at the right place.
    status, png = get(f"{server}/data/plugin/dvi/landscape?run={run}&step={step}&size=256")
    assert status == 200
    land = png_array(png)
    assert (np.abs(land - 255).max(axis=2) > 4).mean() > 0.2, "the landscape PNG is blank"
    x0, y0, x1, y1 = proj["bounds"]
    rng = np.random.default_rng(0)
    u = rng.uniform(w / 2 + (x0 - geo["cx"]) * geo["scale"] + 3, w / 2 + (x1 - geo["cx"]) * geo["scale"] - 3, 4000)
    v = rng.uniform(h / 2 - (y1 - geo["cy"]) * geo["scale"] + 3, h / 2 - (y0 - geo["cy"]) * geo["scale"] - 3, 4000)
    keep = (u > 0) & (u < w - 1) & (v > 0) & (v < h - 1)
    u, v = u[keep], v[keep]
    near = np.min((u[:, None] - sx[None]) ** 2 + (v[:, None] - sy[None]) ** 2, axis=1) < 12 ** 2
    u, v = u[~near], v[~near]
    assert len(u) > 200, "no landscape pixels away from points to check"
    dx = geo["cx"] + (u - w / 2) / geo["scale"]
    dy = geo["cy"] - (v - h / 2) / geo["scale"]
    col = np.clip(((dx - x0) / (x1 - x0) * 256).astype(int), 0, 255)
    row = np.clip(((y1 - dy) / (y1 - y0) * 256).astype(int), 0, 255)
    agree = np.abs(px[v.astype(int), u.astype(int)] - land[row, col]).max(axis=1) <= 40
    assert agree.mean() >= 0.85, f"only {agree.mean():.2f} of background pixels match the landscape PNG"


def test_slider_changes_drawn_positions(tab):
    tab.goto_step_index(0)
    first = np.array(tab.js("__dvi.positions(0)"))
    pixels_first = tab.canvas_pixels()
    tab.goto_step_index(STEPS - 1)
    last = np.array(tab.js("__dvi.positions(0)"))
    pixels_last = tab.canvas_pixels()
    assert first.shape == last.shape == (2 * N,)
    moved = np.abs(first - last).mean()
    assert moved > 1e-3, f"positions did not change between steps (mean |Δ| = {moved})"
    changed = (np.abs(pixels_first - pixels_last).max(axis=2) > 30).mean()
    assert changed > 0.01, f"the drawn map did not change ({changed:.4f} of pixels differ)"
    assert tab.el("step-value").inner_text() == str(STEPS - 1)


def test_play_advances_steps_with_animation(tab):
    tab.goto_step_index(0)
    frames0 = tab.js("__dvi.frames")
    tab.el("play").click()
    seen = [0]
    deadline = time.time() + 60
    while time.time() < deadline:
        seen.append(tab.js("__dvi.step"))
        if seen[-1] == STEPS - 1 and not tab.js("__dvi.playing"):
            break
        time.sleep(0.05)
    assert seen[-1] == STEPS - 1, f"play did not reach the last step: {seen}"
    assert seen == sorted(seen) and len(set(seen)) == STEPS, f"steps visited out of order: {seen}"
    assert tab.js("__dvi.frames") - frames0 >= 2 * (STEPS - 1), "play drew no in-between frames"


def test_filters_highlight_the_expected_number(tab, server):
    tab.goto_step_index(1)
    run = tab.js("__dvi.run")
    p1 = projection(server, run, 1)
    expected = int(np.sum(np.array(p1["labels"]) == 1))
    tab.el("filter-label").select_option("1")
    tab.wait(f"__dvi.highlighted === {expected}")
    assert tab.el("match-count-value").inner_text() == f"{expected:,}"
    assert tab.js("__dvi.matched") == expected

    both = int(np.sum((np.array(p1["labels"]) == 1) & (np.array(p1["labels"]) != np.array(p1["pred"]))))
    tab.el("filter-misclassified").check()
    tab.wait(f"__dvi.highlighted === {both}")

    # The filter stays applied on another step, and is recomputed there.
    p2 = projection(server, run, 2)
    expected2 = int(np.sum((np.array(p2["labels"]) == 1) & (np.array(p2["labels"]) != np.array(p2["pred"]))))
    tab.el("next").click()
    tab.wait("__dvi.step === 2")
    tab.wait_ready()
    tab.wait(f"__dvi.highlighted === {expected2}")
    assert tab.js("__dvi.filter")["label"] == 1

    tab.el("filter-clear").click()
    tab.wait(f"__dvi.highlighted === {N}")


def test_clicking_a_sample_opens_its_details_and_trajectory(tab, server):
    tab.goto_step_index(STEPS - 1)
    geo = tab.js("__dvi.geometry(0)")
    pos = np.array(tab.js("__dvi.positions(0)"), dtype=float).reshape(-1, 2) * geo["scale"]
    d2 = ((pos[:, None] - pos[None]) ** 2).sum(-1) + np.eye(len(pos)) * 1e9
    isolated = [i for i in np.argsort(-d2.min(1)) if tab.js(f"__dvi.screenPosition({int(i)})") is not None]
    sample_id = int(isolated[0])  # ids are 0..N-1 in these runs
    at = tab.js(f"__dvi.screenPosition({sample_id})")
    tab.page.mouse.click(*tab.page_point(at["x"], at["y"]))
    tab.wait(f"__dvi.selected === {sample_id}")
    assert tab.el("inspect-id").inner_text() == f"#{sample_id}"
    thumb = tab.el("thumbnail")
    thumb.wait_for()
    assert f"id={sample_id}" in thumb.get_attribute("src")
    tab.wait("document.querySelector('[data-testid=thumbnail]').naturalWidth > 0")
    tab.el("sparkline").wait_for()
    assert tab.el("sparkline").locator("circle").count() == STEPS
    tab.wait("__dvi.panels[0].trajectory === true")
    assert tab.el("inspect-pred").inner_text().strip()


def test_hover_shows_the_models_prediction(tab):
    geo = tab.js("__dvi.geometry(0)")
    tab.page.mouse.move(*tab.page_point(geo["left"] + geo["width"] * 0.5, geo["top"] + geo["height"] * 0.5))
    tab.page.mouse.move(*tab.page_point(geo["left"] + geo["width"] * 0.52, geo["top"] + geo["height"] * 0.48))
    readout = tab.el("hover-readout")
    tab.frame.wait_for_function(
        "document.querySelector('[data-testid=hover-readout]').textContent.includes('%')", timeout=20000)
    assert "Model here" in readout.inner_text()


def test_compare_mode_shows_two_synchronized_maps(tab):
    tab.el("compare-toggle").click()
    tab.wait("__dvi.compare && __dvi.panels.length === 2")
    tab.wait_ready()
    panels = tab.frame.locator("[data-testid=map-panel]")
    assert panels.count() == 2
    a, b = panels.nth(0).bounding_box(), panels.nth(1).bounding_box()
    assert b["x"] >= a["x"] + a["width"] - 1, "the two maps are not side by side"
    assert sorted(p["run"] for p in tab.js("__dvi.panels")) == sorted(RUNS)
    for index in (0, STEPS - 1):
        tab.goto_step_index(index)
        assert [p["step"] for p in tab.js("__dvi.panels")] == [index, index]
    for i in range(2):
        px = tab.canvas_pixels(i)
        assert (np.abs(px - 255).max(axis=2) > 30).mean() > 0.004, f"map {i} has no drawn points"
        assert (np.abs(px - 255).max(axis=2) > 4).mean() > 0.2, f"map {i} has no landscape"
    # Shared selection: a sample chosen once is selected in both maps.
    tab.el("find-id").fill("3")
    tab.el("find-id").press("Enter")
    tab.wait("__dvi.selected === 3")
    tab.wait("__dvi.panels.every(p => p.selected >= 0 && p.trajectory)")


def test_reload_restores_run_and_step(tab):
    tab.el("run-select").select_option("noisy")
    tab.wait("__dvi.run === 'noisy'")
    tab.goto_step_index(1)
    tab.page.wait_for_function(
        "location.hash.includes('p.dvi.run=noisy') && location.hash.includes('p.dvi.step=1')", timeout=10000)
    tab.page.reload()
    tab.attach()
    assert tab.js("__dvi.run") == "noisy"
    assert tab.js("__dvi.step") == 1
    assert tab.el("run-select").input_value() == "noisy"
    assert tab.el("step-value").inner_text() == "1"
