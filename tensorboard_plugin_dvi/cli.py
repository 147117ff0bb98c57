"""``dvi-project``: precompute a logdir's projections offline (e.g. on a GPU machine) into the plugin's cache.

    dvi-project --logdir runs [--run NAME ...] [--device cuda] [--variant dvi]

Runs are found the way the plugin finds them (:mod:`discovery`: the same names, the same symlink policy), including
runs written by torch's ``add_embedding`` (converted first, as the plugin does). Steps are read from their on-disk
index records, which are the same records the event files carry, so TensorBoard serves the results at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tensorboard_plugin_dvi import cache, discovery, method, projector_import, storage


def find_runs(logdir: str) -> dict[str, discovery.RunLocation]:
    """``{run name: location}`` of every run under ``logdir`` with DVI data (names as TensorBoard gives them)."""
    found = {}
    for location in discovery.find_runs(logdir):
        if location.skipped:
            print(f"{location.name}: skipped: {location.skipped}", file=sys.stderr)
        else:
            found[location.name] = location
    return found


def open_store(location: discovery.RunLocation, root: str) -> storage.RunStore:
    """The store holding a run's steps; an imported run's steps are converted first."""
    if location.kind == discovery.PROJECTOR:
        imported = projector_import.ProjectorRun(
            location.directory,
            lambda path: discovery.locate(root, os.path.join(location.name, path)).directory or _outside(path), root)
        imported.scan(convert=True)
        return imported.store
    return storage.RunStore(location.directory, root)


def _outside(path: str) -> str:
    raise storage.StepError(f"{path} resolves outside the logdir")


def _bar(done: int, total: int, fraction: float, label: str) -> None:
    width = 30
    filled = int(width * (done + fraction) / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def project_run(run: str, store: storage.RunStore, settings: cache.Settings, device: str, quiet: bool = False) -> int:
    """Project every unprojected step of one run in order; return the number of steps that failed."""
    records, problems = store.read_run()
    for problem in problems:
        print(f"{run}: step {problem.step} skipped: {problem.error}", file=sys.stderr)
    results = cache.ResultCache(store, settings)
    steps, failures, started = sorted(records), 0, time.time()
    for pos, step in enumerate(steps):
        prev = records[steps[pos - 1]] if pos else None
        if results.has(records[step], prev):
            continue

        def progress(fraction: float, pos: int = pos) -> None:
            if not quiet:
                _bar(pos, len(steps), fraction, run)

        try:
            method.project_step(store, results, records[step], prev, device=device, progress=progress)
        except Exception as err:  # noqa: BLE001 - report and go on with the next step
            failures += 1
            print(f"\n{run}: step {step} failed: {type(err).__name__}: {err}", file=sys.stderr)
    if not quiet:
        _bar(len(steps), len(steps), 0.0, run)
        sys.stderr.write(f"  ({time.time() - started:.1f} s)\n")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dvi-project", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", required=True, help="the TensorBoard logdir")
    parser.add_argument("--run", action="append", help="run name (repeatable; default: every DVI run)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    parser.add_argument("--variant", default="dvi", choices=("dvi", "faithful"))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for torch (default: all cores; use 1 on a machine that is busy)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.logdir):
        parser.error(f"--logdir {args.logdir!r} is not a directory")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda was given but torch sees no CUDA device; use --device cpu")
    runs = find_runs(args.logdir)
    if args.run:
        unknown = sorted(set(args.run) - set(runs))
        if unknown:
            parser.error(f"unknown run(s) {unknown}; runs with DVI data here: {sorted(runs)}")
        runs = {name: runs[name] for name in args.run}
    if not runs:
        print(f"No DVI runs under {args.logdir}.", file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(max(1, args.threads))
    settings = cache.Settings(variant=args.variant)
    root = discovery.logdir_root(args.logdir)
    failures = sum(project_run(name, open_store(loc, root), settings, args.device, args.quiet)
                   for name, loc in runs.items())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
