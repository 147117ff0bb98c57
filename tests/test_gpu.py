"""Projection on a CUDA device: ``dvi-project --device cuda`` and ``tensorboard --dvi_device cuda``.

Every test here carries the ``gpu`` marker. Where torch sees no CUDA device, ``make test`` deselects them with
``-m "not gpu"`` and prints that the GPU tests were not run; they are never counted as passed there. Run alone on a
machine without CUDA (``pytest tests/test_gpu.py``), each test is skipped with the reason, and under ``CI=true`` the
suite's rule turns that skip into a failure: a GPU test that did not run is never reported as a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import get, poll, start_tensorboard, stop, write_run

from tensorboard_plugin_dvi import cache, cluster, discovery, method, storage

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def cuda() -> None:
    """Every test here needs a CUDA device."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: GPU test not run (make test deselects these with -m 'not gpu')")


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "dvi-project")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)


def _results(run_dir: str) -> tuple[dict, cache.ResultCache]:
    store = storage.RunStore(run_dir)
    records, _ = store.read_run()
    return records, cache.ResultCache(store, cache.Settings())


def test_project_step_runs_on_the_gpu_and_matches_the_cpu_quality(tmp_path):
    for name in ("gpu", "cpu"):
        write_run(str(tmp_path / name), steps=2, n=300, d=16, c=4)
    scores = {}
    for name in ("gpu", "cpu"):
        store = storage.RunStore(str(tmp_path / name))
        records, results = _results(str(tmp_path / name))
        first = method.project_step(store, results, records[0], None, device="cuda" if name == "gpu" else "cpu")
        second = method.project_step(store, results, records[1], records[0],
                                     device="cuda" if name == "gpu" else "cpu")
        assert np.isfinite(second.xy).all() and second.prev_name == first.name
        scores[name] = second.metrics["train"]
    model = method.load_model(second.model_path, device="cuda")
    assert np.isfinite(model.transform(np.random.default_rng(0).normal(size=(10, 16)).astype(np.float32))).all()
    for key, value in scores["cpu"].items():  # the same method on another device: the same quality, give or take
        if isinstance(value, float) and isinstance(scores["gpu"].get(key), float) and 0 <= value <= 1:
            assert abs(scores["gpu"][key] - value) < 0.15, (key, scores)


def test_cli_device_cuda(tmp_path):
    write_run(str(tmp_path / "a"), steps=2, n=200, d=8)
    out = _cli("--logdir", str(tmp_path), "--device", "cuda", "--quiet")
    assert out.returncode == 0, out.stderr
    records, results = _results(str(tmp_path / "a"))
    assert results.has(records[0], None) and results.has(records[1], records[0])


def test_jobs_share_the_gpu(tmp_path):
    for name in ("a", "b"):
        write_run(str(tmp_path / name), steps=2, n=200, d=8, seed=len(name))
    jobs = [cluster.Job(discovery.logdir_root(str(tmp_path)), name, device="cuda") for name in ("a", "b")]
    outcomes = cluster.run_local(jobs, workers=2)
    assert all(o.error is None and not o.skipped for o in outcomes), [o.line() for o in outcomes]


def test_tensorboard_dvi_device_cuda_serves_projections_and_landscapes(tmp_path):
    logdir = str(tmp_path / "logs")
    write_run(os.path.join(logdir, "a"), steps=2, n=200, d=8)
    proc, url = start_tensorboard(logdir, "--dvi_device", "cuda", "--dvi_autoproject", "all")
    try:
        def ready() -> bool:
            status, body = get(url + "/data/plugin/dvi/runs")
            runs = json.loads(body)["runs"] if status == 200 else []
            return bool(runs) and runs[0]["status"]["ready"] == [0, 1]

        assert poll(ready, timeout=300), "the steps were never projected on the GPU"
        status, body = get(url + "/data/plugin/dvi/landscape?run=a&step=1&size=64")
        assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"
        status, body = get(url + "/data/plugin/dvi/projection?run=a&step=1")
        assert status == 200 and len(json.loads(body)["ids"]) == 200
    finally:
        stop(proc)
