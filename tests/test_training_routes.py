"""The training routes (``stepstats``, ``alarms``, ``layers``) on a real (small) continual-learning MNIST run.

An MLP learns digits 0-4 for three logged steps, then only 5-9: at step 3 the accuracy on 0-4 collapses. Every step
logs a snapshot and the layer statistics. The route logic (:class:`training_views.TrainingViews`) is driven on a run
index built like the catalog's (incremental cache, formats, errors, malformed steps, projected positions); then the
real routes answer inside TensorBoard's WSGI app and inside real ``tensorboard`` processes under both loaders.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil

import numpy as np
import pytest
import torch
from helpers import WsgiApp, get, poll, start_tensorboard, stop, write_continual_run, write_run
from tensorboard import errors

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import catalog, dynamics, layers, storage, training_views

STEPS, SWITCH = 5, 3
FORGOTTEN = ["0", "1", "2", "3", "4"]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("training") / "logs")
    write_continual_run(os.path.join(root, "continual"), STEPS, SWITCH)
    write_run(os.path.join(root, "plain"), 4)  # no layer statistics
    return root


def run_index(run_dir: str, name: str = "continual", steps: list[int] | None = None) -> catalog.RunIndex:
    store = storage.RunStore(run_dir)
    records, problems = store.read_run()
    if steps is not None:
        records = {s: r for s, r in records.items() if s in steps}
    return catalog.RunIndex(name, run_dir, records, problems, store)


class CountingStore:
    """Wraps a RunStore, counts the step files loaded and can damage one step's arrays."""

    def __init__(self, store: storage.RunStore, damage: int | None = None) -> None:
        self.store, self.loads, self.damage = store, 0, damage
        self.run_dir, self.root, self.path = store.run_dir, store.root, store.path

    def load_arrays(self, record, *, features=True):
        self.loads += 1
        arrays = self.store.load_arrays(record, features=features)
        if record["step"] == self.damage:
            arrays["features"] = arrays["features"][:10]
        return arrays


def _counted(index: catalog.RunIndex, damage: int | None = None) -> tuple[catalog.RunIndex, CountingStore]:
    store = CountingStore(index.store, damage)
    return catalog.RunIndex(index.name, index.directory, index.records, index.problems, store), store


def test_the_collapse_raises_one_forgetting_alarm_naming_the_forgotten_digits(logdir):
    body, mime = training_views.TrainingViews().alarms(run_index(os.path.join(logdir, "continual")))
    assert mime == "application/json" and body["steps"] == list(range(STEPS))
    forgetting = [a for a in body["alarms"] if a["kind"] == "forgetting"]
    assert len(forgetting) == 1 and forgetting[0]["step"] == SWITCH, body["alarms"]
    assert forgetting[0]["class_names"] == FORGOTTEN and "fell sharply" in forgetting[0]["reason"]
    assert all(a["step"] >= SWITCH for a in body["alarms"]), "no alarm while 0-4 are learned"
    assert body["counts"]["forgetting"] == 1 and body["rules"]["acc_drop"] == 0.2
    steps = [a["step"] for a in body["alarms"]]
    assert steps == sorted(steps)


def test_new_steps_are_folded_in_without_rereading_old_ones(logdir):
    run_dir = os.path.join(logdir, "continual")
    views = training_views.TrainingViews()
    early, counting = _counted(run_index(run_dir, steps=[0, 1, 2]))
    before, _ = views.alarms(early)
    assert counting.loads == 3 and before["alarms"] == []
    later, counting = _counted(run_index(run_dir))
    body, _ = views.alarms(later)
    assert counting.loads == STEPS - 3, "only the two new steps are read"
    assert body == training_views.TrainingViews().alarms(run_index(run_dir))[0]


def test_a_long_log_is_folded_in_over_several_requests_within_their_time_budget(logdir):
    views = training_views.TrainingViews(budget_s=0.0)  # one step a request
    index = run_index(os.path.join(logdir, "continual"))
    pending = []
    for _ in range(STEPS):
        body, _ = views.alarms(index)
        pending.append((len(body["steps"]), body["pending_steps"]))
    assert pending == [(k, STEPS - k) for k in range(1, STEPS + 1)]
    assert body == training_views.TrainingViews().alarms(index)[0], "the same answer once every step is in"


