"""`--dvi_autoproject all` projects from TensorBoard's start, before any browser asks; `runs` says how long is left."""

from __future__ import annotations

import json
import os

import pytest
from helpers import get, poll, start_tensorboard, stop, write_run

pytestmark = pytest.mark.server


def _results_on_disk(run_dir: str) -> int:
    cache_root = os.path.join(run_dir, "plugins", "dvi", "cache")
    if not os.path.isdir(cache_root):
        return 0
    return sum(name.endswith(".json") for folder in os.listdir(cache_root)
               for name in os.listdir(os.path.join(cache_root, folder)))


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_projection_starts_without_any_request(tmp_path, load_fast):
    logdir = tmp_path / "logs"
    write_run(str(logdir / "a"), steps=4)
    proc, url = start_tensorboard(str(logdir), f"--load_fast={load_fast}", "--dvi_autoproject", "all")
    try:
        # no request to the plugin at all: results appear on disk by themselves
        assert poll(lambda: _results_on_disk(str(logdir / "a")) >= 2, timeout=240), "nothing was projected"
        status, body = get(url + "/data/plugin/dvi/runs")
        run = json.loads(body)["runs"][0]
        state = run["status"]
        assert state["state"] in ("running", "queued", "ready"), state
        if state["state"] != "ready":
            assert isinstance(state["eta_s"], (int, float)) and state["eta_s"] >= 0, state
        # a step logged while TensorBoard runs is projected too, still with no request
        write_run(str(logdir / "b"), steps=1)
        assert poll(lambda: _results_on_disk(str(logdir / "b")) >= 1, timeout=240), "a new run was not projected"
    finally:
        stop(proc)
