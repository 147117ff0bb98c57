"""Landscape tiles rendered ahead: the steps the tab drew get their tile pyramid cached in the background, the step a
user zooms into first, projecting before any of it, nothing with depth 0; ``dvi-project`` renders them offline.

Real runs, a real projection service and the real route logic (``views.Views``); the only knob turned is how long
rendering ahead waits after on-demand requests, held long while a test queues steps so the queue's order is fixed.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import time

import pytest
from helpers import WsgiApp, write_run

from tensorboard_plugin_dvi import cache, cli, jobs, views

STEPS = 4


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    """A small run of four steps, projected offline with landscape overviews only (no tiles ahead)."""
    root = str(tmp_path_factory.mktemp("prerender") / "logs")
    write_run(os.path.join(root, "run"), STEPS, n=80)
    assert cli.main(["--logdir", root, "--quiet", "--threads", "1", "--prerender-depth", "0"]) == 0
    return root


@pytest.fixture
def copy(logdir, tmp_path) -> str:
    root = str(tmp_path / "logs")
    shutil.copytree(logdir, root)
    return root


def _tiles(root: str) -> dict[tuple[int, int, int, int], str]:
    """{(step, z, x, y): path} of the zoomed tiles (z > 0) cached under ``root``."""
    out = {}
    for path in glob.glob(os.path.join(root, "**", "*.png"), recursive=True):
        m = re.search(r"step_(\d+)-\w+\.landscape(\d+)-\w+-z(\d+)-(\d+)-(\d+)\.png$", path)
        if m and int(m.group(3)) > 0:
            out[(int(m.group(1)), int(m.group(3)), int(m.group(4)), int(m.group(5)))] = path
    return out


def _service(root: str, depth: int):
    """A projection service and route logic as the plugin builds them, rendering ahead held (see module doc)."""
    app = WsgiApp(root, dvi_autoproject="off")
    index = app.index("run")
    app.close()
    service = jobs.ProjectionService(cache.Settings(prerender_depth=depth), ahead_idle_s=3600)
    return service, views.Views(service), index  # projecting on demand, as the plugin does by default


def test_pyramid_tiles_go_level_by_level_centre_first():
    tiles = views.pyramid_tiles(3)
    assert len(tiles) == 4 + 16 + 64 and len(set(tiles)) == len(tiles)
    assert [t[0] for t in tiles] == sorted(t[0] for t in tiles)
    assert set(tiles[4:8]) == {(2, 1, 1), (2, 2, 1), (2, 1, 2), (2, 2, 2)}  # level 2's four middle tiles first
    assert set(tiles[20:24]) == {(3, 3, 3), (3, 4, 3), (3, 3, 4), (3, 4, 4)}
    assert views.pyramid_tiles(0) == []


def test_the_zoomed_step_renders_first_then_the_others_in_the_order_drawn(copy):
    service, v, index = _service(copy, depth=1)
    try:
        v.landscape(index, 1, 512)  # the tab draws step 1 ...
        v.landscape(index, 3, 512)  # ... prefetches 3 and 2 ...
        v.landscape(index, 2, 512)
        v.landscape(index, 1, 512)  # ... draws 1 again: it keeps its place
        v.landscape(index, 2, 256, (1, 0, 1))  # ... and the user zooms into step 2
        assert service.pyramid_status()["queued"] == [[index.directory, s] for s in (2, 1, 3)]
        assert service.status(index)["tiles_ahead"] == {"depth": 1, "queued": [2, 1, 3], "running": None,
                                                        "rendered": []}
        assert set(_tiles(copy)) == {(2, 1, 0, 1)}, "only the asked-for tile is rendered while held"
        service.set_ahead_idle(0)
        assert service.wait_pyramids(300)
        assert service.status(index)["tiles_ahead"]["rendered"] == [1, 2, 3]
        service.set_ahead_idle(3600)
        v.landscape(index, 2, 512)  # drawn again: queued again, so no longer known rendered until a pass checks it
        assert service.status(index)["tiles_ahead"]["rendered"] == [1, 3]
    finally:
        service.close()
    tiles = _tiles(copy)
    assert set(tiles) == {(s, 1, x, y) for s in (1, 2, 3) for x in (0, 1) for y in (0, 1)}, "step 0 was never drawn"
    assert service.pyramids_done == 3
    written = {s: sorted(os.stat(p).st_mtime_ns for k, p in tiles.items() if k[0] == s and k[1:] != (1, 0, 1))
               for s in (1, 2, 3)}
    assert written[2][-1] <= written[1][0] and written[1][-1] <= written[3][0], written


def test_a_zoom_elsewhere_overtakes_a_pyramid_being_rendered(copy):
    service, v, index = _service(copy, depth=2)  # 20 tiles a step
    try:
        v.landscape(index, 0, 512)
        service.set_ahead_idle(0)
        while not any(k[0] == 0 for k in _tiles(copy)):  # step 0's pyramid has started
            assert service.pyramid_status()["done"] == 0, "step 0's 20 tiles were done before the test could zoom"
            time.sleep(0.01)
        service.set_ahead_idle(3600)  # hold again while the zoom request is answered
        v.landscape(index, 3, 256, (2, 1, 1))
        assert service.pyramid_status()["queued"][0] == [index.directory, 3]
        service.set_ahead_idle(0)
        assert service.wait_pyramids(300)
    finally:
        service.close()
    tiles = _tiles(copy)
    step0 = sorted(os.stat(p).st_mtime_ns for k, p in tiles.items() if k[0] == 0)
    step3 = sorted(os.stat(p).st_mtime_ns for k, p in tiles.items() if k[0] == 3)
    assert len(step0) == len(step3) == 20
    assert step0[0] <= step3[0] and step3[-1] <= step0[-1], "step 3 did not overtake step 0's unfinished pyramid"


def test_projecting_goes_before_rendering_ahead(copy):
    service, v, index = _service(copy, depth=1)
    service.results(index).discard(cache.result_name(index.records[STEPS - 1]), "projected again by this test")
    assert not service.is_ready(index, STEPS - 1)
    try:
        v.landscape(index, 1, 512)
        service.request(index, [STEPS - 1])
        service.set_ahead_idle(0)
        assert service.wait_pyramids(300)
        result = service.result(index, STEPS - 1)
    finally:
        service.close()
    assert result is not None
    projected = os.stat(result.model_path).st_mtime_ns
    tiles = _tiles(copy)
    assert {k[0] for k in tiles} == {1}
    assert projected <= min(os.stat(p).st_mtime_ns for p in tiles.values())


def test_a_pyramid_stopped_mid_tile_writes_nothing_partial_and_resumes(copy):
    service, v, index = _service(copy, depth=1)
    asked = []

    def stop_on_third() -> bool:  # asked before each tile and every few thousand points inside one
        asked.append(1)
        return len(asked) >= 3

    try:
        assert v.render_pyramid(index, 1, stop_on_third) is False
        first = set(_tiles(copy))
        assert len(first) <= 1, "at most the tile finished before the stop"
        assert v.render_pyramid(index, 1, lambda: False) is True
    finally:
        service.close()
    assert set(_tiles(copy)) == {(1, 1, x, y) for x in (0, 1) for y in (0, 1)}
    for path in _tiles(copy).values():
        assert views.read_png(path) is not None


def test_a_step_a_user_waited_for_gets_its_tiles_first_once_projected(copy):
    service, v, index = _service(copy, depth=1)
    newest = STEPS - 1
    service.results(index).discard(cache.result_name(index.records[newest]), "projected again by this test")
    try:
        v.landscape(index, 1, 512)  # step 1 drawn (its pyramid queued) ...
        with pytest.raises(views.NotReady):
            v.landscape(index, newest, 512)  # ... then the user looks at the unprojected newest step
        service.set_ahead_idle(0)
        assert service.wait_pyramids(300)
    finally:
        service.close()
    tiles = _tiles(copy)
    assert {k[0] for k in tiles} == {1, newest}
    last_newest = max(os.stat(p).st_mtime_ns for k, p in tiles.items() if k[0] == newest)
    assert last_newest <= min(os.stat(p).st_mtime_ns for k, p in tiles.items() if k[0] == 1)


def test_depth_zero_renders_no_tiles_ahead(copy):
    service, v, index = _service(copy, depth=0)
    try:
        v.landscape(index, 1, 512)
        v.landscape(index, 2, 256, (1, 1, 1))
        assert service.pyramid_status() == {"queued": [], "running": None, "done": 0}
        service.set_ahead_idle(0)
        assert service.wait_pyramids(60)
    finally:
        service.close()
    assert set(_tiles(copy)) == {(2, 1, 1, 1)}, "only the tile a user asked for"


def test_settings_depth_is_checked_and_not_part_of_the_cache_key():
    assert cache.Settings(prerender_depth=0).key() == cache.Settings(prerender_depth=5).key() == cache.Settings().key()
    assert cache.Settings().prerender_depth == cache.PRERENDER_DEPTH == 3
    for bad in (-1, cache.MAX_PRERENDER_DEPTH + 1):
        with pytest.raises(ValueError, match="prerender_depth"):
            cache.Settings(prerender_depth=bad)


def test_dvi_project_renders_overviews_and_the_newest_steps_pyramid(tmp_path):
    root = str(tmp_path / "logs")
    write_run(os.path.join(root, "run"), 3, n=80)
    assert cli.main(["--logdir", root, "--quiet", "--threads", "1", "--prerender-depth", "1"]) == 0
    overviews = glob.glob(os.path.join(root, "run", "**", "*-z0-0-0.png"), recursive=True)
    assert len(overviews) == 3 * len(views.TILE_SIZES)
    tiles = _tiles(root)
    assert set(tiles) == {(2, 1, x, y) for x in (0, 1) for y in (0, 1)}
    overview = next(p for p in overviews if "step_00000000" in p and ".landscape512-" in p)
    app = WsgiApp(root, dvi_autoproject="off")
    try:  # the plugin serves exactly the files rendered offline
        for query, path in (("step=0&size=512", overview), ("step=2&size=256&z=1&tx=1&ty=0", tiles[2, 1, 1, 0])):
            resp = app.get(f"landscape?run=run&{query}")
            assert resp.status_code == 200
            with open(path, "rb") as handle:
                assert resp.get_data() == handle.read(), query
    finally:
        app.close()
    write_run(os.path.join(root, "run2"), 2, n=80)
    assert cli.main(["--logdir", root, "--quiet", "--threads", "1", "--run", "run2", "--prerender-depth", "0"]) == 0
    assert not _tiles(os.path.join(root, "run2")), "depth 0: overviews only"
    assert len(glob.glob(os.path.join(root, "run2", "**", "*-z0-0-0.png"), recursive=True)) == 2 * len(views.TILE_SIZES)


def test_a_step_the_full_queue_dropped_is_not_reported_rendered(copy, monkeypatch):
    monkeypatch.setattr(jobs, "PYRAMID_STEPS", 1)
    service, v, index = _service(copy, depth=1)
    try:
        v.landscape(index, 1, 512)
        v.landscape(index, 2, 512)  # the queue is full: step 2 is not queued
        ahead = service.status(index)["tiles_ahead"]
        assert ahead["queued"] == [1] and 2 not in ahead["rendered"]
        service.set_ahead_idle(0)
        assert service.wait_pyramids(300)
        assert service.status(index)["tiles_ahead"]["rendered"] == [1], "step 2's tiles were never rendered ahead"
    finally:
        service.close()
