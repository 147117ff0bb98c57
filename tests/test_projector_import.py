"""Runs written by torch's ``SummaryWriter.add_embedding`` (the Embedding Projector layout), served with a time axis.

Real MNIST digits, real ``SummaryWriter`` output and the real plugin inside ``TensorBoardWSGI``; two steps of 240
samples are projected, everything else only converted.
"""

from __future__ import annotations

import io
import json
import math
import os
import time

import numpy as np
import pytest
import torch
from helpers import MNIST_PATH, WsgiApp, write_run
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from tensorboard_plugin_dvi import projector_import, storage

N = 240


def _digits(n: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    with np.load(MNIST_PATH) as data:
        return data["images"][offset:offset + n], data["labels"][offset:offset + n].astype(np.int64)


def _features(images: np.ndarray, step: int, dim: int = 24) -> np.ndarray:
    """A fixed random projection of the pixels that drifts a little with the step (a stand-in for a network)."""
    pixels = images.reshape(len(images), -1).astype(np.float32) / 255.0
    proj = np.random.default_rng(0).normal(size=(pixels.shape[1], dim)).astype(np.float32) / 28.0
    drift = np.random.default_rng(step + 1).normal(size=(len(images), dim)).astype(np.float32)
    return pixels @ proj + 0.05 * step * drift


def write_projector_run(run_dir: str, steps: int = 3, n: int = N, *, metadata: object = "labels",
                        sprite: bool = True, dim: int = 24) -> dict[str, np.ndarray]:
    """``add_embedding`` once per global step, as a user would during training."""
    images, labels = _digits(n)
    writer = SummaryWriter(run_dir)
    for step in range(steps):
        kwargs: dict[str, object] = {}
        if metadata == "labels":
            kwargs["metadata"] = labels.tolist()
        elif metadata is not None:
            kwargs["metadata"], kwargs["metadata_header"] = metadata
        if sprite:
            kwargs["label_img"] = torch.from_numpy(images[:, None]).float() / 255.0
        writer.add_embedding(torch.from_numpy(_features(images, step, dim)), global_step=step, **kwargs)
    writer.close()
    return {"images": images, "labels": labels}


def _json(resp) -> dict:
    assert resp.mimetype == "application/json", resp.mimetype
    return json.loads(resp.get_data())


def _runs(app: WsgiApp) -> dict[str, dict]:
    return {r["run"]: r for r in _json(app.get("runs"))["runs"]}


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("projector") / "logs"
    facts = write_projector_run(str(root / "emb"))
    write_run(str(root / "dvi"), steps=2)
    os.makedirs(root / "fake")  # a projector config without event files: not a run
    (root / "fake" / projector_import.CONFIG_NAME).write_text((root / "emb" / projector_import.CONFIG_NAME).read_text())
    return str(root), facts


@pytest.fixture(scope="module")
def app(logdir):
    app = WsgiApp(logdir[0])
    yield app
    app.close()


def test_runs_lists_projector_and_dvi_runs_side_by_side_cheaply(app, logdir):
    started = time.time()
    runs = _runs(app)
    assert time.time() - started < 2.0
    assert sorted(runs) == ["dvi", "emb"], "only runs the data provider lists; 'fake' has no event file"
    emb, dvi = runs["emb"], runs["dvi"]
    assert emb["steps"] == [0, 1, 2] and emb["source"] == "projector" and emb["has_head"] is False
    assert emb["projector"]["tag"] == "default" and emb["broken_steps"] == []
    assert emb["status"]["ready"] == [] and emb["status"]["state"] == "not projected"
    assert dvi["source"] == "dvi" and dvi["has_head"] is True and dvi["steps"] == [0, 1]
    assert not os.path.exists(os.path.join(logdir[0], "fake", "plugins")), "nothing written for a non-run"


def test_projection_202_then_200_with_logged_labels(app, logdir):
    _, facts = logdir
    for step in (0, 1):  # the second step is warm-started from the first
        resp = app.get(f"projection?run=emb&step={step}")
        assert resp.status_code == 202, resp.get_data()
        assert _json(resp)["status"] in ("queued", "running")
        assert app.plugin.service.wait_idle(300)
        resp = app.get(f"projection?run=emb&step={step}")
        assert resp.status_code == 200, resp.get_data()
        body = _json(resp)
        assert body["n"] == N and body["ids"] == list(range(N))
        assert body["labels"] == facts["labels"].tolist(), "labels are the logged metadata"
        assert body["pred"] == body["labels"] and min(body["conf"]) == 1.0, "no model: pred is the label"
        assert body["accuracy"] == {"train": None, "test": None}
        xy = np.c_[body["x"], body["y"]]
        assert np.isfinite(xy).all() and len(np.unique(xy.round(3), axis=0)) > N // 2
    emb = _runs(app)["emb"]
    assert emb["n"] == N and emb["dim"] == 24 and emb["classes"] == [str(d) for d in range(10)]
    assert emb["has_inputs"] is True and emb["status"]["ready"] == [0, 1] and emb["projector"]["pending"] == []
    metrics = _json(app.get("metrics?run=emb&step=1"))
    assert 0.0 <= metrics["train"]["ppr"] <= 1.0 and metrics["train"]["temporal"] is not None


def test_landscape_and_predict_are_404_json_without_queueing(app):
    for resp in (app.get("landscape?run=emb&step=2&size=64"),
                 app.post("predict?run=emb&step=2", data=json.dumps([[0.0, 0.0]]))):
        assert resp.status_code == 404
        message = _json(resp)["error"]
        assert "Embedding Projector" in message and "no classifier head" in message
    assert app.plugin.service.status(app.index("emb"))["queued"] == []
    assert app.get("landscape?run=dvi&step=0&size=64").status_code == 202, "a logged run still has landscapes"


def test_thumbnail_is_the_sprite_cell(app, logdir):
    root, facts = logdir
    with Image.open(os.path.join(root, "emb", "00000", "default", "sprite.png")) as image:
        sprite = np.asarray(image.convert("L"))
    cols = math.ceil(math.sqrt(N))  # torch's make_sprite grid
    for sample in (0, 17, N - 1):
        resp = app.get(f"thumbnail?run=emb&id={sample}")
        assert resp.status_code == 200 and resp.mimetype == "image/png"
        thumb = np.asarray(Image.open(io.BytesIO(resp.get_data())))
        row, col = divmod(sample, cols)
        assert thumb.shape == (28, 28)
        assert np.array_equal(thumb, sprite[row * 28:(row + 1) * 28, col * 28:(col + 1) * 28])
        # the sprite stores uint8(x * 255) of the float image x = pixels / 255
        assert np.abs(thumb.astype(int) - facts["images"][sample].astype(int)).max() <= 1
    body = _json(app.get("sample?run=emb&id=17"))
    assert body["label"] == int(facts["labels"][17]) and body["steps"] == [0, 1, 2] and body["has_thumbnail"]


@pytest.mark.parametrize("run", ["../emb", "%2e%2e%2femb", "/etc", "emb\x00", "emb/00000/default", "fake",
                                 "emb/plugins/dvi/imported", "nope"])
def test_hostile_or_unlisted_run_names_404(app, logdir, run):
    resp = app.get("projection", query_string={"run": run, "step": "0"})
    assert resp.status_code == (400 if "\x00" in run else 404) and "error" in _json(resp)
    assert not os.path.exists(os.path.join(logdir[0], "fake", "plugins"))


def test_converted_once_and_again_only_when_its_files_change(tmp_path):
    root = str(tmp_path / "logs")
    write_projector_run(os.path.join(root, "emb"), n=60, dim=8)
    app = WsgiApp(root)
    try:
        index = app.index("emb")
        assert index.steps == [0, 1, 2] and index.pending == []
        folder = projector_import.ImportedStore(index.directory).root
        assert folder == os.path.join(index.directory, "plugins", "dvi", "imported")
        mtimes = {f: os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder) if f.endswith(".json")}
        hashes = {s: r["files"]["arrays"]["sha256"] for s, r in index.records.items()}
        assert {s: r["files"]["arrays"]["sha256"] for s, r in app.index("emb").records.items()} == hashes
        same = {f: os.path.getmtime(os.path.join(folder, f)) for f in mtimes}
        assert same == mtimes, "nothing is converted again while the source files are unchanged"
        # re-log step 2 with other features: only step 2 is converted again
        tsv = os.path.join(root, "emb", "00002", "default", "tensors.tsv")
        feats = np.loadtxt(tsv, delimiter="\t", dtype=np.float32) * 2.0
        time.sleep(0.01)
        np.savetxt(tsv, feats, delimiter="\t", fmt="%.9g")
        assert _runs(app)["emb"]["projector"]["pending"] == [2]
        after = app.index("emb")
        assert after.pending == [] and after.steps == [0, 1, 2]
        assert {s: r["files"]["arrays"]["sha256"] for s, r in after.records.items() if s != 2} == \
            {s: h for s, h in hashes.items() if s != 2}
        assert after.records[2]["files"]["arrays"]["sha256"] != hashes[2]
        np.testing.assert_allclose(after.store.load_step(after.records[2]).features, feats, rtol=1e-6)
        assert os.path.getmtime(os.path.join(folder, "step_00000000.json")) == mtimes["step_00000000.json"]
        # a fresh plugin (TensorBoard restarted) reads the manifest and converts nothing
        before = {f: os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder)}
        fresh = WsgiApp(root)
        try:
            assert fresh.index("emb").records == after.records
            assert {f: os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder)} == before
        finally:
            fresh.close()
    finally:
        app.close()


