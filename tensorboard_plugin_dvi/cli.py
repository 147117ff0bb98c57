"""``dvi-project``: precompute a logdir's projections offline (e.g. on a GPU machine) into the plugin's cache.

    dvi-project --logdir runs [--run NAME ...] [--device cuda] [--variant dvi]

Runs are found as directories under the logdir that hold DVI files; steps are read from their on-disk index
records, which are the same records the event files carry, so TensorBoard serves the results at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tensorboard_plugin_dvi import cache, compute, metadata, storage


def find_runs(logdir: str) -> dict[str, str]:
    """``{run name: run directory}`` for every directory under ``logdir`` with DVI files (names as TensorBoard's)."""
    runs = {}
    root = os.path.realpath(logdir)
    suffix = os.path.join("", *metadata.ASSET_DIR)
    for directory, subdirs, _ in os.walk(root):
        subdirs[:] = [d for d in subdirs if d != "cache"]
        if directory.endswith(suffix):
            run_dir = directory[: -len(suffix)].rstrip(os.sep) or root
            runs[os.path.relpath(run_dir, root)] = run_dir
    return dict(sorted(runs.items()))


def _bar(done: int, total: int, fraction: float, label: str) -> None:
    width = 30
    filled = int(width * (done + fraction) / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def project_run(run: str, run_dir: str, settings: cache.Settings, device: str, quiet: bool = False) -> int:
    """Project every unprojected step of one run in order; return the number of steps that failed."""
    store = storage.RunStore(run_dir)
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
            compute.project_step(store, results, records[step], prev, device=device, progress=progress)
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
    failures = sum(project_run(name, path, settings, args.device, args.quiet) for name, path in runs.items())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
