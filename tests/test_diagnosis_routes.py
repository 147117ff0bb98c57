"""The training-dynamics routes (``dynamics``, ``suspects``, ``cube``) on real (small) MNIST training logs.

The route logic (:class:`diagnosis.Diagnosis`) is driven directly on a run index built like the catalog's, to check
its incremental cache, formats and errors; then the real routes answer inside TensorBoard's WSGI app (multiplexer
data provider, sampled like the CLI's Python loader) and inside real ``tensorboard`` processes under both loaders.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil

import numpy as np
import pytest
from helpers import WsgiApp, get, poll, start_tensorboard, stop, write_mnist_run
from tensorboard import errors

from tensorboard_plugin_dvi import binary, catalog, cube, diagnosis, dynamics, storage

STEPS = 5


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """A 5-step MLP run on 600 real MNIST digits with 20 % of training labels flipped (flag ``flipped``)."""
    run_dir = str(tmp_path_factory.mktemp("dyn") / "noisy")
    facts = write_mnist_run(run_dir, STEPS, n=600, noise=0.2)
    return run_dir, facts


def run_index(run_dir: str, name: str = "noisy", steps: list[int] | None = None) -> catalog.RunIndex:
    """The run's index as the catalog builds it: verified records (optionally only ``steps``) and its store."""
    store = storage.RunStore(run_dir)
    records, problems = store.read_run()
    if steps is not None:
        records = {s: r for s, r in records.items() if s in steps}
    return catalog.RunIndex(name, run_dir, records, problems, store)


class CountingStore:
    """Wraps a RunStore and counts the step files loaded."""

    def __init__(self, store: storage.RunStore, drop_flags: bool = False) -> None:
        self.store, self.loads, self.drop_flags = store, 0, drop_flags

    def load_arrays(self, record, *, features=True):
        self.loads += 1
        arrays = self.store.load_arrays(record, features=features)
        return {k: v for k, v in arrays.items() if not (self.drop_flags and k.startswith("flag_"))}


def _counted(index: catalog.RunIndex, **kwargs) -> tuple[catalog.RunIndex, CountingStore]:
    counting = CountingStore(index.store, **kwargs)
    return catalog.RunIndex(index.name, index.directory, index.records, index.problems, counting), counting


def test_new_steps_are_folded_in_without_rereading_old_ones(noisy):
    run_dir, _ = noisy
    diag = diagnosis.Diagnosis()
    early, counting = _counted(run_index(run_dir, steps=[0, 1, 2]))
    diag.dynamics(early)
    assert counting.loads == 3
    later, counting = _counted(run_index(run_dir))
    body, _ = diag.dynamics(later)
    assert counting.loads == STEPS - 3, "only the two new steps are read"
    fresh, _ = diagnosis.Diagnosis().dynamics(run_index(run_dir))
    assert body == fresh and body["steps"] == list(range(STEPS))


def test_a_relogged_step_rebuilds_the_run(noisy, tmp_path):
    run_dir = str(tmp_path / "copy")
    shutil.copytree(noisy[0], run_dir)
    diag = diagnosis.Diagnosis()
    before, _ = diag.suspects(run_index(run_dir, "copy"), k=20)
    index = run_index(run_dir, "copy")
    record = dict(index.records[2])
    arrays = index.store.load_arrays(record)
    arrays["logits"] = arrays["logits"][:, ::-1].copy()  # a different step 2 with a new hash
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    digest = storage.sha256_bytes(data)
    name = f"step_{2:08d}-{digest[:8]}.npz"
    with open(os.path.join(storage.asset_dir(run_dir), name), "wb") as handle:
        handle.write(data)
    record["files"] = {**record["files"], "arrays": {**record["files"]["arrays"], "name": name, "sha256": digest}}
    changed, counting = _counted(index)
    changed.records[2] = record
    after, _ = diag.suspects(changed, k=20)
    assert counting.loads == STEPS, "every step is read again"
    fresh, _ = diagnosis.Diagnosis().suspects(changed, k=20)
    assert after == fresh and after != before


def test_json_csv_and_binary_tables_agree(noisy):
    run_dir, facts = noisy
    diag = diagnosis.Diagnosis()
    body, mime = diag.dynamics(run_index(run_dir), "json")
    assert mime == "application/json" and body["n"] == 600 and body["classes"] == [str(d) for d in range(10)]
    cols = body["columns"]
    assert cols["id"] == facts["ids"].tolist() and cols["label"] == facts["labels"].tolist()
    assert set(cols) == set(diagnosis.COLUMNS)
    raw, mime = diag.dynamics(run_index(run_dir), "csv")
    assert mime.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert [int(r["id"]) for r in rows] == cols["id"]
    assert [r["category"] for r in rows] == cols["category"]
    np.testing.assert_allclose([float(r["aum"]) for r in rows], cols["aum"], atol=1e-5)
    blob, mime = diag.dynamics(run_index(run_dir), "binary")
    assert mime == "application/octet-stream"
    header, arrays = binary.decode(blob)
    assert arrays["id"].tolist() == cols["id"] and header["categories"][0] == "likely mislabeled"
    np.testing.assert_allclose(arrays["score"], cols["score"], atol=1e-4)
    codes = arrays["category"].tolist()
    assert [header["categories"][c] if c >= 0 else "" for c in codes] == cols["category"]
    assert len(blob) < len(raw)


