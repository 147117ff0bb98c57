"""Many runs at once: ``dvi-project --jobs N`` (real worker processes) and ``--ray`` (a real local Ray cluster).

The Ray cluster is started by the tests themselves with ``ray.init(num_cpus=2)``, bound to the loopback address and
with Ray's usage reporting off; nothing leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import write_run

from tensorboard_plugin_dvi import cache, cluster, discovery, storage

# Before Ray is imported anywhere (here, in the CLI subprocesses and in Ray's own workers): bind every Ray process to
# 127.0.0.1 instead of the machine's outward address, and never report usage.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = os.path.join(os.path.dirname(sys.executable), "dvi-project")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600, env=env)


def _write_runs(logdir: str, names: list[str], steps: int) -> None:
    for seed, name in enumerate(names):
        write_run(os.path.join(logdir, name), steps=steps, n=120, d=8, seed=seed)


def _chain_complete(logdir: str, run: str) -> bool:
    """Whether every step of ``run`` has its result, each warm-started from the step before it."""
    store = storage.RunStore(os.path.join(logdir, run))
    records, _ = store.read_run()
    results = cache.ResultCache(store, cache.Settings())
    steps = sorted(records)
    return bool(steps) and all(results.has(records[s], records[steps[i - 1]] if i else None)
                               for i, s in enumerate(steps))


def _cache_files(logdir: str, run: str) -> dict[str, float]:
    results = cache.ResultCache(storage.RunStore(os.path.join(logdir, run)), cache.Settings())
    return {f: os.path.getmtime(os.path.join(results.root, f)) for f in sorted(os.listdir(results.root))}


def _jobs(logdir: str, runs: list[str]) -> list[cluster.Job]:
    root = discovery.logdir_root(logdir)
    return [cluster.Job(root, run, threads=1) for run in runs]


# -- --jobs ------------------------------------------------------------------------------------------------------------


def test_jobs_project_runs_at_the_same_time_in_separate_processes(tmp_path):
    logdir = str(tmp_path / "logs")
    _write_runs(logdir, ["a", "b"], steps=2)
    outcomes = cluster.run_local(_jobs(logdir, ["a", "b"]), workers=2)
    assert [(o.run, o.step) for o in outcomes] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert all(o.error is None and not o.skipped for o in outcomes), [o.line() for o in outcomes]
    by_run = {run: [o for o in outcomes if o.run == run] for run in ("a", "b")}
    pids = {run: {o.pid for o in got} for run, got in by_run.items()}
    assert pids["a"].isdisjoint(pids["b"]) and os.getpid() not in pids["a"] | pids["b"]
    spans = {run: (got[0].started, got[-1].ended) for run, got in by_run.items()}
    assert spans["a"][0] < spans["b"][1] and spans["b"][0] < spans["a"][1], f"the runs did not overlap: {spans}"
    assert _chain_complete(logdir, "a") and _chain_complete(logdir, "b")


def test_jobs_cli_projects_everything_once(tmp_path):
    logdir = str(tmp_path / "logs")
    _write_runs(logdir, ["x", "deep/y", "z"], steps=2)
    out = _cli("--logdir", logdir, "--jobs", "2", "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("projected in") == 6 and "3 run(s): 6 step(s) projected, 0 failed" in out.stderr
    assert all(_chain_complete(logdir, run) for run in ("x", "deep/y", "z"))
    before = {run: _cache_files(logdir, run) for run in ("x", "deep/y", "z")}
    again = _cli("--logdir", logdir, "--jobs", "2", "--threads", "1")
    assert again.returncode == 0 and "0 step(s) projected" in again.stderr
    assert {run: _cache_files(logdir, run) for run in ("x", "deep/y", "z")} == before


def test_jobs_only_the_named_runs(tmp_path):
    logdir = str(tmp_path / "logs")
    _write_runs(logdir, ["a", "b", "c"], steps=1)
    out = _cli("--logdir", logdir, "--jobs", "2", "--threads", "1", "--run", "a", "--run", "c", "--quiet")
    assert out.returncode == 0, out.stderr
    assert _chain_complete(logdir, "a") and _chain_complete(logdir, "c") and not _chain_complete(logdir, "b")


def test_a_run_that_cannot_be_opened_fails_alone(tmp_path):
    logdir = str(tmp_path / "logs")
    _write_runs(logdir, ["good"], steps=1)
    jobs = [*_jobs(logdir, ["good"]), cluster.Job(discovery.logdir_root(logdir), "missing")]
    outcomes = cluster.run_local(jobs, workers=2)
    assert [(o.run, o.step, o.error is None) for o in outcomes] == [("good", 0, True), ("missing", -1, False)]
    assert "no DVI data" in outcomes[1].error


def test_usage_errors(tmp_path):
    _write_runs(str(tmp_path), ["a"], steps=1)
    both = _cli("--logdir", str(tmp_path), "--jobs", "2", "--ray")
    assert both.returncode == 2 and "--jobs and --ray are alternatives" in both.stderr
    zero = _cli("--logdir", str(tmp_path), "--jobs", "0")
    assert zero.returncode == 2 and "at least 1" in zero.stderr


def test_ray_missing_names_the_extra(tmp_path):
    _write_runs(str(tmp_path), ["a"], steps=1)
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "from tensorboard_plugin_dvi import cli\n"
            f"sys.exit(cli.main(['--logdir', {str(tmp_path)!r}, '--ray']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "pip install 'tensorboard-plugin-dvi[ray]'" in out.stderr


# -- --ray -------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster of 2 CPUs on the loopback address, started here; its GCS address."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 << 20, logging_level="WARNING",
             log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_cluster_is_on_loopback(ray_cluster):
    assert ray_cluster.startswith("127.0.0.1:")


def test_ray_projects_each_run_as_a_chain_of_step_tasks(tmp_path, ray_cluster):
    logdir = str(tmp_path / "logs")
    _write_runs(logdir, ["a", "b"], steps=3)
    outcomes = cluster.run_ray(_jobs(logdir, ["a", "b"]), ray_cluster)
    assert sorted((o.run, o.step) for o in outcomes) == [(r, s) for r in ("a", "b") for s in range(3)]
    assert all(o.error is None and not o.skipped for o in outcomes), [o.line() for o in outcomes]
    assert os.getpid() not in {o.pid for o in outcomes}  # the steps ran in Ray's workers
    for run in ("a", "b"):
        chain = sorted((o for o in outcomes if o.run == run), key=lambda o: o.step)
        for before, after in zip(chain, chain[1:], strict=False):
            assert after.started >= before.ended, f"{run}: step {after.step} started before its warm start ended"
        assert _chain_complete(logdir, run)
    spans = {run: (min(o.started for o in outcomes if o.run == run), max(o.ended for o in outcomes if o.run == run))
             for run in ("a", "b")}
    assert spans["a"][0] < spans["b"][1] and spans["b"][0] < spans["a"][1], f"the chains did not overlap: {spans}"


def test_ray_cli_uses_an_existing_cluster(tmp_path, ray_cluster):
    logdir = str(tmp_path / "logs")
    _write_runs(logdir, ["r1", "r2"], steps=2)
    out = _cli("--logdir", logdir, "--ray", ray_cluster)
    assert out.returncode == 0, out.stderr
    assert "2 run(s): 4 step(s) projected, 0 failed" in out.stderr
    assert _chain_complete(logdir, "r1") and _chain_complete(logdir, "r2")
    before = {run: _cache_files(logdir, run) for run in ("r1", "r2")}
    started = time.time()
    again = _cli("--logdir", logdir, "--ray", ray_cluster, "--quiet")
    assert again.returncode == 0, again.stderr
    assert {run: _cache_files(logdir, run) for run in ("r1", "r2")} == before, "done steps were projected again"
    assert time.time() - started < 120
