"""Hostile and malformed requests get the right 4xx, a JSON message, and touch nothing outside the logdir.

Also the faults: a corrupt step, a job that raises, and many concurrent readers during a running job.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.parse

import numpy as np
import pytest
from helpers import WsgiApp, write_run

from tensorboard_plugin_dvi import storage

OUTSIDE = "outside_secret.json"

HOSTILE_GETS = [
    ("projection?run=../outside&step=0", 404),
    ("projection?run=..&step=0", 404),
    ("projection?run=/etc&step=0", 404),
    ("projection?run=%2e%2e%2f%2e%2e%2fetc&step=0", 404),
    ("projection?run=..%2Foutside_secret.json&step=0", 404),
    ("projection?run=noisy%00&step=0", 400),
    ("projection?run=nope&step=0", 404),
    ("projection?run=noisy&step=-1", 400),
    ("projection?run=noisy&step=1.5", 400),
    ("projection?run=noisy&step=abc", 400),
    ("projection?run=noisy&step=99999999999999999999999", 400),
    ("projection?run=noisy&step=999", 404),
    ("projection?run=noisy", 400),
    ("projection?step=1", 400),
    ("projection?run=noisy&step=1&format=xml", 400),
    ("landscape?run=noisy&step=1&size=100000", 400),
    ("landscape?run=noisy&step=1&size=0", 400),
    ("landscape?run=noisy&step=1&size=-5", 400),
    ("landscape?run=noisy&step=1&size=1e3", 400),
    ("sample?run=noisy&id=-3", 400),
    ("sample?run=noisy&id=123456789", 404),
    ("sample?run=../../etc&id=1", 404),
    ("thumbnail?run=noisy&id=x", 400),
    ("thumbnail?run=noisy&id=999999", 404),
    ("metrics?run=noisy&step=%00", 400),
    ("../../outside_secret.json", 404),
    ("..%2F..%2Foutside_secret.json", 404),
    ("%2e%2e/%2e%2e/setup.py", 404),
    ("static/../../setup.py", 404),
    ("runs/../../../etc/passwd", 404),
]


@pytest.fixture(scope="module")
def hostile_app(projected, tmp_path_factory):
    top = tmp_path_factory.mktemp("hostile")
    root = str(top / "logs")
    shutil.copytree(projected[0], root)
    with open(top / OUTSIDE, "w") as handle:
        json.dump({"secret": "do not serve"}, handle)
    app = WsgiApp(root)
    yield app, str(top)
    app.close()


def _snapshot(top: str) -> dict[str, float]:
    return {os.path.join(d, f): os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(top) for f in fs}


@pytest.mark.parametrize(("path", "code"), HOSTILE_GETS)
def test_hostile_get(hostile_app, path, code):
    app, top = hostile_app
    before = _snapshot(top)
    resp = app.get(path)
    assert resp.status_code == code, (path, resp.status_code, resp.get_data()[:200])
    body = json.loads(resp.get_data())
    assert isinstance(body.get("error"), str) and "Traceback" not in body["error"]
    assert b"do not serve" not in resp.get_data()
    after = _snapshot(top)
    assert set(after) - set(before) == set() and {p for p in before if before[p] != after.get(p)} == set()


def _pq(step: int = 1) -> str:
    return f"?run=noisy&step={step}"


HOSTILE_POSTS = [
    ("predict" + _pq(), b"not json", {}, 400),
    ("predict" + _pq(), b'{"points": "x"}', {}, 400),
    ("predict" + _pq(), b"[[1, 2, 3]]", {}, 400),
    ("predict" + _pq(), b'[[1, "a"]]', {}, 400),
    ("predict" + _pq(), b"[[1, NaN]]", {}, 400),
    ("predict" + _pq(), json.dumps([[0, 0]] * 100_001).encode(), {}, 400),
    ("predict?run=nope&step=1", b"[[0, 0]]", {}, 404),
    ("project", b'{"run": "noisy"}', {}, 403),
    ("project", b'{"run": "noisy"}', {"X-XSRF-Protected": "0"}, 403),
    ("project", b"garbage", {"X-XSRF-Protected": "1"}, 400),
    ("project", b'{"run": "../../x"}', {"X-XSRF-Protected": "1"}, 404),
    ("project", b'{"run": "noisy", "steps": [1, "a"]}', {"X-XSRF-Protected": "1"}, 400),
    ("project", b'{"run": "noisy", "steps": [500]}', {"X-XSRF-Protected": "1"}, 404),
]


@pytest.mark.parametrize(("path", "data", "headers", "code"), HOSTILE_POSTS)
def test_hostile_post(hostile_app, path, data, headers, code):
    app, top = hostile_app
    before = _snapshot(top)
    resp = app.post(path, data=data, headers=headers)
    assert resp.status_code == code, (path, resp.status_code, resp.get_data()[:200])
    assert "error" in json.loads(resp.get_data())
    assert set(_snapshot(top)) == set(before)


@pytest.mark.parametrize("route", ["project", "predict" + _pq()])
def test_get_on_post_routes_is_refused(hostile_app, route):
    assert hostile_app[0].get(route).status_code == 405


def test_predict_accepts_the_maximum(hostile_app):
    resp = hostile_app[0].post("predict" + _pq(), data=json.dumps([[0.0, 0.0]] * 100_000))
    assert resp.status_code == 200 and len(json.loads(resp.get_data())["pred"]) == 100_000


def test_corrupt_step_reported_others_served(projected, tmp_path):
    root = str(tmp_path / "logs")
    shutil.copytree(projected[0], root)
    store = storage.RunStore(os.path.join(root, "noisy"))
    records, _ = store.read_run()
    with open(os.path.join(store.root, records[4]["files"]["arrays"]["name"]), "r+b") as handle:
        handle.truncate(1000)
    app = WsgiApp(root)
    try:
        (run,) = json.loads(app.get("runs").get_data())["runs"]
        assert 4 not in run["steps"] and [b["step"] for b in run["broken_steps"]] == [4]
        assert "hash mismatch" in run["broken_steps"][0]["error"]
        resp = app.get("projection?run=noisy&step=4")
        assert resp.status_code == 404 and "hash mismatch" in json.loads(resp.get_data())["error"]
        assert app.get("projection?run=noisy&step=3").status_code == 200
    finally:
        app.close()


def test_failing_job_reported_and_worker_keeps_serving(tmp_path):
    """A run whose projection raises (one class only) reports the error; another run still gets projected."""
    root = str(tmp_path / "logs")
    import torch

    import tensorboard_plugin_dvi as dvi

    head = torch.nn.Linear(8, 3)
    with torch.no_grad():
        head.bias[:] = torch.tensor([50.0, 0.0, 0.0])  # every sample predicted as class 0: the method refuses
    dvi.summary.snapshot(os.path.join(root, "bad"), 0, torch.randn(80, 8), torch.zeros(80, dtype=torch.long),
                         head)
    dvi.summary.close(os.path.join(root, "bad"))
    write_run(os.path.join(root, "good"), steps=1, n=120)
    app = WsgiApp(root)
    try:
        assert app.get("projection?run=bad&step=0").status_code == 202
        assert app.get("projection?run=good&step=0").status_code == 202
        assert app.plugin.service.wait_idle(600)
        runs = {r["run"]: r for r in json.loads(app.get("runs").get_data())["runs"]}
        assert runs["bad"]["status"]["state"] == "error" and "class" in runs["bad"]["status"]["error"]
        bad = app.get("projection?run=bad&step=0")
        assert bad.status_code == 422 and "Traceback" not in json.loads(bad.get_data())["error"]
        assert runs["good"]["status"]["state"] == "ready"
        assert app.get("projection?run=good&step=0").status_code == 200
    finally:
        app.close()


def test_fifty_concurrent_gets_during_a_running_job(projected, tmp_path):
    root = str(tmp_path / "logs")
    shutil.copytree(projected[0], root)
    write_run(os.path.join(root, "busy"), steps=3, n=400, d=16)
    app = WsgiApp(root)
    try:
        assert app.get("projection?run=busy&step=2").status_code == 202  # starts a job
        expected = json.loads(app.get("projection?run=noisy&step=6").get_data())
        results, errors = [], []
        paths = ["projection?run=noisy&step=6", "runs", "metrics?run=noisy&step=6", "sample?run=noisy&id=3",
                 "projection?run=busy&step=2"]

        def worker(i: int) -> None:
            try:
                resp = app.get(paths[i % len(paths)])
                results.append((paths[i % len(paths)], resp.status_code, resp.get_data()))
            except Exception as err:  # noqa: BLE001 - collected and asserted below
                errors.append(err)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors and len(results) == 50
        running_seen = app.plugin.service.status(app.index("busy"))
        for path, code, data in results:
            if path.startswith("projection?run=noisy"):
                assert code == 200 and json.loads(data)["x"] == expected["x"]
            elif path.startswith("projection?run=busy"):
                assert code in (200, 202)
            else:
                assert code == 200, (path, code, data[:200])
        assert running_seen["state"] in ("running", "queued", "ready")
        assert app.plugin.service.wait_idle(600)
    finally:
        app.close()


def test_query_strings_are_not_reflected_unescaped(hostile_app):
    payload = urllib.parse.quote("<script>alert(1)</script>")
    resp = hostile_app[0].get(f"projection?run={payload}&step=0")
    assert resp.status_code == 404 and resp.mimetype == "application/json"
    assert np.all([h != "text/html" for h in [resp.mimetype]])