def test_suspects_find_the_flipped_labels_and_csv_matches_json(noisy):
    run_dir, facts = noisy
    body, _ = diagnosis.Diagnosis().suspects(run_index(run_dir), k=600)
    mislabeled = [r["id"] for r in body["suspects"] if r["category"] == "likely mislabeled"]
    found = np.isin(mislabeled, facts["flipped"])
    precision, recall = float(found.mean()), float(found.sum() / len(facts["flipped"]))
    assert precision >= 0.8 and recall >= 0.8, f"'likely mislabeled': precision {precision:.3f}, recall {recall:.3f}"
    train = set(facts["ids"][facts["split"]].tolist())
    assert set(mislabeled) <= train, "only training samples are ranked as likely mislabeled"
    assert body["total"] == len(body["suspects"]) and body["k"] == 600
    raw, _ = diagnosis.Diagnosis().suspects(run_index(run_dir), k=600, fmt="csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert [int(r["id"]) for r in rows] == [s["id"] for s in body["suspects"]]
    assert [r["reason"] for r in rows] == [s["reason"] for s in body["suspects"]]


def test_logged_flags_are_never_an_input(noisy):
    run_dir, _ = noisy
    with_flags, _ = diagnosis.Diagnosis().suspects(run_index(run_dir), k=200)
    index, _ = _counted(run_index(run_dir), drop_flags=True)
    without, _ = diagnosis.Diagnosis().suspects(index, k=200)
    assert with_flags == without


def test_cube_answer(noisy):
    run_dir, facts = noisy
    blob, mime = diagnosis.Diagnosis().cube(run_index(run_dir), rows=64, cols=3, split=None)
    assert mime == "application/octet-stream"
    header, arrays = cube.decode(blob)
    assert header["rows"] <= 64 and header["cols"] == 3 and header["steps"] == list(range(STEPS))
    assert arrays["cells"].shape == (header["rows"], 3)
    assert sorted(arrays["ids"].tolist()) == facts["ids"].tolist()
    assert [b["split"] for b in header["bands"]][:1] == ["train"] and header["bands"][-1]["split"] == "test"
    assert arrays["curves"].shape == (STEPS, 2, 10)
    test_only, _ = diagnosis.Diagnosis().cube(run_index(run_dir), rows=64, cols=64, split="test")
    header, arrays = cube.decode(test_only)
    assert set(arrays["ids"].tolist()) == set(facts["ids"][~facts["split"]].tolist())


@pytest.mark.parametrize("call,match", [
    (lambda d, i: d.dynamics(i, "xml"), "format"),
    (lambda d, i: d.suspects(i, 0), "'k'"),
    (lambda d, i: d.suspects(i, 10, "binary"), "format"),
    (lambda d, i: d.cube(i, 0, 10), "'rows'"),
    (lambda d, i: d.cube(i, 10, 5000), "'cols'"),
    (lambda d, i: d.cube(i, 10, 10, "validation"), "'split'"),
])
def test_bad_parameters_are_invalid_arguments(noisy, call, match):
    with pytest.raises(errors.InvalidArgumentError, match=match):
        call(diagnosis.Diagnosis(), run_index(noisy[0]))


def test_a_run_without_steps_or_logits_is_not_found(noisy, tmp_path):
    empty = catalog.RunIndex("empty", str(tmp_path), {}, [], storage.RunStore(str(tmp_path)))
    with pytest.raises(errors.NotFoundError, match="no servable steps"):
        diagnosis.Diagnosis().suspects(empty, 10)

    class NoLogits(CountingStore):
        def load_arrays(self, record, *, features=True):
            arrays = super().load_arrays(record, features=features)
            arrays.pop("logits")
            return arrays

    index = run_index(noisy[0])
    index = catalog.RunIndex("imported", index.directory, index.records, [], NoLogits(index.store))
    with pytest.raises(errors.NotFoundError, match="no logits"):
        diagnosis.Diagnosis().cube(index)


# -- the real routes ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(noisy):
    app = WsgiApp(os.path.dirname(noisy[0]))
    yield app
    app.close()


def _json(resp):
    assert resp.mimetype == "application/json", (resp.status_code, resp.mimetype)
    return json.loads(resp.get_data())


def test_routes_answer_like_the_route_logic(app, noisy):
    run_dir, facts = noisy
    resp = app.get("dynamics?run=noisy")
    assert resp.status_code == 200
    body = _json(resp)
    assert body["steps"] == list(range(STEPS)) and body["columns"]["id"] == facts["ids"].tolist()
    expected, _ = diagnosis.Diagnosis().dynamics(run_index(run_dir))
    assert body == json.loads(json.dumps(expected))
    resp = app.get("dynamics?run=noisy&format=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [int(r["id"]) for r in rows] == body["columns"]["id"]
    resp = app.get("dynamics?run=noisy&format=binary")
    assert resp.status_code == 200 and resp.mimetype == "application/octet-stream"
    assert binary.decode(resp.get_data())[1]["id"].tolist() == body["columns"]["id"]


def test_suspects_route_json_and_csv_download_rows_match(app):
    top = _json(app.get("suspects?run=noisy&k=25"))
    assert len(top["suspects"]) == 25 and top["k"] == 25
    assert _json(app.get("suspects?run=noisy"))["k"] == 100
    resp = app.get("suspects?run=noisy&k=25&format=csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert [(int(r["id"]), r["category"], r["reason"]) for r in rows] == [
        (s["id"], s["category"], s["reason"]) for s in top["suspects"]]


def test_cube_route(app, noisy):
    resp = app.get("cube?run=noisy&rows=40&cols=2&split=train")
    assert resp.status_code == 200 and resp.mimetype == "application/octet-stream"
    header, arrays = cube.decode(resp.get_data())
    assert header["rows"] <= 40 and header["cols"] == 2 and {b["split"] for b in header["bands"]} == {"train"}
    assert sorted(arrays["ids"].tolist()) == noisy[1]["ids"][noisy[1]["split"]].tolist()
    header, _ = cube.decode(app.get("cube?run=noisy").get_data())
    assert header["cols"] == STEPS and {b["split"] for b in header["bands"]} == {"train", "test"}


@pytest.mark.parametrize("query,code,match", [
    ("suspects?run=nope", 404, "nope"),
    ("suspects", 400, "'run'"),
    ("suspects?run=noisy&k=0", 400, "'k'"),
    ("suspects?run=noisy&format=binary", 400, "'format'"),
    ("dynamics?run=noisy&format=xml", 400, "'format'"),
    ("cube?run=noisy&rows=99999", 400, "'rows'"),
    ("cube?run=noisy&cols=abc", 400, "'cols'"),
    ("cube?run=noisy&split=val", 400, "'split'"),
])
def test_route_errors(app, query, code, match):
    resp = app.get(query)
    assert resp.status_code == code and match in _json(resp)["error"]


def test_live_run_new_steps_are_folded_in(tmp_path):
    import torch

    import tensorboard_plugin_dvi as dvi

    logdir = str(tmp_path / "logs")
    run_dir = os.path.join(logdir, "live")
    gen = torch.Generator().manual_seed(0)
    feats, head = torch.randn(50, 6, generator=gen), torch.nn.Linear(6, 3)
    labels = torch.randint(0, 3, (50,), generator=gen)

    def log(steps):
        for step in steps:
            dvi.summary.snapshot(run_dir, step, feats + 0.2 * step * torch.randn(50, 6, generator=gen), labels, head)
        dvi.summary.close(run_dir)

    log(range(3))
    app = WsgiApp(logdir)
    try:
        assert _json(app.get("suspects?run=live"))["steps"] == [0, 1, 2]
        assert cube.decode(app.get("cube?run=live").get_data())[0]["steps"] == [0, 1, 2]
        log(range(3, 5))
        app.reload()
        assert cube.decode(app.get("cube?run=live").get_data())[0]["steps"] == [0, 1, 2, 3, 4], "no stale cube"
        body = _json(app.get("dynamics?run=live"))
        assert body["steps"] == [0, 1, 2, 3, 4] and body["columns"]["n_steps"] == [5] * 50
        fresh, _ = diagnosis.Diagnosis().dynamics(run_index(run_dir, "live"))
        assert body == json.loads(json.dumps(fresh))
    finally:
        app.close()


@pytest.mark.server
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_real_tensorboard_serves_the_dynamics_routes(noisy, load_fast):
    run_dir, _ = noisy
    proc, url = start_tensorboard(os.path.dirname(run_dir), f"--load_fast={load_fast}")
    base = url + "/data/plugin/dvi/"
    try:
        def ready():
            status, body = get(base + "suspects?run=noisy&k=10")
            return json.loads(body) if status == 200 and json.loads(body)["steps"] == list(range(STEPS)) else None

        body = poll(ready, timeout=90)
        assert body, f"suspects never listed every step under --load_fast={load_fast}"
        expected, _ = diagnosis.Diagnosis().suspects(run_index(run_dir), 10)
        assert body == json.loads(json.dumps(expected))
        status, raw = get(base + "cube?run=noisy&rows=16&cols=4")
        assert status == 200 and cube.decode(raw)[0]["cols"] == 4
        status, raw = get(base + "dynamics?run=noisy&format=csv")
        assert status == 200 and raw.decode("utf-8").startswith("id,label,label_name,split")
        status, raw = get(base + "cube?run=noisy&rows=0")
        assert status == 400
    finally:
        stop(proc)


class FakeResult:
    def __init__(self, step, ids, name):
        self.ids = ids
        self.xy = np.stack([np.full(len(ids), float(step)), np.zeros(len(ids))], 1)
        self.bounds = (0.0, 0.0, 10.0, 10.0)
        self.name, self.prev_name = name, None


class FakeService:
    """Projects steps on demand: every sample moves 1/10 of the map width per step."""

    def __init__(self, ids):
        self.ids, self.ready, self.calls = ids, {}, 0

    def result(self, index, step):
        self.calls += 1
        return FakeResult(step, self.ids, self.ready[step]) if step in self.ready else None


def test_trajectories_follow_projected_steps_incrementally(noisy):
    run_dir, facts = noisy
    service = FakeService(facts["ids"])
    regions = []
    source = diagnosis.ServicePositions(service, region=lambda index, step, result: regions.append(step) or
                                        np.zeros(len(result.ids), np.int64))
    diag = diagnosis.Diagnosis(positions=source)
    cols = diag.dynamics(run_index(run_dir))[0]["columns"]
    assert set(cols["n_projected"]) == {0} and set(cols["steps_other_region"]) == {-1}
    service.ready = {0: "a", 1: "a", 2: "a"}
    cols = diag.dynamics(run_index(run_dir))[0]["columns"]
    assert set(cols["n_projected"]) == {3} and cols["path_length"] == [pytest.approx(0.2)] * 600
    assert cols["steps_other_region"] == (3 * (facts["labels"] != 0)).tolist()
    service.ready[3] = "a"
    diag.dynamics(run_index(run_dir))
    assert regions == [0, 1, 2, 3], "only the new step's regions are computed"
    service.ready[1] = "b"  # step 1 projected again with other settings: start over
    cols = diag.dynamics(run_index(run_dir))[0]["columns"]
    assert regions[4:] == [0, 1, 2, 3] and set(cols["n_projected"]) == {4}
    assert cols["max_jump"] == [pytest.approx(0.1)] * 600


def test_a_step_with_malformed_arrays_is_skipped_and_reported(noisy):
    class Hostile(CountingStore):
        def load_arrays(self, record, *, features=True):
            arrays = super().load_arrays(record, features=features)
            if record["step"] == 1:
                arrays["labels"] = arrays["labels"] + 100  # outside the classes
            return arrays

    index = run_index(noisy[0])
    index = catalog.RunIndex("noisy", index.directory, index.records, [], Hostile(index.store))
    body, _ = diagnosis.Diagnosis().suspects(index, 5)
    assert body["steps"] == [s for s in range(STEPS) if s != 1]
    assert body["skipped_steps"][0]["step"] == 1 and "labels must lie in [0, 10)" in body["skipped_steps"][0]["error"]


def test_every_answer_stays_well_formed_when_every_step_is_malformed(noisy):
    class AllBad(CountingStore):
        def load_arrays(self, record, *, features=True):
            return {**super().load_arrays(record, features=features), "ids": np.zeros(3, np.int64)}

    index = run_index(noisy[0])
    index = catalog.RunIndex("noisy", index.directory, index.records, [], AllBad(index.store))
    diag = diagnosis.Diagnosis()
    body, _ = diag.suspects(index, 5)
    assert body["steps"] == [] and body["suspects"] == [] and len(body["skipped_steps"]) == STEPS
    header, arrays = cube.decode(diag.cube(index)[0])
    assert header["rows"] == 0 and arrays["ids"].size == 0
    assert diag.dynamics(index, "csv")[0].decode().count("\n") == 1  # the header row only


def test_a_failing_position_source_leaves_the_other_columns_served(noisy):
    run_dir, facts = noisy

    class Source:
        failures = 1

        def key(self, index, step):
            return "a" if step < 2 else None

        def load(self, index, step):
            if step == 1 and self.failures:
                self.failures -= 1
                raise OSError("cache file removed")
            return dynamics.Positions(step, facts["ids"], np.zeros((600, 2)), 1.0, key="a")

    diag = diagnosis.Diagnosis(positions=Source())
    cols = diag.dynamics(run_index(run_dir))[0]["columns"]
    assert set(cols["n_projected"]) == {1} and len(cols["aum"]) == 600, "step 0 folded, step 1 failed"
    cols = diag.dynamics(run_index(run_dir))[0]["columns"]
    assert set(cols["n_projected"]) == {2}, "the next request folds step 1"