def test_corrupt_or_missing_tensors_tsv_is_a_broken_step(tmp_path):
    root = str(tmp_path / "logs")
    write_projector_run(os.path.join(root, "emb"), n=60, dim=8)
    with open(os.path.join(root, "emb", "00001", "default", "tensors.tsv"), "w") as handle:
        handle.write("0.5\tnot-a-number\n" * 60)
    os.unlink(os.path.join(root, "emb", "00002", "default", "tensors.tsv"))
    app = WsgiApp(root)
    try:
        emb = _runs(app)["emb"]  # a missing file shows at once, before any conversion
        assert emb["broken_steps"] == [{"step": 2, "error": "missing tensors.tsv"}] and emb["steps"] == [0, 1]
        assert app.get("sample?run=emb&id=5").status_code == 200  # any data route converts the run
        emb = _runs(app)["emb"]
        assert emb["steps"] == [0] and [b["step"] for b in emb["broken_steps"]] == [1, 2]
        assert "tensors.tsv" in emb["broken_steps"][0]["error"] and "not-a-number" in emb["broken_steps"][0]["error"]
        resp = app.get("projection?run=emb&step=1")
        assert resp.status_code == 404 and "tensors.tsv" in _json(resp)["error"]
        assert _json(app.get("sample?run=emb&id=5"))["steps"] == [0]
    finally:
        app.close()


