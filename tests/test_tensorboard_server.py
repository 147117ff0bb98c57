"""A real `tensorboard` process, under both loaders, lists every DVI step of several runs."""

from __future__ import annotations

import json

import pytest
from helpers import get, poll, start_tensorboard, stop, write_run

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    write_run(str(root / "logs" / "clean"), steps=13, inputs=True)
    write_run(str(root / "logs" / "noisy"), steps=15, seed=1)
    return str(root / "logs")


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_real_tensorboard_serves_all_steps(logdir, load_fast):
    proc, url = start_tensorboard(logdir, f"--load_fast={load_fast}")
    try:
        def listed():
            status, body = get(url + "/data/plugins_listing")
            return status == 200 and json.loads(body).get("dvi", {}).get("enabled")

        assert poll(listed, timeout=60), "dvi never became enabled in /data/plugins_listing"

        def all_steps():
            status, body = get(url + "/data/plugin/dvi/runs")
            if status != 200:
                return None
            runs = {r["run"]: r["steps"] for r in json.loads(body)["runs"]}
            return runs if runs.get("clean") == list(range(13)) and runs.get("noisy") == list(range(15)) else None

        runs = poll(all_steps, timeout=90)
        status, body = get(url + "/data/plugin/dvi/runs")
        assert runs, f"runs never listed every step under --load_fast={load_fast}: {status} {body[:500]!r}"
        status, body = get(url + "/data/plugin/dvi/index.js")
        assert status == 200 and b"render" in body
        status, body = get(url + "/data/plugin/dvi/runs/../../../etc/passwd")
        assert status == 404
    finally:
        stop(proc)
