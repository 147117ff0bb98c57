"""The logdir as a stranger leaves it: symlinks, killed writers, damage while serving, and files others must read."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time

import numpy as np
import pytest
import torch
from helpers import WsgiApp, get, poll, start_tensorboard, stop, write_run

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import cli, fsio, storage


def _listing(app: WsgiApp) -> dict:
    resp = app.get("runs")
    assert resp.status_code == 200, resp.get_data()[:300]
    return json.loads(resp.get_data())


@pytest.fixture
def symlinked(tmp_path):
    """A logdir with a good run, a run that is a symlink to outside, and a run whose DVI folder points outside."""
    logdir, outside = tmp_path / "logs", tmp_path / "outside"
    write_run(str(logdir / "good"), steps=2)
    write_run(str(outside / "elsewhere"), steps=2)
    os.symlink(outside / "elsewhere", logdir / "linked_out")
    write_run(str(outside / "assets_src"), steps=2)
    write_run(str(logdir / "assets_out"), steps=2)
    shutil.rmtree(logdir / "assets_out" / "plugins" / "dvi")
    os.symlink(outside / "assets_src" / "plugins" / "dvi", logdir / "assets_out" / "plugins" / "dvi")
    os.symlink(logdir / "good", logdir / "linked_in")  # inside the logdir: followed
    return str(logdir), str(outside)


def _tree_state(folder: str) -> dict[str, float]:
    return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs}


def test_symlinks_out_of_the_logdir_are_skipped_with_a_reason(symlinked):
    logdir, outside = symlinked
    before = _tree_state(outside)
    app = WsgiApp(logdir, dvi_autoproject="all")
    try:
        body = _listing(app)
        runs = {r["run"]: r for r in body["runs"]}
        assert "good" in runs and "linked_in" in runs, sorted(runs)
        skipped = {s["run"]: s["reason"] for s in body["skipped"]}
        assert "linked_out" in skipped and "outside the logdir" in skipped["linked_out"]
        assert "linked_out" not in runs
        assert "assets_out" not in runs and "plugins/dvi folder" in skipped["assets_out"]
        for path in ("projection?run=linked_out&step=0", "sample?run=linked_out&id=0",
                     "projection?run=assets_out&step=0", "thumbnail?run=assets_out&id=0"):
            assert app.get(path).status_code == 404, path
        app.plugin.service.wait_idle(120)
        assert _tree_state(outside) == before, "a file outside the logdir was written"
        assert not [p for p in _tree_state(outside) if "/cache/" in p]
    finally:
        app.close()


def test_dvi_project_follows_the_same_policy(symlinked, capsys):
    logdir, outside = symlinked
    before = _tree_state(outside)
    names = set(cli.find_runs(logdir))
    assert "good" in names and "linked_out" not in names
    cli.main(["--logdir", logdir, "--quiet", "--threads", "1"])
    assert _tree_state(outside) == before
    assert "outside the logdir" in capsys.readouterr().err


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_real_tensorboard_lists_the_logdir_despite_an_outside_symlink(symlinked, load_fast):
    logdir, _ = symlinked
    proc, url = start_tensorboard(logdir, f"--load_fast={load_fast}")
    try:
        def listed():
            status, body = get(url + "/data/plugin/dvi/runs")
            return status == 200 and "good" in {r["run"] for r in json.loads(body)["runs"]}

        assert poll(listed, timeout=90), get(url + "/data/plugin/dvi/runs")
    finally:
        stop(proc)


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_run(str(tmp_path / "run"), steps=1, inputs=True)
    finally:
        os.umask(old)
    root = tmp_path / "run" / "plugins" / "dvi"
    for name in os.listdir(root):
        mode = stat.S_IMODE(os.stat(root / name).st_mode)
        assert mode == 0o644, f"{name} has mode {oct(mode)}; a colleague's TensorBoard could not read it"


def test_stale_temp_files_of_killed_writers_are_cleaned(tmp_path):
    write_run(str(tmp_path / "run"), steps=1)
    root = tmp_path / "run" / "plugins" / "dvi"
    stale, fresh = root / ".tmp-dead", root / ".tmp-live"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")
    old = time.time() - 2 * fsio.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    storage.RunStore(str(tmp_path / "run")).list_records()
    assert not stale.exists() and fresh.exists(), "only temporary files older than a live write are removed"


def test_step_written_but_its_event_missing_is_reported(tmp_path):
    logdir = tmp_path / "logs"
    write_run(str(logdir / "run"), steps=3)
    store = storage.RunStore(str(logdir / "run"))
    record = store.list_records()[0][2]
    feats = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)
    arrays = {**store.load_arrays(record), "features": feats}
    with open(os.path.join(store.root, record["files"]["head"]["name"]), "rb") as handle:
        head = handle.read()
    store.write_step(3, arrays, head, "spec",
                     {k: v for k, v in record.items() if k not in ("files", "step", "version")})
    app = WsgiApp(str(logdir))
    try:
        run = _listing(app)["runs"][0]
        assert run["steps"] == [0, 1, 2]
        broken = {p["step"]: p["error"] for p in run["broken_steps"]}
        assert 3 in broken and "event record" in broken[3]
    finally:
        app.close()


def test_damage_while_serving_is_noticed_without_a_restart(tmp_path):
    logdir = tmp_path / "logs"
    write_run(str(logdir / "run"), steps=3)
    app = WsgiApp(str(logdir))
    try:
        assert _listing(app)["runs"][0]["broken_steps"] == []
        record = app.index("run").records[1]
        path = os.path.join(app.index("run").store.root, record["files"]["arrays"]["name"])
        with open(path, "r+b") as handle:
            handle.truncate(100)
        run = _listing(app)["runs"][0]
        assert 1 in {p["step"] for p in run["broken_steps"]} and 1 not in run["steps"]
    finally:
        app.close()


class Body(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x.flatten(1)))


def test_encoder_may_be_any_callable(tmp_path):
    torch.manual_seed(0)
    body, head = Body(), torch.nn.Linear(8, 3)
    inputs = torch.randn(80, 1, 4, 4)
    with torch.no_grad():
        feats = body.features(inputs)
        labels = head(feats).argmax(1)
    body.train()
    record = dvi.summary.snapshot(str(tmp_path), 0, feats, labels, head, inputs=inputs, encoder=body.features)
    assert record["boundary"] == "input" and body.training, "the module's mode must be restored"
    record = dvi.summary.snapshot(str(tmp_path), 1, feats, labels, head, inputs=inputs,
                                  encoder=lambda x: body.features(x))
    assert record["boundary"] == "input"
    with pytest.raises(TypeError, match="'encoder' parameter of snapshot must be callable"):
        dvi.summary.snapshot(str(tmp_path), 2, feats, labels, head, inputs=inputs, encoder="features")


def test_run_with_files_but_no_events_yet_is_not_listed_and_not_an_error(tmp_path, caplog):
    logdir = tmp_path / "logs"
    write_run(str(logdir / "ready"), steps=1)
    write_run(str(logdir / "writing"), steps=1)
    for name in os.listdir(logdir / "writing"):
        if name.startswith("events.out"):
            os.unlink(logdir / "writing" / name)
    (logdir / "writing" / "events.out.tfevents.0.empty").write_bytes(b"")  # TensorBoard lists it, no records yet
    app = WsgiApp(str(logdir))
    try:
        with caplog.at_level("WARNING"):
            runs = {r["run"] for r in _listing(app)["runs"]}
        assert runs == {"ready"} and "cannot be indexed" not in caplog.text
        assert app.get("projection?run=writing&step=0").status_code == 404
    finally:
        app.close()