def test_a_relogged_step_rebuilds_the_run(logdir, tmp_path):
    run_dir = str(tmp_path / "copy")
    shutil.copytree(os.path.join(logdir, "continual"), run_dir)
    views = training_views.TrainingViews()
    first, _ = views.stepstats(run_index(run_dir))
    index = run_index(run_dir)
    record = dict(index.records[1])
    arrays = index.store.load_arrays(record)
    arrays["features"] = arrays["features"][::-1].copy()  # another step 1 (features moved between samples)
    data = storage.fsio.npz_bytes(arrays)
    digest = storage.sha256_bytes(data)
    name = f"step_{1:08d}-{digest[:8]}.npz"
    with open(os.path.join(storage.asset_dir(run_dir), name), "wb") as handle:
        handle.write(data)
    record["files"] = {**record["files"], "arrays": {**record["files"]["arrays"], "name": name, "sha256": digest}}
    changed, counting = _counted(index)
    changed.records[1] = record
    after, _ = views.stepstats(changed)
    assert counting.loads == STEPS, "every step is read again"
    assert after == training_views.TrainingViews().stepstats(changed)[0] and after != first


def test_stepstats_json_csv_and_range(logdir):
    index = run_index(os.path.join(logdir, "continual"))
    views = training_views.TrainingViews()
    body, mime = views.stepstats(index)
    assert mime == "application/json" and body["classes"] == [str(d) for d in range(10)]
    over = body["overview"]
    assert len(over["accuracy"]) == STEPS and over["neighbour_change"][0] is None
    assert over["watched"] == ["test"] * STEPS and over["displacement"] == [None] * STEPS
    for step in range(STEPS):
        assert over["accuracy"][step] == pytest.approx(index.records[step]["accuracy"]["test"], abs=1e-5)
    detail = body["detail"]
    assert detail["steps"] == list(range(STEPS)) and np.shape(detail["centroid_dist"]) == (STEPS, 10, 10)
    acc = np.array(detail["accuracy"], dtype=float)
    assert (acc[SWITCH - 1, :5] > 0.8).all() and (acc[SWITCH, :5] < 0.5).all(), acc[:, :5]
    assert any(g["label"] < 5 <= g["pred"] for g in detail["grown"][SWITCH])
    part, _ = views.stepstats(index, start=1, end=2)
    assert part["detail"]["steps"] == [1, 2] and part["overview"] == over
    assert part["detail"]["separation"] == detail["separation"][1:3]
    raw, mime = views.stepstats(index, "csv")
    assert mime.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert len(rows) == STEPS * 10 and rows[0]["class_name"] == "0"
    row = next(r for r in rows if r["step"] == str(SWITCH) and r["class"] == "2")
    assert float(row["class_accuracy"]) == pytest.approx(detail["accuracy"][SWITCH][2], abs=1e-5)


