"""Per-step digests and the saved dynamics behind the map routes, over TensorBoard's real WSGI app and a real
``tensorboard`` process, on a projected run of a real (small) MNIST training log."""

from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np
import pytest
from helpers import STEPS, WsgiApp, get, poll, start_tensorboard, stop

from tensorboard_plugin_dvi import binary, trajectory, transfer


@pytest.fixture()
def logdir(projected, tmp_path):
    """A copy of the projected logdir without what dvi-project digested, so the plugin's own paths are exercised."""
    root = str(tmp_path / "logs")
    shutil.copytree(projected[0], root)
    for folder in glob.glob(os.path.join(root, "*", "plugins", "dvi", "cache", "*", trajectory.FOLDER)):
        shutil.rmtree(folder)
    return root


def test_dvi_project_writes_the_digests_and_dynamics_the_routes_read(projected, tmp_path):
    root = str(tmp_path / "logs")
    shutil.copytree(projected[0], root)  # projected by the offline CLI
    assert len(_digest_files(root)) == STEPS and _digest_files(root, "dynamics.npz")
    app = WsgiApp(root)
    try:
        calls = []
        source = app.plugin.diagnosis._quantities
        app.plugin.diagnosis._quantities = lambda i, s: calls.append(s) or source(i, s)
        dynamics = app.get("dynamics?run=noisy").get_json()
        assert calls == [], "the plugin folded steps again instead of reading what dvi-project saved"
        assert any(dynamics["columns"]["steps_other_region"]), "region classes were digested and folded"
        index = app.index("noisy")
        assert all(app.plugin.views.digest(index, s, build_missing=False).has_region for s in range(STEPS))
    finally:
        app.close()


def _digest_files(root: str, pattern: str = "step_*.digest.npy") -> list[str]:
    return sorted(glob.glob(os.path.join(root, "noisy", "plugins", "dvi", "cache", "*", trajectory.FOLDER, pattern)))


def _binary(app, step: int) -> dict[str, np.ndarray]:
    resp = app.get(f"projection?run=noisy&step={step}&format=binary")
    assert resp.status_code == 200
    return {**binary.decode(resp.get_data())[1]}


def test_compact_answers_decode_to_the_binary_answer(logdir):
    app = WsgiApp(logdir)
    try:
        ref0, ref1 = _binary(app, 0), _binary(app, 1)
        resp = app.get("projection?run=noisy&step=0&format=compact")
        assert resp.status_code == 200 and resp.mimetype == "application/octet-stream"
        header, full = transfer.decode_compact(resp.get_data())
        assert header["base"] is None and header["step"] == 0 and len(header["bounds"]) == 4
        x0, _, x1, _ = header["box"]
        assert np.abs(full["x"] - ref0["x"]).max() <= (x1 - x0) / 65535
        assert full["ids"].tolist() == ref0["ids"].tolist() and full["pred"].tolist() == ref0["pred"].tolist()
        assert header["flags"]["flipped"] == sorted(header["flags"]["flipped"])
        # step 1 against step 0, which the client holds: only changed predictions travel
        resp = app.get("projection?run=noisy&step=1&format=compact&base=0")
        blob = resp.get_data()
        header, delta = transfer.decode_compact(blob, full)
        assert header["base"] == 0 and "flags" not in header
        assert delta["pred"].tolist() == ref1["pred"].tolist() and delta["labels"].tolist() == ref1["labels"].tolist()
        assert np.abs(delta["conf"] - ref1["conf"].astype(np.float32)).max() <= 1 / 510 + 1e-3
        assert len(blob) < len(app.get("projection?run=noisy&step=1&format=binary").get_data()) / 2
        # a base the run does not have: a full answer, said so
        header, _ = transfer.decode_compact(app.get("projection?run=noisy&step=1&format=compact&base=999")
                                            .get_data())
        assert header["base"] is None
        for bad in ("format=compact&base=-1", "format=compact&base=x", "format=compact2"):
            resp = app.get(f"projection?run=noisy&step=1&{bad}")
            assert resp.status_code == 400 and "Traceback" not in resp.get_data(as_text=True)
    finally:
        app.close()


