"""The reader survives crashes and corruption: broken steps are reported, the others still load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import write_run

from tensorboard_plugin_dvi import fsio, storage

_CRASH_AT_STEP_3 = """
import os, sys, torch
import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import summary
real = summary.storage.fsio.atomic_write
def dying_write(path, data, **kwargs):
    # die (no cleanup, no atexit) right after the array files of step 3, before its index record
    if path.endswith("step_00000003.json"):
        os._exit(17)
    real(path, data, **kwargs)
summary.storage.fsio.atomic_write = dying_write
torch.manual_seed(0)
head = torch.nn.Linear(4, 3)
x = torch.randn(20, 4)
for step in range(5):
    dvi.summary.snapshot(sys.argv[1], step, x + step, torch.zeros(20, dtype=torch.long), head)
"""


def test_crash_between_arrays_and_index_keeps_earlier_steps(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _CRASH_AT_STEP_3, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 17, proc.stderr
    store = storage.RunStore(str(tmp_path))
    records, problems = store.read_run()
    assert sorted(records) == [0, 1, 2]
    assert [p.step for p in problems] == [3] and "incomplete step" in problems[0].error
    for step in (0, 1, 2):
        np.testing.assert_allclose(store.load_step(records[step]).features.mean(), records[step]["step"] + 0.0,
                                   atol=1.0)
    assert not [n for n in os.listdir(store.root) if n.startswith(".tmp-")], "temporary files left behind"


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete"])
def test_corrupt_step_file_is_reported_not_raised(tmp_path, damage):
    write_run(str(tmp_path), steps=3)
    store = storage.RunStore(str(tmp_path))
    records, _ = store.read_run()
    path = os.path.join(store.root, records[1]["files"]["arrays"]["name"])
    if damage == "truncate":
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
    elif damage == "flip_byte":
        with open(path, "r+b") as handle:
            handle.seek(os.path.getsize(path) - 10)
            byte = handle.read(1)
            handle.seek(-1, 1)
            handle.write(bytes([byte[0] ^ 0xFF]))
    else:
        os.unlink(path)
    fresh = storage.RunStore(str(tmp_path))
    good, problems = fresh.read_run()
    assert sorted(good) == [0, 2]
    assert [p.step for p in problems] == [1]
    assert ("missing" if damage == "delete" else "hash mismatch") in problems[0].error
    with pytest.raises(storage.StepError):
        fresh.load_step(records[1])
    assert fresh.load_step(good[2]).features.shape == (60, 8)


def test_malformed_record_is_reported(tmp_path):
    write_run(str(tmp_path), steps=2)
    store = storage.RunStore(str(tmp_path))
    with open(os.path.join(store.root, "step_00000001.json"), "w") as handle:
        handle.write('{"version": 1, "step": ')
    good, problems = store.read_run()
    assert sorted(good) == [0] and problems[0].step == 1 and "not valid JSON" in problems[0].error


def test_record_cannot_point_outside_the_run(tmp_path):
    write_run(str(tmp_path), steps=1)
    store = storage.RunStore(str(tmp_path))
    records, _ = store.read_run()
    record = json.loads(json.dumps(records[0]))
    record["files"]["arrays"]["name"] = "../../../etc/passwd"
    with pytest.raises(storage.StepError, match="invalid file name"):
        store.load_step(record)


def test_atomic_write_keeps_old_content_when_interrupted(tmp_path, monkeypatch):
    path = str(tmp_path / "f.bin")
    fsio.atomic_write(path, b"old")

    def boom(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        fsio.atomic_write(path, b"new content")
    with open(path, "rb") as handle:
        assert handle.read() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]


def test_relogged_step_latest_wins_and_old_files_are_removed(tmp_path):
    write_run(str(tmp_path), steps=2, seed=0)
    first = storage.RunStore(str(tmp_path)).read_run()[0][1]
    write_run(str(tmp_path), steps=2, seed=1)
    store = storage.RunStore(str(tmp_path))
    records, problems = store.read_run()
    assert problems == [] and records[1]["files"]["arrays"]["sha256"] != first["files"]["arrays"]["sha256"]
    names = os.listdir(store.root)
    assert first["files"]["arrays"]["name"] not in names, "the re-logged step's old arrays were left behind"
    assert sum(n.startswith("step_00000001-") for n in names) == 2  # the new arrays and head only