def test_without_labels_each_step_says_why(tmp_path):
    root = str(tmp_path / "logs")
    write_projector_run(os.path.join(root, "nolabels"), steps=2, n=40, dim=8, metadata=None, sprite=False)
    write_projector_run(os.path.join(root, "oneclass"), steps=2, n=40, dim=8,
                        metadata=([["a", "same"]] * 40, ["name", "label"]), sprite=False)
    app = WsgiApp(root)
    try:
        runs = _runs(app)
        assert runs["nolabels"]["steps"] == [] and runs["nolabels"]["broken_steps"] == [
            {"step": 0, "error": projector_import.NO_LABELS}, {"step": 1, "error": projector_import.NO_LABELS}]
        assert app.index("oneclass").steps == []
        broken = _runs(app)["oneclass"]["broken_steps"]
        assert [b["step"] for b in broken] == [0, 1] and "single class" in broken[0]["error"]
        assert app.get("projection?run=nolabels&step=0").status_code == 404
    finally:
        app.close()


def test_label_column_and_class_order(tmp_path):
    """A header picks the label column; classes are the sorted strings (numbers numerically) over all steps."""
    root = str(tmp_path / "logs")
    names = ["bird", "cat", "dog"]
    rows = [[str(i), names[i % 3], str(i % 2)] for i in range(45)]
    write_projector_run(os.path.join(root, "animals"), steps=2, n=45, dim=8, sprite=False,
                        metadata=(rows, ["id", "Class", "odd"]))
    app = WsgiApp(root)
    try:
        index = app.index("animals")
        assert index.steps == [0, 1] and index.latest()["classes"] == names
        labels = index.store.load_step(index.records[1]).labels
        assert labels.tolist() == [i % 3 for i in range(45)]
        assert _runs(app)["animals"]["has_inputs"] is False
    finally:
        app.close()
    assert projector_import.class_names(["10", "9", "2", "b", "a", "2"]) == ["2", "9", "10", "a", "b"]
    assert projector_import.parse_metadata(b"7\n3\n") == ["7", "3"]
    assert projector_import.parse_metadata(b"idx\tY\r\n0\t5\r\n1\t6\r\n") == ["5", "6"]
    assert projector_import.parse_metadata(b"name\tcolour\nx\tred\n") == ["x"], "no label column: the first"
    with pytest.raises(storage.StepError):
        projector_import.parse_metadata(b"a\tlabel\nonly-one-column\n")


def test_probe_separates_what_is_separable():
    images, labels = _digits(300)
    feats = _features(images, 0, dim=32)
    probe = projector_import.fit_probe(feats, labels, 10)
    with torch.no_grad():
        pred = probe(torch.from_numpy(feats)).argmax(1).numpy()
    assert (pred == labels).mean() > 0.9
    again = projector_import.fit_probe(feats, labels, 10)
    assert torch.equal(probe.weight, again.weight), "deterministic"