def test_sample_reads_one_record_per_step_and_agrees_with_the_map(logdir, projected):
    app = WsgiApp(logdir)
    try:
        before = app.get("sample?run=noisy&id=17").get_json()  # no digests yet: read from the arrays
        assert not _digest_files(logdir), "a sample request wrote files"
        maps = [app.get(f"projection?run=noisy&step={s}").get_json() for s in range(STEPS)]  # digests built
        assert len(_digest_files(logdir)) == STEPS
        after = app.get("sample?run=noisy&id=17").get_json()
        assert after == before
        i = maps[0]["ids"].index(17)
        assert after["x"] == [m["x"][i] for m in maps] and after["pred"] == [m["pred"][i] for m in maps]
        flipped = int(projected[1]["flipped"][0])
        assert app.get(f"sample?run=noisy&id={flipped}").get_json()["flags"] == ["flipped"]
        assert app.get("sample?run=noisy&id=123456").status_code == 404
    finally:
        app.close()


def test_the_job_hook_stores_regions_and_the_dynamics_survive_a_restart(logdir):
    app = WsgiApp(logdir)
    try:
        index = app.index("noisy")
        for step in range(STEPS):
            app.plugin._prerender(index, step)  # what the projection job runs after each step
        digest = app.plugin.views.digest(index, STEPS - 1)
        assert digest.has_region
        result = app.plugin.views.ready_result(index, STEPS - 1)
        expected = app.plugin.views.region_classes_decoded(index, STEPS - 1, result)
        assert digest.column("region").tolist() == expected.tolist()
        dynamics = app.get("dynamics?run=noisy").get_json()
        cube = app.get("cube?run=noisy&rows=50&cols=12").get_data()
        assert app.plugin.diagnosis._checkpoints.wait(60)
        assert _digest_files(logdir, "dynamics.npz")
    finally:
        app.close()
    again = WsgiApp(logdir)
    try:
        calls = []
        source = again.plugin.diagnosis._quantities
        again.plugin.diagnosis._quantities = lambda i, s: calls.append(s) or source(i, s)
        assert again.get("dynamics?run=noisy").get_json() == dynamics
        assert again.get("cube?run=noisy&rows=50&cols=12").get_data() == cube
        assert calls == [], "a restarted plugin folded steps again instead of reading the saved dynamics"
        assert any(dynamics["columns"]["steps_other_region"]), "region classes were folded into the trajectories"
    finally:
        again.close()


def test_damaged_digests_and_saved_dynamics_are_rebuilt(logdir):
    app = WsgiApp(logdir)
    try:
        good = app.get("projection?run=noisy&step=2").get_json()
        dynamics = app.get("dynamics?run=noisy").get_json()
        assert app.plugin.diagnosis._checkpoints.wait(60)
    finally:
        app.close()
    path = _digest_files(logdir)[2]
    rows = np.load(path)
    rows["x"][5] = np.nan
    rows["label"][0] = 99
    np.save(path, rows)
    with open(_digest_files(logdir, "dynamics.npz")[0], "r+b") as handle:
        handle.truncate(1000)
    with open(_digest_files(logdir)[3], "wb") as handle:
        handle.write(b"\x93NUMPY garbage")
    again = WsgiApp(logdir)
    try:
        assert again.get("projection?run=noisy&step=2").get_json() == good
        assert again.get("projection?run=noisy&step=3").status_code == 200
        assert again.get("sample?run=noisy&id=5").status_code == 200
        assert again.get("dynamics?run=noisy").get_json() == dynamics
    finally:
        again.close()


@pytest.mark.server
def test_real_tensorboard_serves_the_compact_form(logdir):
    proc, url = start_tensorboard(logdir, "--dvi_autoproject", "off")
    try:
        base = url + "/data/plugin/dvi/"

        def listed():
            status, body = get(base + "runs")
            return status == 200 and any(len(r["steps"]) == STEPS for r in json.loads(body)["runs"])

        assert poll(listed, timeout=90)
        status, blob = get(base + "projection?run=noisy&step=3&format=compact")
        assert status == 200
        header, full = transfer.decode_compact(blob)
        status, blob = get(base + "projection?run=noisy&step=4&format=compact&base=3")
        header4, step4 = transfer.decode_compact(blob, full)
        _, ref = binary.decode(get(base + "projection?run=noisy&step=4&format=binary")[1])
        assert header4["base"] == 3 and step4["pred"].tolist() == ref["pred"].tolist()
        assert np.abs(step4["y"] - ref["y"]).max() <= (header4["box"][3] - header4["box"][1]) / 65535
        status, body = get(base + "sample?run=noisy&id=3")
        assert status == 200 and len(json.loads(body)["steps"]) == STEPS
    finally:
        stop(proc)
