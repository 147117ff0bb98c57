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
