"""``dvi-project``: precompute a logdir's projections offline (e.g. on a GPU machine) into the plugin's cache.

    dvi-project --logdir runs [--run NAME ...] [--device cuda] [--variant dvi] [--jobs N | --ray [ADDRESS]]
                [--prerender-depth N] [--prerender-all-steps]

Runs are found the way the plugin finds them (:mod:`discovery`: the same names, the same symlink policy), including
runs written by torch's ``add_embedding`` (converted first, as the plugin does). Steps are read from their on-disk
index records, which are the same records the event files carry, so TensorBoard serves the results at once.

By default runs are projected one after another in this process. ``--jobs N`` projects N runs at once in local
worker processes; ``--ray [ADDRESS]`` sends every run, as a chain of step tasks, to an existing Ray cluster whose
nodes share the logdir's filesystem (``pip install tensorboard-plugin-dvi[ray]``). See :mod:`cluster`.

Then, as the plugin's background job does, each projected step's landscape overviews are rendered into the cache, so
TensorBoard draws every step at once, and the tile pyramid (levels 1..``--prerender-depth``, default
:data:`cache.PRERENDER_DEPTH`; 0 for none) of the newest step, the one the tab opens on, so zooming in draws cached
tiles too (``--prerender-all-steps``: of every step; about 84 tiles, some 10 s a step on one core, at depth 3). The
plugin renders the other steps' pyramids when a user looks at them. Last, each step's digest (the per-sample record
the ``sample``, ``cube`` and ``dynamics`` routes read) and the run's folded dynamics are written, as the plugin's job
writes them after each step, so first requests on a large run read files instead of decoding every step.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tensorboard_plugin_dvi import cache, cluster, discovery, method, storage, views

open_store = cluster.open_store


def find_runs(logdir: str) -> dict[str, discovery.RunLocation]:
    """``{run name: location}`` of every run under ``logdir`` with DVI data (names as TensorBoard gives them)."""
    found = {}
    for location in discovery.find_runs(logdir):
        if location.skipped:
            print(f"{location.name}: skipped: {location.skipped}", file=sys.stderr)
        else:
            found[location.name] = location
    return found


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


def prerender_run(run: str, store: storage.RunStore, settings: cache.Settings, all_steps: bool = False,
                  quiet: bool = False) -> int:
    """Render the landscapes the tab asks for first into the cache of one projected run: every step's overviews,
    and the tile pyramid (``settings.prerender_depth`` levels) of the newest step, or of every step with
    ``all_steps``. Returns the number of steps whose landscapes failed (reported; they render when first asked)."""
    records, _ = store.read_run()
    results = cache.ResultCache(store, settings)
    steps, failures, rendered, started = sorted(records), 0, 0, time.time()
    for pos, step in enumerate(steps):
        depth = settings.prerender_depth if all_steps or step == steps[-1] else 0
        if not quiet:
            _bar(pos, len(steps), 0.0, f"{run} landscapes")
        try:
            rendered += views.prerender_step(store, results, records[step], depth)
        except Exception as err:  # noqa: BLE001 - a landscape not rendered ahead is rendered when first asked
            failures += 1
            print(f"\n{run}: landscapes of step {step} failed: {type(err).__name__}: {err}", file=sys.stderr)
    if not quiet:
        _bar(len(steps), len(steps), 0.0, f"{run} landscapes")
        sys.stderr.write(f"  ({rendered} images, {time.time() - started:.1f} s)\n")
    return failures


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The command line, checked for what can be refused before any work starts."""
    parser = argparse.ArgumentParser(prog="dvi-project", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", required=True, help="the TensorBoard logdir")
    parser.add_argument("--run", action="append", help="run name (repeatable; default: every DVI run)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N")
    parser.add_argument("--variant", default="dvi", choices=("dvi", "faithful"))
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch per run being projected (default: all cores, shared among "
                             "--jobs; 1 per task with --ray; use 1 on a machine that is busy)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="project N runs at once in local worker processes (default 1: one after another)")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                        help="project over an existing Ray cluster (default address 'auto': RAY_ADDRESS or the "
                             "cluster started with 'ray start' here); every node must see the logdir at the same "
                             "path. Needs: pip install 'tensorboard-plugin-dvi[ray]'")
    parser.add_argument("--prerender-depth", type=int, default=cache.PRERENDER_DEPTH, metavar="N",
                        help="landscape tile levels 1..N rendered ahead for the newest step of each run (default "
                             f"{cache.PRERENDER_DEPTH}: zooming in 4x draws cached tiles; 0: overviews only)")
    parser.add_argument("--prerender-all-steps", action="store_true",
                        help="render the tile pyramid of every step, not only the newest (about 10 s a step at "
                             "depth 3 on one core)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.logdir):
        parser.error(f"--logdir {args.logdir!r} is not a directory")
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--jobs and --threads must be at least 1")
    if not 0 <= args.prerender_depth <= cache.MAX_PRERENDER_DEPTH:
        parser.error(f"--prerender-depth must be between 0 and {cache.MAX_PRERENDER_DEPTH}")
    if args.ray is not None and args.jobs > 1:
        parser.error("--jobs and --ray are alternatives: the Ray cluster decides how many steps run at once")
    if args.ray is not None:
        try:
            cluster.import_ray()
        except ImportError as err:
            parser.error(str(err))
    elif args.device.startswith("cuda"):  # with --ray the GPUs are the cluster's, not this machine's
        import torch

        if not torch.cuda.is_available():
            parser.error("--device cuda was given but torch sees no CUDA device; use --device cpu")
    return parser, args


def select_runs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, discovery.RunLocation]:
    """The runs named by ``--run`` (all DVI runs by default); an unknown name is a usage error."""
    runs = find_runs(args.logdir)
    if args.run:
        unknown = sorted(set(args.run) - set(runs))
        if unknown:
            parser.error(f"unknown run(s) {unknown}; runs with DVI data here: {sorted(runs)}")
        runs = {name: runs[name] for name in args.run}
    return runs


def run_parallel(args: argparse.Namespace, runs: list[str], root: str) -> int:
    """``--jobs N`` or ``--ray``: project the runs through :mod:`cluster`; the number of failed steps."""
    cores = os.cpu_count() or 1
    default_threads = 1 if args.ray is not None else max(1, cores // min(args.jobs, len(runs)))
    jobs = [cluster.Job(root, name, variant=args.variant, device=args.device,
                        threads=args.threads or default_threads) for name in runs]
    started = time.time()
    if args.ray is not None:
        outcomes = cluster.run_ray(jobs, args.ray, echo=not args.quiet)
    else:
        outcomes = cluster.run_local(jobs, args.jobs, echo=not args.quiet)
    failed = [o for o in outcomes if o.error]
    for outcome in failed:
        print(outcome.line(), file=sys.stderr)
    if not args.quiet:
        done = sum(1 for o in outcomes if not o.error and not o.skipped)
        print(f"{len(runs)} run(s): {done} step(s) projected, {len(failed)} failed in {time.time() - started:.1f} s",
              file=sys.stderr)
    return len(failed)


def digest_run(run: str, store: storage.RunStore, settings: cache.Settings) -> int:
    """Write what the plugin's routes read of a projected run, as its background job does after each step: every
    step's digest (with the map region under each sample) and the run's folded dynamics, so that the first
    ``sample``, ``cube`` and ``dynamics`` requests on a run projected offline read files instead of decoding every
    step. Returns the number of steps that could not be digested (reported; built when first asked instead)."""
    from tensorboard import errors

    from tensorboard_plugin_dvi import catalog, jobs, trajectory

    records, problems = store.read_run()
    service = jobs.ProjectionService(settings)
    reader = views.Views(service, autoproject="off")
    saves = trajectory.DynamicsCheckpoints(reader)
    dynamics = trajectory.diagnosis_over(reader, saves)
    index = catalog.RunIndex(run, store.run_dir, records, problems, store)
    failures = 0
    try:
        for step in sorted(records):
            try:
                trajectory.after_projection(reader, dynamics, index, step)
            except (errors.PublicError, storage.StepError, OSError, ValueError) as err:
                failures += 1
                print(f"\n{run}: digest of step {step} failed: {type(err).__name__}: {err}", file=sys.stderr)
        if not saves.wait(120):
            print(f"{run}: the folded dynamics were not saved in time; the plugin folds them when first asked",
                  file=sys.stderr)
    finally:
        service.close()
    return failures


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    runs = select_runs(parser, args)
    if not runs:
        print(f"No DVI runs under {args.logdir}.", file=sys.stderr)
        return 1
    root = discovery.logdir_root(args.logdir)
    if args.ray is not None:
        try:
            cluster.connect(args.ray)
        except (ConnectionError, RuntimeError, ValueError) as err:
            print(f"dvi-project: could not connect to the Ray cluster at {args.ray!r}: {err}", file=sys.stderr)
            return 2
    import torch

    settings = cache.Settings(variant=args.variant, prerender_depth=args.prerender_depth)
    if args.jobs > 1 or args.ray is not None:
        failures = run_parallel(args, list(runs), root)
    else:
        torch.set_num_threads(max(1, args.threads or os.cpu_count() or 1))
        failures = sum(project_run(name, open_store(loc, root), settings, args.device, args.quiet)
                       for name, loc in runs.items())
    torch.set_num_threads(max(1, args.threads or os.cpu_count() or 1))
    for name, loc in runs.items():  # imported runs have no classifier head, hence no landscape
        if loc.kind != discovery.PROJECTOR:
            prerender_run(name, open_store(loc, root), settings, args.prerender_all_steps, args.quiet)
            digest_run(name, open_store(loc, root), settings)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
