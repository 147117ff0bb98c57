"""Landscape tiles: the right part of the map, as sharp as the zoom, and the same picture as an exact render."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from tensorboard_plugin_dvi import method, views


@pytest.fixture(scope="module")
def app(projected_app):
    return projected_app


def _png(resp) -> np.ndarray:
    assert resp.status_code == 200, resp.get_data()[:200]
    return np.asarray(Image.open(io.BytesIO(resp.get_data())).convert("RGB")).astype(int)


def test_tile_bounds_cut_the_map_like_web_map_tiles():
    bounds = (0.0, 0.0, 8.0, 8.0)
    assert views.tile_bounds(bounds, (0, 0, 0)) == bounds
    assert views.tile_bounds(bounds, (1, 0, 0)) == (0.0, 4.0, 4.0, 8.0)  # row 0 is the top
    assert views.tile_bounds(bounds, (2, 3, 3)) == (6.0, 0.0, 8.0, 2.0)


def test_z0_tile_is_the_overview(app):
    whole = _png(app.get("landscape?run=noisy&step=3&size=256"))
    tile = _png(app.get("landscape?run=noisy&step=3&size=256&z=0&tx=0&ty=0"))
    assert np.array_equal(whole, tile)


@pytest.mark.parametrize("tile", [(1, 1, 0), (2, 1, 2), (3, 4, 3)])
def test_a_zoomed_tile_matches_an_exact_render_of_its_box(app, tile):
    z, tx, ty = tile
    got = _png(app.get(f"landscape?run=noisy&step=3&size=256&z={z}&tx={tx}&ty={ty}"))
    index = app.index("noisy")
    result = app.plugin.views.ready_result(index, 3)
    model, head = app.plugin.views.model(index, 3, result), app.plugin.views.head(index, 3)
    exact = method.render(model, head, views.tile_bounds(result.bounds, tile), 256, 10).astype(int)
    off = np.abs(got - exact).max(2)
    assert (off > 8).mean() < 0.005, f"{(off > 8).mean():.4f} of the tile differs from the exact render"
    assert (off > 60).mean() < 0.001, "a class or boundary differs from the exact render"


def test_tile_parameters_are_checked(app):
    for query, name in (("z=9&tx=0&ty=0", "z"), ("z=2&tx=4&ty=0", "tx"), ("z=1&tx=0&ty=-1", "ty"),
                        ("z=1&tx=0", "ty")):
        resp = app.get(f"landscape?run=noisy&step=3&{query}")
        assert resp.status_code == 400 and f"'{name}'" in json.loads(resp.get_data())["error"], query


# ---------------------------------------------------------------------------- viewport landscapes (box=...)


def _bounds(app, run: str = "noisy", step: int = 3) -> tuple[float, ...]:
    index = app.index(run)
    return tuple(float(b) for b in app.plugin.views.ready_result(index, step).bounds)


def _box(b: tuple[float, ...]) -> str:
    return ",".join(repr(v) for v in b)


def test_a_viewport_over_a_tiles_box_is_that_tile(app):
    """At a tile level's density the viewport is rendered as that level's tiles are: the same pixels."""
    box = views.tile_bounds(_bounds(app), (3, 4, 3))
    tile = _png(app.get("landscape?run=noisy&step=3&size=256&z=3&tx=4&ty=3"))
    view = _png(app.get(f"landscape?run=noisy&step=3&box={_box(box)}&width=256&height=256"))
    assert view.shape == tile.shape and np.array_equal(view, tile)


def test_a_rectangular_viewport_matches_an_exact_render_of_its_box(app):
    b = _bounds(app)
    x0, y0, x1, y1 = views.tile_bounds(b, (3, 2, 3))
    box = (x0 + 0.3 * (x1 - x0), y0, x1 + 1.2 * (x1 - x0), y1 - 0.1 * (y1 - y0))  # 2.5 x 0.9 tiles of level 3
    width, height = 480, 173
    got = _png(app.get(f"landscape?run=noisy&step=3&box={_box(box)}&width={width}&height={height}"))
    assert got.shape == (height, width, 3)
    assert views.view_cell(b, box, width, height) == 4  # some 1.9 x level 2's density: cells of level 2
    index = app.index("noisy")
    result = app.plugin.views.ready_result(index, 3)
    model, head = app.plugin.views.model(index, 3, result), app.plugin.views.head(index, 3)
    exact = method.render(model, head, box, width, 10, height=height).astype(int)
    off = np.abs(got - exact).max(2)
    assert (off > 8).mean() < 0.005, f"{(off > 8).mean():.4f} of the viewport differs from the exact render"
    assert (off > 60).mean() < 0.001, "a class or boundary differs from the exact render"


def test_a_rectangular_render_is_the_square_renders_side_by_side():
    """method.render's rectangular grid: the pixel centres of two square halves, rendered exactly."""

    class Model:  # a decoder stand-in: inverse_transform is the identity into 2-D "features"
        def inverse_transform(self, pts):
            return np.asarray(pts, np.float32)

    import torch

    head = torch.nn.Sequential(torch.nn.Linear(2, 3))
    with torch.no_grad():
        head[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        head[0].bias.zero_()
    whole = method.render(Model(), head, (0.0, 0.0, 2.0, 1.0), 64, 3, height=32)
    halves = [method.render(Model(), head, box, 32, 3) for box in ((0.0, 0.0, 1.0, 1.0), (1.0, 0.0, 2.0, 1.0))]
    assert whole.shape == (32, 64, 3) and np.array_equal(whole, np.concatenate(halves, 1))
    adaptive = method.render(Model(), head, (0.0, 0.0, 2.0, 1.0), 64, 3, cell=4, height=32)
    assert (np.abs(adaptive.astype(int) - whole.astype(int)).max(2) > 60).sum() == 0


def test_viewports_are_not_written_to_disk(app):
    import glob

    root = app.index("noisy").directory
    before = set(glob.glob(f"{root}/**/*.png", recursive=True))
    box = views.tile_bounds(_bounds(app), (2, 1, 1))
    assert app.get(f"landscape?run=noisy&step=3&box={_box(box)}&width=200&height=200").status_code == 200
    assert set(glob.glob(f"{root}/**/*.png", recursive=True)) == before


BAD_VIEWS = [
    ("box=1,2,3", "box", "four"),
    ("box=1,2,3,4,5", "box", "four"),
    ("box=nan,0,1,1", "box", "decimal"),
    ("box=inf,0,1,1", "box", "decimal"),
    ("box=0,0,1e999,1", "box", "finite"),
    ("box=0x10,0,1,1", "box", "decimal"),
    ("box=²,0,1,1", "box", "decimal"),
    ("box=1,0,0,1", "box", "x0 < x1"),
    ("box=0,1,1,1", "box", "y0 < y1"),
    ("box=-1e6,0,0,1", "box", "within"),
    ("box=0,0,1,1e29", "box", "within"),
    ("box=", "box", "required"),
    ("box=0,0,1,1", "width", "required"),
    ("box=0,0,1,1&width=100", "height", "required"),
    ("box=0,0,1,1&width=0&height=10", "width", ">= 1"),
    ("box=0,0,1,1&width=10&height=5000", "height", "<= 2048"),
    ("box=0,0,1,1&width=2048&height=2048", "width", "at most"),
    ("box=0,0,1,1&width=1.5&height=10", "width", "integer"),
    ("box=0,0,1,1&width=10&height=10&size=256", "size", "cannot be combined"),
    ("box=0,0,1,1&width=10&height=10&z=1", "z", "cannot be combined"),
]


@pytest.mark.parametrize("query,name,why", BAD_VIEWS)
def test_viewport_parameters_are_checked(app, query, name, why):
    resp = app.get(f"landscape?run=noisy&step=3&{query}")
    message = json.loads(resp.get_data())["error"] if resp.status_code == 400 else resp.get_data()[:200]
    assert resp.status_code == 400 and f"'{name}'" in message and why in message, (query, message)


def test_warm_loads_the_steps_model_and_answers_json(app):
    resp = app.get("landscape?run=noisy&step=2&warm=1")
    assert resp.status_code == 200 and json.loads(resp.get_data()) == {"run": "noisy", "step": 2, "warm": True}
    index = app.index("noisy")
    result = app.plugin.views.ready_result(index, 2)
    model, head = app.plugin.views.model(index, 2, result), app.plugin.views.head(index, 2)
    assert (id(model), id(head)) in method._fused, "the fused evaluator was built"
    resp = app.get("landscape?run=noisy&step=2&warm=yes")
    assert resp.status_code == 400 and "'warm'" in json.loads(resp.get_data())["error"]


def test_cached_only_tiles_are_served_when_rendered_and_never_rendered_for_it(app):
    import glob

    root = app.index("noisy").directory
    query = "landscape?run=noisy&step=4&size=256&z=5&tx=17&ty=14"
    before = set(glob.glob(f"{root}/**/*.png", recursive=True))
    missing = app.get(query + "&cached=1")
    assert missing.status_code == 404 and "not rendered yet" in json.loads(missing.get_data())["error"]
    assert set(glob.glob(f"{root}/**/*.png", recursive=True)) == before, "asking cached-only rendered nothing"
    rendered = app.get(query)
    assert rendered.status_code == 200
    again = app.get(query + "&cached=1")
    assert again.status_code == 200 and again.get_data() == rendered.get_data()
    bad = app.get(query + "&cached=yes")
    assert bad.status_code == 400 and "'cached'" in json.loads(bad.get_data())["error"]
