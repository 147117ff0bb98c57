"""`dvi-project`, the offline precompute command, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import write_run

from tensorboard_plugin_dvi import cache, cli, storage


def _run(*args: str) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "dvi-project")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600)


def test_missing_logdir_is_a_clear_error(tmp_path):
    out = _run("--logdir", str(tmp_path / "nope"))
    assert out.returncode == 2 and "is not a directory" in out.stderr


def test_unknown_run_lists_the_known_ones(tmp_path):
    write_run(str(tmp_path / "a"), steps=1)
    out = _run("--logdir", str(tmp_path), "--run", "b")
    assert out.returncode == 2 and "unknown run(s) ['b']" in out.stderr and "['a']" in out.stderr


def test_cuda_without_gpu_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():  # on a GPU machine the flag is valid; nothing to refuse
        return
    write_run(str(tmp_path / "a"), steps=1)
    out = _run("--logdir", str(tmp_path), "--device", "cuda")
    assert out.returncode == 2 and "no CUDA device" in out.stderr


def test_find_runs_matches_tensorboard_run_names(tmp_path):
    write_run(str(tmp_path / "x"), steps=1)
    write_run(str(tmp_path / "deep" / "y"), steps=1)
    assert list(cli.find_runs(str(tmp_path))) == ["deep/y", "x"]


def test_projects_every_step_and_skips_done_ones(tmp_path):
    write_run(str(tmp_path / "a"), steps=2, n=120, d=8)
    out = _run("--logdir", str(tmp_path), "--quiet", "--threads", "1")
    assert out.returncode == 0, out.stderr
    store = storage.RunStore(str(tmp_path / "a"))
    records, _ = store.read_run()
    results = cache.ResultCache(store, cache.Settings())
    assert results.has(records[0], None) and results.has(records[1], records[0])
    mtimes = {f: os.path.getmtime(os.path.join(results.root, f)) for f in os.listdir(results.root)}
    again = _run("--logdir", str(tmp_path), "--quiet", "--threads", "1")
    assert again.returncode == 0
    assert {f: os.path.getmtime(os.path.join(results.root, f)) for f in os.listdir(results.root)} == mtimes
