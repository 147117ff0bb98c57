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


@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_real_tensorboard_serves_projection_and_live_step(projected, tmp_path, load_fast):
    """A projected run is served from the cache; a step appended while TensorBoard runs appears and is projected."""
    import shutil

    import tensorboard_plugin_dvi as dvi
    from tensorboard_plugin_dvi import storage

    root = str(tmp_path / "logs")
    shutil.copytree(projected[0], root)
    proc, url = start_tensorboard(root, f"--load_fast={load_fast}")
    try:
        def projection(step):
            return get(f"{url}/data/plugin/dvi/projection?run=noisy&step={step}")

        ok = poll(lambda: projection(11)[0] == 200, timeout=90)
        assert ok, f"cached step 11 not served: {projection(11)}"
        status, body = get(f"{url}/data/plugin/dvi/landscape?run=noisy&step=11&size=128")
        assert status == 200 and body[:4] == b"\x89PNG"
        store = storage.RunStore(f"{root}/noisy")
        records, _ = store.read_run()
        data, head = store.load_step(records[11]), store.load_head(records[11])
        dvi.summary.snapshot(f"{root}/noisy", 12, data.features * 0.99, data.labels, head, split=data.split,
                             sample_ids=data.ids)
        dvi.summary.close(f"{root}/noisy")

        def listed():
            status, body = get(url + "/data/plugin/dvi/runs")
            return status == 200 and 12 in json.loads(body)["runs"][0]["steps"]

        assert poll(listed, timeout=90), "the appended step never appeared in runs"
        first = projection(12)
        assert first[0] in (200, 202), first
        assert poll(lambda: projection(12)[0] == 200, timeout=300), f"step 12 never projected: {projection(12)}"
        status, body = get(url + "/data/plugin/dvi/runs")
        assert json.loads(body)["runs"][0]["status"]["ready"] == list(range(13))
    finally:
        stop(proc)
