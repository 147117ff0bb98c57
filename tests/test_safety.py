"""A logdir written by a stranger, served by a real `tensorboard` under both loaders.

Planted: heads in the pickle-based formats of DVI 0.1 (a `.pt2` whose `sample_inputs/model.pt` is a pickle that
runs a command, a `.pt2` whose weights config says `use_pickle: true`, a pickled `.pt`), a head archive holding an
object array, a step file and an inputs file holding object arrays, and (once projected) a cache entry holding an
object array and a truncated model. No code may run; every answer is a 4xx or, for the cache, a recomputation.
Also: a run with a custom (non-Sequential) head projects and renders its landscape through the routes.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch
from helpers import get, poll, start_tensorboard, stop, write_run

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import storage, summary

pytestmark = pytest.mark.server


class _Payload:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class CustomHead(torch.nn.Module):
    """Not a Sequential: saved as an allow-listed operator graph."""

    def __init__(self, d: int, c: int) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.fc = torch.nn.Linear(d, c)
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.norm(x)) + x) * self.scale


def _custom_run(run_dir: str, steps: int = 2) -> None:
    gen = torch.Generator().manual_seed(3)
    feats = torch.randn(90, 8, generator=gen)
    head = CustomHead(8, 3)
    with torch.no_grad():
        labels = head(feats).argmax(1)
    for step in range(steps):
        dvi.summary.snapshot(run_dir, step, feats + 0.05 * step, labels, head, split=np.arange(90) < 70)
    dvi.summary.close(run_dir)


def _pt2_archive(kind: str, marker: str) -> bytes:
    """A torch.export-style archive whose loading would unpickle the payload."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/version", "1")
        if kind == "sample_inputs":
            archive.writestr("archive/data/sample_inputs/model.pt", pickle.dumps(_Payload(marker)))
        else:
            archive.writestr("archive/data/weights/model_weights_config.json",
                             json.dumps({"config": {"w": {"path_name": "weight_0", "use_pickle": True}}}))
            archive.writestr("archive/data/weights/weight_0", pickle.dumps(_Payload(marker)))
    return buffer.getvalue()


def _replant_head(run_dir: str, step: int, data: bytes, ext: str, kind: str) -> None:
    """Point step ``step``'s newest record (files and event) at a crafted head file."""
    store = storage.RunStore(run_dir)
    record = store.list_records()[0][step]
    sha = storage.sha256_bytes(data)
    name = f"step_{step:08d}-{sha[:8]}.{ext}"
    with open(os.path.join(store.root, name), "wb") as handle:
        handle.write(data)
    record["files"]["head"] = {"name": name, "sha256": sha, "bytes": len(data), "kind": kind}
    with open(os.path.join(store.root, f"step_{step:08d}.json"), "w") as handle:
        json.dump(record, handle)
    _reemit_events(run_dir)


def _reemit_events(run_dir: str) -> None:
    """One fresh event file holding each step's record as now on disk (so the planted record is the only one)."""
    for name in os.listdir(run_dir):
        if name.startswith("events.out.tfevents"):
            os.unlink(os.path.join(run_dir, name))
    for step, record in sorted(storage.RunStore(run_dir).list_records()[0].items()):
        summary._write_event(run_dir, None, summary.snapshot_pb(record), step)
    summary.close(run_dir)


