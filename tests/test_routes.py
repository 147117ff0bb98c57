"""Every route over TensorBoard's real WSGI app, on a projected run of a real (small) MNIST training log."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pytest
from helpers import STEPS, WsgiApp, write_mnist_run

from tensorboard_plugin_dvi import binary


@pytest.fixture(scope="module")
def app(projected):
    app = WsgiApp(projected[0])
    yield app
    app.close()


def _json(resp):
    assert resp.mimetype == "application/json", resp.mimetype
    return json.loads(resp.get_data())


def test_runs_reports_every_step_ready(app):
    (run,) = _json(app.get("runs"))["runs"]
    assert run["steps"] == list(range(STEPS)) and run["status"]["state"] == "ready"
    assert run["status"]["ready"] == list(range(STEPS)) and run["flags"] == ["flipped"]


def test_projection_json_and_binary_agree(app, projected):
    _, facts = projected
    for step in (0, STEPS - 1):
        resp = app.get(f"projection?run=noisy&step={step}")
        assert resp.status_code == 200
        body = _json(resp)
        assert body["n"] == 800 and body["ids"] == facts["ids"].tolist()
        assert body["labels"] == facts["labels"].tolist() and body["split"] == facts["split"].astype(int).tolist()
        assert body["flags"]["flipped"] == facts["flipped"].tolist()
        x0, y0, x1, y1 = body["bounds"]
        assert abs((x1 - x0) - (y1 - y0)) < 1e-4, "the map is square"
        xy = np.c_[body["x"], body["y"]]
        train = np.asarray(body["split"]) == 1
        inside = ((xy[train] >= [x0, y0]) & (xy[train] <= [x1, y1])).all(1).mean()
        assert inside >= 0.98, f"only {inside:.3f} of training points lie inside the bounds"
        raw = app.get(f"projection?run=noisy&step={step}&format=binary")
        assert raw.status_code == 200 and raw.mimetype == "application/octet-stream"
        header, arrays = binary.decode(raw.get_data())
        assert header["bounds"] == body["bounds"]
        np.testing.assert_allclose(arrays["x"], body["x"], atol=1e-4)
        assert arrays["ids"].tolist() == body["ids"] and arrays["pred"].tolist() == body["pred"]
        assert len(raw.get_data()) < len(resp.get_data()) / 2


def test_predict_at_points_own_coordinates_keeps_predictions(app):
    """PPR through the HTTP API: the landscape at a training point predicts what the model predicts for it."""
    for step in range(1, STEPS):
        body = _json(app.get(f"projection?run=noisy&step={step}"))
        train = np.asarray(body["split"]) == 1
        points = np.c_[body["x"], body["y"]][train].tolist()
        resp = app.post(f"predict?run=noisy&step={step}", data=json.dumps(points))
        assert resp.status_code == 200
        got = np.asarray(_json(resp)["pred"])
        rate = float((got == np.asarray(body["pred"])[train]).mean())
        assert rate >= 0.95, f"step {step}: only {rate:.3f} of train points keep the model's prediction"


def test_landscape_png_matches_predict(app):
    from PIL import Image

    resp = app.get("landscape?run=noisy&step=5&size=64")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    image = np.asarray(Image.open(__import__("io").BytesIO(resp.get_data())).convert("RGB"))
    assert image.shape == (64, 64, 3)
    assert len({tuple(p) for p in image.reshape(-1, 3)}) > 20, "a landscape has more than a few colours"
    body = _json(app.get("projection?run=noisy&step=5"))
    colors = _json(app.get("runs"))["runs"][0]["colors"]
    x0, y0, x1, y1 = body["bounds"]
    rows, cols = np.meshgrid(np.arange(4, 64, 8), np.arange(4, 64, 8), indexing="ij")
    pts = np.c_[x0 + (cols.ravel() + 0.5) / 64 * (x1 - x0), y1 - (rows.ravel() + 0.5) / 64 * (y1 - y0)]
    pred = np.asarray(_json(app.post("predict?run=noisy&step=5", data=json.dumps(pts.tolist())))["pred"])
    matches = 0
    for r, c, p in zip(rows.ravel(), cols.ravel(), pred, strict=True):
        pixel = image[r, c].astype(int)
        target = np.array([int(colors[p][i:i + 2], 16) for i in (1, 3, 5)])
        white = np.array([255, 255, 255])
        # the pixel lies on the segment from white to the predicted class's colour
        t = np.dot(pixel - white, target - white) / max(np.dot(target - white, target - white), 1)
        matches += np.abs(white + t * (target - white) - pixel).max() <= 6
    assert matches / len(pred) >= 0.9, f"only {matches}/{len(pred)} pixels have the predicted class's hue"


def test_sample_history_and_thumbnail(app, projected):
    _, facts = projected
    flipped = int(facts["flipped"][0])
    body = _json(app.get(f"sample?run=noisy&id={flipped}"))
    assert body["steps"] == list(range(STEPS)) and body["flags"] == ["flipped"]
    assert body["label"] == int(facts["labels"][flipped]) and None not in body["x"]
    assert all(0 <= c <= 1 for c in body["conf"]) and body["has_thumbnail"] is True
    thumb = app.get(f"thumbnail?run=noisy&id={flipped}")
    assert thumb.status_code == 200 and thumb.mimetype == "image/png" and thumb.get_data()[:4] == b"\x89PNG"


def test_metrics_are_fractions(app):
    body = _json(app.get(f"metrics?run=noisy&step={STEPS - 1}"))
    for split in ("train", "test"):
        for key in ("nn", "boundary", "ppr", "trustworthiness"):
            assert 0.0 <= body[split][key] <= 1.0, (split, key, body[split][key])
        assert -1.0 <= body[split]["temporal"] <= 1.0
    first = _json(app.get("metrics?run=noisy&step=0"))
    assert first["train"]["temporal"] is None


def test_restart_serves_from_cache_without_retraining(projected):
    root, _ = projected
    cache_files = {p: os.path.getmtime(p) for p in _cache_files(root)}
    app = WsgiApp(root)
    try:
        started = time.time()
        resp = app.get(f"projection?run=noisy&step={STEPS - 1}")
        assert resp.status_code == 200, "a fresh plugin must serve cached results at once"
        assert time.time() - started < 5
        assert app.plugin.service.status(app.index("noisy"))["queued"] == []
    finally:
        app.close()
    after = {p: os.path.getmtime(p) for p in _cache_files(root) if "landscape" not in p}
    assert {p: m for p, m in cache_files.items() if "landscape" not in p} == after, "results were rewritten"


def _cache_files(root: str) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if os.sep + "cache" + os.sep in d]


def test_202_then_ready_and_appended_step_trains_alone(projected, tmp_path):
    """A step that is not projected answers 202 and gets queued; only the new step trains (incremental)."""
    root = str(tmp_path / "logs")
    shutil.copytree(projected[0], root)
    run_dir = os.path.join(root, "noisy")
    write_mnist_run(os.path.join(root, "extra"), 13, n=800, noise=0.1)  # a second run, never projected
    before = set(_cache_files(os.path.join(root, "noisy")))
    app = WsgiApp(root)
    try:
        resp = app.get("projection?run=extra&step=0")
        assert resp.status_code == 202 and _json(resp)["status"] in ("queued", "running")
        assert app.plugin.service.wait_idle(600)
        assert app.get("projection?run=extra&step=0").status_code == 200
        # the projected run: append a 13th step (same samples, slightly moved) while the plugin runs
        from tensorboard_plugin_dvi import storage

        store = storage.RunStore(run_dir)
        records, _ = store.read_run()
        data, head = store.load_step(records[STEPS - 1]), store.load_head(records[STEPS - 1])
        import tensorboard_plugin_dvi as dvi

        dvi.summary.snapshot(run_dir, STEPS, data.features * 1.01, data.labels, head, split=data.split,
                             sample_ids=data.ids)
        dvi.summary.close(run_dir)
        app.reload()
        (run,) = [r for r in _json(app.get("runs"))["runs"] if r["run"] == "noisy"]
        assert run["steps"] == list(range(STEPS + 1)) and STEPS not in run["status"]["ready"]
        assert app.get(f"projection?run=noisy&step={STEPS}").status_code == 202
        assert app.plugin.service.wait_idle(600)
        assert app.get(f"projection?run=noisy&step={STEPS}").status_code == 200
        # projection results only: the routes' digests and saved dynamics (folder "digests") cover every step
        new = {p for p in set(_cache_files(run_dir)) - before if os.sep + "digests" + os.sep not in p}
        assert {os.path.basename(p).split("-")[0] for p in new} == {f"step_{STEPS:08d}"}, sorted(new)
    finally:
        app.close()


def test_map_bounds_ignore_a_few_outliers():
    from tensorboard_plugin_dvi.cache import map_bounds

    rng = np.random.default_rng(0)
    xy = np.r_[rng.normal(0, 1, (1000, 2)), [[500.0, -400.0], [-300.0, 800.0]]]
    x0, y0, x1, y1 = map_bounds(xy)
    assert abs((x1 - x0) - (y1 - y0)) < 1e-9 and x1 - x0 < 10, (x0, y0, x1, y1)
    inside = ((xy >= [x0, y0]) & (xy <= [x1, y1])).all(1).mean()
    assert inside >= 0.99
