"""The plugin over TensorBoard's real WSGI app and data provider: activation, `runs`, frontend files."""

from __future__ import annotations

import json
import os

import pytest
from helpers import WsgiApp, loader_flags, write_run

from tensorboard_plugin_dvi import storage


@pytest.fixture
def logdir(tmp_path):
    write_run(str(tmp_path / "alpha"), steps=14, inputs=True)
    write_run(str(tmp_path / "nested" / "beta"), steps=12, seed=1)
    os.makedirs(tmp_path / "not_dvi")
    return str(tmp_path)


def test_fix_flags_keeps_every_step_unless_user_chose():
    assert loader_flags().samples_per_plugin == {"dvi": 0}
    from tensorboard_plugin_dvi.loader import DviLoader

    flags = loader_flags()
    flags.samples_per_plugin = {"dvi": 5}
    DviLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"dvi": 5}


def test_bad_resolution_flag_is_rejected():
    from tensorboard.plugins.base_plugin import FlagsError

    with pytest.raises(FlagsError, match="--dvi_resolution"):
        loader_flags(dvi_resolution=5000)


def test_prerender_depth_flag_reaches_the_service_and_is_checked(logdir):
    from tensorboard.plugins.base_plugin import FlagsError

    with pytest.raises(FlagsError, match="--dvi_prerender_depth must be between 0 and 5"):
        loader_flags(dvi_prerender_depth=6)
    assert WsgiApp(logdir).plugin.service.settings.prerender_depth == 3, "the default when the flag is not given"
    assert WsgiApp(logdir, dvi_prerender_depth=0).plugin.service.settings.prerender_depth == 0


def test_plugin_listed_and_active(logdir):
    app = WsgiApp(logdir)
    listing = json.loads(app.client.get("/data/plugins_listing").get_data())
    assert listing["dvi"]["enabled"] is True
    assert listing["dvi"]["tab_name"] == "DVI"
    assert listing["dvi"]["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/dvi/index.js"}


def test_runs_lists_all_steps_despite_sampling(logdir):
    app = WsgiApp(logdir)
    resp = app.get("runs")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    runs = {r["run"]: r for r in json.loads(resp.get_data())["runs"]}
    assert sorted(runs) == ["alpha", "nested/beta"]
    assert runs["alpha"]["steps"] == list(range(14)), "all 14 steps (more than the default sample of 10)"
    assert runs["nested/beta"]["steps"] == list(range(12))
    alpha = runs["alpha"]
    assert (alpha["n"], alpha["dim"], alpha["n_classes"]) == (60, 8, 3)
    assert alpha["classes"] == ["0", "1", "2"] and len(alpha["colors"]) == 3
    assert alpha["has_inputs"] is True and runs["nested/beta"]["has_inputs"] is False
    assert alpha["broken_steps"] == [] and alpha["status"]["state"] == "not projected"


def test_runs_reports_broken_step_and_keeps_others(logdir):
    store = storage.RunStore(os.path.join(logdir, "alpha"))
    records, _ = store.read_run()
    with open(os.path.join(store.root, records[5]["files"]["arrays"]["name"]), "r+b") as handle:
        handle.truncate(100)
    app = WsgiApp(logdir)
    alpha = {r["run"]: r for r in json.loads(app.get("runs").get_data())["runs"]}["alpha"]
    assert alpha["steps"] == [s for s in range(14) if s != 5]
    assert [b["step"] for b in alpha["broken_steps"]] == [5]
    assert "hash mismatch" in alpha["broken_steps"][0]["error"]


def test_new_steps_appear_after_reload(logdir):
    app = WsgiApp(logdir)
    write_run(os.path.join(logdir, "gamma"), steps=2)
    app.reload()
    runs = {r["run"]: r for r in json.loads(app.get("runs").get_data())["runs"]}
    assert runs["gamma"]["steps"] == [0, 1]


def test_frontend_module_served(logdir):
    app = WsgiApp(logdir)
    resp = app.get("index.js")
    assert resp.status_code == 200 and "javascript" in resp.mimetype
    assert b"export" in resp.get_data() and b"render" in resp.get_data()


@pytest.mark.parametrize("path", ["../setup.py", "..%2Fsetup.py", "%2e%2e/setup.py", "/etc/passwd", "nope.js",
                                  "x.py", "index.js%00.png"])
def test_static_route_refuses_everything_else(logdir, path):
    resp = WsgiApp(logdir).get(path)
    assert resp.status_code == 404, (path, resp.status_code)
    assert resp.mimetype == "application/json" and "error" in json.loads(resp.get_data())


def test_tab_enabled_for_a_logdir_with_only_embedding_projector_runs(tmp_path):
    import torch
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "emb"))
    writer.add_embedding(torch.randn(30, 4), metadata=[str(i % 3) for i in range(30)], global_step=0)
    writer.close()
    listing = json.loads(WsgiApp(str(tmp_path)).client.get("/data/plugins_listing").get_data())
    assert listing["dvi"]["enabled"] is True
    empty = tmp_path / "empty"
    empty.mkdir()
    listing = json.loads(WsgiApp(str(empty)).client.get("/data/plugins_listing").get_data())
    assert listing["dvi"]["enabled"] is False