def _object_npz(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # object arrays are pickled inside the .npz
    return buffer.getvalue()


def _replant_arrays(run_dir: str, step: int) -> None:
    """Step ``step``'s arrays file replaced by one holding an object array (record and hash updated)."""
    store = storage.RunStore(run_dir)
    record = store.list_records()[0][step]
    with np.load(os.path.join(store.root, record["files"]["arrays"]["name"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["labels"] = np.array([_Payload("/nonexistent")] * len(arrays["labels"]), dtype=object)
    data = _object_npz(arrays)
    sha = storage.sha256_bytes(data)
    name = f"step_{step:08d}-{sha[:8]}.npz"
    with open(os.path.join(store.root, name), "wb") as handle:
        handle.write(data)
    record["files"]["arrays"] = {"name": name, "sha256": sha, "bytes": len(data)}
    with open(os.path.join(store.root, f"step_{step:08d}.json"), "w") as handle:
        json.dump(record, handle)
    _reemit_events(run_dir)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    top = tmp_path_factory.mktemp("planted")
    logdir, marker = str(top / "logs"), str(top / "PWNED")
    for name in ("pt2_inputs", "pt2_weights", "pickled_pt", "object_head", "object_step", "object_inputs"):
        write_run(os.path.join(logdir, name), steps=2, inputs=True)
    _replant_head(os.path.join(logdir, "pt2_inputs"), 0, _pt2_archive("sample_inputs", marker), "head.pt2", "export")
    _replant_head(os.path.join(logdir, "pt2_weights"), 0, _pt2_archive("weights", marker), "head.pt2", "export")
    pickled = pickle.dumps({"format": "dvi-head-v1", "spec": "[]", "state": _Payload(marker)})
    _replant_head(os.path.join(logdir, "pickled_pt"), 0, pickled, "head.pt", "spec")
    meta = np.frombuffer(json.dumps({"format": "dvi-head-v2", "kind": "spec", "spec": []}).encode(), np.uint8)
    evil_npz = _object_npz({"__meta__": meta, "0.weight": np.array([_Payload(marker)], dtype=object)})
    _replant_head(os.path.join(logdir, "object_head"), 0, evil_npz, "head.npz", "spec")
    _replant_arrays(os.path.join(logdir, "object_step"), 1)
    inputs_path = os.path.join(logdir, "object_inputs", "plugins", "dvi", "inputs.npz")
    with open(inputs_path, "wb") as handle:
        handle.write(_object_npz({"ids": np.arange(60), "thumbnails": np.array([_Payload(marker)] * 60, object)}))
    _custom_run(os.path.join(logdir, "custom"))
    write_run(os.path.join(logdir, "cached"), steps=2)
    return logdir, marker


def _runs(url: str) -> dict[str, dict]:
    status, body = get(url + "/data/plugin/dvi/runs")
    assert status == 200, body[:300]
    return {r["run"]: r for r in json.loads(body)["runs"]}


def _settled(url: str) -> dict[str, dict] | None:
    runs = _runs(url)
    busy = [r for r in runs.values() if r["status"]["state"] in ("queued", "running")]
    return None if busy or len(runs) < 8 else runs


def _post(url: str, body: object) -> tuple[int, bytes]:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_planted_logdir_runs_no_code_and_answers_4xx(planted, load_fast):
    logdir, marker = planted
    proc, url = start_tensorboard(logdir, f"--load_fast={load_fast}", "--dvi_autoproject", "all")
    api = url + "/data/plugin/dvi/"
    try:
        runs = poll(lambda: _settled(url), timeout=300, interval=1.0)
        assert runs, f"projection never settled: {_runs(url)}"
        for name in ("pt2_inputs", "pt2_weights", "pickled_pt", "object_head"):
            failed = {f["step"]: f["error"] for f in runs[name]["status"]["failed"]}
            failed.update({p["step"]: p["error"] for p in runs[name]["broken_steps"]})
            assert 0 in failed and ("head" in failed[0] or "objects" in failed[0]), (name, runs[name])
            for path in (f"projection?run={name}&step=0", f"landscape?run={name}&step=0",
                         f"metrics?run={name}&step=0"):
                status, body = get(api + path)
                assert 400 <= status < 500, (name, path, status, body[:200])
                assert "Traceback" not in body.decode()
            status, body = _post(api + f"predict?run={name}&step=0", [[0.0, 0.0]])
            assert 400 <= status < 500, (name, status, body[:200])
        legacy = {f["step"]: f["error"] for f in runs["pt2_inputs"]["status"]["failed"]}[0]
        assert "log the step again" in legacy
        def object_step_broken() -> bool:  # the replanted record is in a second event file, loaded a bit later
            return 1 in {p["step"] for p in _runs(url)["object_step"]["broken_steps"]}

        assert poll(object_step_broken, timeout=60), _runs(url)["object_step"]
        for path in ("sample?run=object_step&id=0", "thumbnail?run=object_inputs&id=0",
                     "sample?run=object_inputs&id=0"):
            status, body = get(api + path)
            assert status in (200, 404), (path, status, body[:200])
            if status == 404:
                assert "broken" in json.loads(body)["error"], body[:200]
        status, body = get(api + "thumbnail?run=object_inputs&id=0")
        assert status == 404 and "inputs.npz" in json.loads(body)["error"]
        # the custom head: projected and drawn through the routes
        assert runs["custom"]["status"]["state"] == "ready", runs["custom"]["status"]
        status, png = get(api + "landscape?run=custom&step=1&size=64")
        assert status == 200 and png.startswith(b"\x89PNG")
        status, body = _post(api + "predict?run=custom&step=1", [[0.0, 0.0], [1.0, -1.0]])
        assert status == 200 and len(json.loads(body)["probs"][0]) == 3
        assert not os.path.exists(marker), "a planted pickle ran code"
    finally:
        stop(proc)


def _poison_cache(logdir: str) -> list[str]:
    """Object array in step 1's coordinates file, truncated model of step 0; returns the poisoned paths."""
    cache_root = os.path.join(logdir, "cached", "plugins", "dvi", "cache")
    folder = os.path.join(cache_root, os.listdir(cache_root)[0])
    names = sorted(os.listdir(folder))
    coords = [n for n in names if n.startswith("step_00000001") and n.endswith(".npz") and ".model" not in n][0]
    model = [n for n in names if n.startswith("step_00000000") and n.endswith(".model.npz")][0]
    with open(os.path.join(folder, coords), "wb") as handle:
        handle.write(_object_npz({"ids": np.arange(60), "xy": np.array([_Payload("/x")] * 60, object)}))
    with open(os.path.join(folder, model), "r+b") as handle:
        handle.truncate(100)
    for png in [n for n in names if n.startswith("step_00000000") and n.endswith(".png")]:
        os.unlink(os.path.join(folder, png))  # so the landscape needs the (truncated) model
    return [coords, model]


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_poisoned_cache_entries_are_recomputed(planted, load_fast, tmp_path):
    import shutil

    logdir = str(tmp_path / "logs")
    shutil.copytree(os.path.join(planted[0], "cached"), os.path.join(logdir, "cached"))
    proc, url = start_tensorboard(logdir, f"--load_fast={load_fast}", "--dvi_autoproject", "all")
    api = url + "/data/plugin/dvi/"
    try:
        assert poll(lambda: _runs(url).get("cached", {}).get("status", {}).get("state") == "ready", timeout=240)
        _poison_cache(logdir)
        status, body = get(api + "projection?run=cached&step=1")
        assert status == 202, (status, body[:200])
        assert "unreadable" in json.loads(body).get("recomputing", ""), body[:300]
        status, body = get(api + "landscape?run=cached&step=0&size=64")
        assert status in (200, 202), (status, body[:200])

        def served() -> bool:
            return all(get(api + p)[0] == 200 for p in ("projection?run=cached&step=1",
                                                       "landscape?run=cached&step=0&size=64",
                                                       "projection?run=cached&step=0"))

        assert poll(served, timeout=240, interval=1.0), _runs(url)["cached"]["status"]
    finally:
        stop(proc)