def test_layers_json_and_csv(logdir):
    index = run_index(os.path.join(logdir, "continual"))
    body, mime = training_views.TrainingViews().layers(index)
    assert mime == "application/json" and body["steps"] == list(range(STEPS))
    assert [(lay["name"], lay["block"], lay["params"]) for lay in body["layers"]] == [
        ("0.0", "0", 784 * 64 + 64), ("1", "", 64 * 10 + 10)]
    assert body["blocks"] == ["0", ""]
    change = np.array(body["rel_change"], dtype=float)
    assert np.isnan(change[0]).all() and (change[1:] > 0).all()
    assert (np.array(body["grad_norm"], dtype=float) > 0).all() and (np.array(body["norm"], dtype=float) > 0).all()
    raw, _ = training_views.TrainingViews().layers(index, "csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
    assert len(rows) == STEPS * 2 and {r["outlier"] for r in rows} <= {"0", "1"}
    assert float(rows[-1]["norm"]) == pytest.approx(body["norm"][-1][1], abs=1e-5)


def test_layer_records_from_the_catalog_are_preferred_to_the_folder(logdir):
    index = run_index(os.path.join(logdir, "continual"))
    records, _ = layers.disk_records(index.store)
    index.layer_records = {s: r for s, r in records.items() if s < 2}  # as a catalog reading dvi/layers would
    body, _ = training_views.TrainingViews().layers(index)
    assert body["steps"] == [0, 1]


@pytest.mark.parametrize("call,match", [
    (lambda v, i: v.stepstats(i, "xml"), "format"),
    (lambda v, i: v.alarms(i, "binary"), "format"),
    (lambda v, i: v.layers(i, "png"), "format"),
])
def test_bad_parameters_are_invalid_arguments(logdir, call, match):
    with pytest.raises(errors.InvalidArgumentError, match=match):
        call(training_views.TrainingViews(), run_index(os.path.join(logdir, "continual")))


def test_missing_data_is_not_found(logdir, tmp_path):
    with pytest.raises(errors.NotFoundError, match="no layer statistics"):
        training_views.TrainingViews().layers(run_index(os.path.join(logdir, "plain"), "plain"))
    empty = catalog.RunIndex("empty", str(tmp_path), {}, [], storage.RunStore(str(tmp_path)))
    with pytest.raises(errors.NotFoundError, match="no servable steps"):
        training_views.TrainingViews().alarms(empty)


def test_a_malformed_step_is_skipped_and_reported(logdir):
    index, _ = _counted(run_index(os.path.join(logdir, "continual")), damage=1)
    body, _ = training_views.TrainingViews().alarms(index)
    assert body["steps"] == [0, 2, 3, 4]
    assert body["skipped_steps"][0]["step"] == 1 and "features must be finite floats" in \
        body["skipped_steps"][0]["error"]
    assert [a["step"] for a in body["alarms"] if a["kind"] == "forgetting"] == [SWITCH]


def test_a_damaged_layer_file_is_skipped_and_reported(logdir, tmp_path):
    run_dir = str(tmp_path / "copy")
    shutil.copytree(os.path.join(logdir, "continual"), run_dir)
    records, _ = layers.disk_records(storage.RunStore(run_dir))
    with open(os.path.join(storage.asset_dir(run_dir), layers.FOLDER, records[2]["file"]["name"]), "ab") as handle:
        handle.write(b"!")
    body, _ = training_views.TrainingViews().layers(run_index(run_dir))
    assert body["steps"] == [0, 1, 3, 4] and "hash mismatch" in body["skipped_steps"][0]["error"]


class Positions:
    """Projected steps on demand: every sample moves 1/20 of the map width a step, 1/2 at step 4."""

    def __init__(self, ids):
        self.ids, self.ready = ids, {}

    def key(self, index, step):
        return self.ready.get(step)

    def load(self, index, step):
        offset = 0.05 * min(step, 3) + (0.5 if step == 4 else 0.0)
        xy = np.stack([np.full(len(self.ids), offset), np.arange(len(self.ids)) % 7 / 7], 1)
        return dynamics.Positions(step, self.ids, xy, 1.0, key=self.ready[step])


def test_projected_steps_add_map_statistics_in_any_order(logdir):
    index = run_index(os.path.join(logdir, "continual"))
    source = Positions(np.arange(800))
    views = training_views.TrainingViews(positions=source)
    assert views.stepstats(index)[0]["map"]["steps"] == []
    source.ready = {4: "a", 0: "a"}
    body = views.stepstats(index)[0]["map"]
    assert body["steps"] == [0, 4] and body["since"] == [None, 0]
    assert body["displacement"][1] == pytest.approx(0.65)
    source.ready.update({1: "a", 2: "a", 3: "a"})
    body, _ = views.stepstats(index)
    disp = body["map"]["displacement"]
    assert disp[0] is None and disp[1:] == pytest.approx([0.05, 0.05, 0.05, 0.5]), "step 4 measured from step 3 now"
    assert body["overview"]["displacement"][4] == pytest.approx(0.5)
    jumps = [a for a in views.alarms(index)[0]["alarms"] if a["source"] == "map"]
    assert [(a["step"], a["kind"]) for a in jumps] == [(4, "jump")]


# -- the real routes ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(logdir):
    app = WsgiApp(logdir)
    yield app
    app.close()


def _json(resp):
    assert resp.mimetype == "application/json", (resp.status_code, resp.mimetype)
    return json.loads(resp.get_data())


def test_routes_answer_like_the_route_logic(app, logdir):
    run_dir = os.path.join(logdir, "continual")
    for route, call in (("alarms", "alarms"), ("stepstats", "stepstats"), ("layers", "layers")):
        resp = app.get(f"{route}?run=continual")
        assert resp.status_code == 200, (route, resp.get_data()[:200])
        expected, _ = getattr(training_views.TrainingViews(), call)(run_index(run_dir))
        assert _json(resp) == json.loads(json.dumps(expected)), route
        resp = app.get(f"{route}?run=continual&format=csv")
        assert resp.status_code == 200 and resp.mimetype == "text/csv", route
    body = _json(app.get("stepstats?run=continual&start=2&end=3"))
    assert body["detail"]["steps"] == [2, 3]
    body = _json(app.get("stepstats?run=continual&start=999999999999999999&end=0"))  # an empty range is no error
    assert body["detail"]["steps"] == [] and len(body["overview"]["accuracy"]) == STEPS


@pytest.mark.parametrize("query,code,match", [
    ("alarms?run=nope", 404, "nope"),
    ("alarms", 400, "'run'"),
    ("alarms?run=continual&format=xml", 400, "'format'"),
    ("stepstats?run=continual&start=abc", 400, "'start'"),
    ("stepstats?run=continual&end=-1", 400, "'end'"),
    ("stepstats?run=continual&start=%C2%B2", 400, "'start'"),
    ("stepstats?run=continual&format=binary", 400, "'format'"),
    ("layers?run=plain", 404, "no layer statistics"),
])
def test_route_errors(app, query, code, match):
    resp = app.get(query)
    assert resp.status_code == code and match in _json(resp)["error"]


def test_live_run_new_steps_are_folded_in(tmp_path):
    logdir = str(tmp_path / "logs")
    run_dir = os.path.join(logdir, "live")
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 6), torch.nn.Linear(6, 3))
    feats, labels = torch.randn(60, 6, generator=gen), torch.randint(0, 3, (60,), generator=gen)

    def log(steps):
        for step in steps:
            layers.log_layers(run_dir, step, model)
            with torch.no_grad():
                model[1].weight.add_(0.1 * torch.randn(3, 6, generator=gen))
            dvi.summary.snapshot(run_dir, step, model[0](feats).detach(), labels, model[1])
        dvi.summary.close(run_dir)

    log(range(3))
    app = WsgiApp(logdir)
    try:
        assert _json(app.get("alarms?run=live"))["steps"] == [0, 1, 2]
        assert _json(app.get("layers?run=live"))["steps"] == [0, 1, 2]
        log(range(3, 5))
        app.reload()
        body = _json(app.get("stepstats?run=live"))
        assert body["steps"] == [0, 1, 2, 3, 4] and len(body["overview"]["accuracy"]) == 5
        assert _json(app.get("layers?run=live"))["steps"] == [0, 1, 2, 3, 4]
        assert _json(app.get("alarms?run=live")) == json.loads(json.dumps(
            training_views.TrainingViews().alarms(run_index(run_dir, "live"))[0]))
    finally:
        app.close()


@pytest.mark.server
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_real_tensorboard_serves_the_training_routes(logdir, load_fast):
    proc, url = start_tensorboard(logdir, f"--load_fast={load_fast}")
    base = url + "/data/plugin/dvi/"
    try:
        def ready():
            status, body = get(base + "alarms?run=continual")
            return json.loads(body) if status == 200 and json.loads(body)["steps"] == list(range(STEPS)) else None

        body = poll(ready, timeout=90)
        assert body, f"alarms never listed every step under --load_fast={load_fast}"
        expected, _ = training_views.TrainingViews().alarms(run_index(os.path.join(logdir, "continual")))
        assert body == json.loads(json.dumps(expected))
        status, raw = get(base + "layers?run=continual")
        assert status == 200 and json.loads(raw)["steps"] == list(range(STEPS))
        status, raw = get(base + "stepstats?run=continual&format=csv")
        assert status == 200 and raw.decode("utf-8").startswith("step,watched,accuracy")
        status, _ = get(base + "layers?run=plain")
        assert status == 404
    finally:
        stop(proc)
