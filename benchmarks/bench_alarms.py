"""Alarms on real training runs: the right alarm at the right step, none on the clean demo run, and their cost.

Runs (real MNIST training, ``--logdir``; missing ones are trained first):

* ``continual`` (``examples/continual.py``): the demo CNN on digits 0-4, then only on 5-9. Target: an alarm at the
  first logged step after the switch that names the forgotten digits 0-4.
* ``continual_dense``: the same, also logged at every batch from 7 before the switch to 16 after (a closer look
  that shows whether an alarm comes before the accuracy falls).
* ``unstable`` (``examples/unstable.py``): a learning-rate spike ending at one logged step. Target: an alarm there.
* the demo's clean run (``examples/train_mnist.py``, ``--demo-runs``). Target: no alarm at any step.

The switch and spike steps are ground truth from the example scripts, used here only to score the alarms. For each
run the report also gives the *lead*: how many logged steps (and training batches) before the test-accuracy drop
(the first logged step whose overall test accuracy is at least 5 points below its best so far) the first alarm
came, counted from the event (switch or spike) on, as SentryCam reports it; and, on the clean runs, the *margin*:
by how much each rule's thresholds could be tightened before that run raised an alarm of the rule.

    python benchmarks/bench_alarms.py --logdir /tmp/demo_logs_alarms [--demo-runs clean,noisy] [--retrain]

Writes benchmarks/results/alarms.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import alarms, catalog, storage, training_views

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "examples"))
import results_io  # noqa: E402 - sibling module of this script

DROP = 0.05
"""A test-accuracy drop: at least this far below the best test accuracy so far."""

TIGHTEN = (1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0)
"""Factors by which the rules' thresholds are tightened to measure a clean run's margin."""


def run_index(run_dir: str) -> catalog.RunIndex:
    store = storage.RunStore(run_dir)
    records, problems = store.read_run()
    return catalog.RunIndex(os.path.basename(run_dir), run_dir, records, problems, store)


def ensure_examples(logdir: str, retrain: bool) -> dict[str, dict[str, Any]]:
    """Train the continual and unstable runs when missing (or asked); their ground-truth event steps."""
    import continual
    import torch
    import unstable

    torch.set_num_threads(1)
    facts = {}
    spike = inspect.signature(unstable.train_unstable).parameters
    events = {"continual": continual.switch_step(),  # training on 5-9 starts after this batch
              "unstable": spike["spike_step"].default - spike["spike_batches"].default}  # the spike starts after it
    events["continual_dense"] = events["continual"]
    dense = (events["continual"] - 7, events["continual"] + 16)  # every batch from 7 before the switch to 16 after

    def continual_dense(logdir: str, name: str) -> dict[str, Any]:
        return continual.train_continual(logdir, name, dense=dense)

    for name, train in (("continual", continual.train_continual), ("continual_dense", continual_dense),
                        ("unstable", unstable.train_unstable)):
        facts[name] = {"train_s": None, "event_after": events[name]}
        if retrain or not run_index(os.path.join(logdir, name)).records:
            started = time.time()
            train(logdir, name)
            facts[name]["train_s"] = time.time() - started
    return facts


def ensure_demo(logdir: str, runs: list[str]) -> None:
    """Train the demo's runs with its own script when missing."""
    missing = [r for r in runs if not run_index(os.path.join(logdir, r)).records]
    if missing:
        subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_mnist.py"), "--logdir", logdir,
                        "--runs", ",".join(missing)], check=True)


def evaluate(run_dir: str, event_after: int | None) -> dict[str, Any]:
    """Alarms of one run through the route logic, timings, test-accuracy drop and lead."""
    index = run_index(run_dir)
    views = training_views.TrainingViews()
    started = time.perf_counter()
    body, _ = views.alarms(index)
    scratch = time.perf_counter() - started
    steps = body["steps"]
    partial = catalog.RunIndex(index.name, index.directory, {s: index.records[s] for s in steps[:-1]}, [],
                               index.store)
    fresh = training_views.TrainingViews()
    fresh.alarms(partial)
    started = time.perf_counter()
    fresh.alarms(index)
    new_step = time.perf_counter() - started
    test_acc = [index.records[s]["accuracy"]["test"] for s in steps]
    best = np.maximum.accumulate(test_acc)
    drop_at = next((s for s, a, b in zip(steps[1:], test_acc[1:], best[:-1], strict=True) if a <= b - DROP), None)
    out = {"steps": len(steps), "first_step": steps[0], "last_step": steps[-1],
           "alarms": [{k: a[k] for k in ("step", "kind", "source", "class_names", "layers", "reason")}
                      for a in body["alarms"]],
           "test_accuracy": [round(a, 4) for a in test_acc], "test_drop_step": drop_at,
           "largest_test_drop": round(float(np.max(best - test_acc)), 4),
           "route_from_scratch_s": scratch, "per_step_ms": 1000 * scratch / len(steps), "new_step_ms": 1000 * new_step}
    if event_after is not None:
        event_step = next(s for s in steps if s > event_after)
        after = [a for a in body["alarms"] if a["step"] >= event_step]
        first = after[0]["step"] if after else None
        out.update({"event_after_batch": event_after, "event_logged_step": event_step, "first_alarm_after": first,
                    "alarms_before_event": [a for a in out["alarms"] if a["step"] < event_step],
                    "at_event": [a for a in out["alarms"] if a["step"] == event_step]})
        if first is not None and drop_at is not None:
            out["lead_logged_steps"] = steps.index(drop_at) - steps.index(first)
            out["lead_batches"] = drop_at - first
    out["margin"] = margins(index)
    return out


def margins(index: catalog.RunIndex) -> dict[str, float]:
    """Per rule, the largest factor in :data:`TIGHTEN` by which its thresholds can be tightened with the run still
    raising no alarm of that rule (0 when it raises one at the default thresholds)."""
    state = training_views.TrainingViews().state(index)
    stats = state.stats.steps
    base = alarms.Rules()
    tighten = {
        "forgetting": lambda k: {"acc_drop": base.acc_drop / k, "acc_sigmas": base.acc_sigmas / k},
        "collapse": lambda k: {"sep_collapse": base.sep_collapse / k},
        "early_warning": lambda k: {"sep_warn": base.sep_warn / k},
        "jump": lambda k: {"jump_z": base.jump_z / k, "jump_ratio": 1 + (base.jump_ratio - 1) / k},
    }
    out = {}
    for kind, change in tighten.items():
        out[kind] = 0.0
        for k in TIGHTEN:
            detector = alarms.AlarmDetector(None, dataclasses.replace(base, **change(k)))
            for s in stats:
                detector.add(s)
            if any(a.kind == kind for a in detector.alarms):
                break
            out[kind] = k
    return out


def long_log(steps: int, n: int, d: int, event: int, seed: int = 0) -> dict[str, Any]:
    """A synthetic long log (``steps`` steps of ``n`` samples x ``d`` features, 10 classes drifting slowly, a test
    split of 20 %): at step ``event`` class 3 starts to merge into class 5 and its accuracy falls. Measures the
    statistics and alarms per step, and the ``stepstats`` answer (overview of every step, detail of 50)."""
    from tensorboard_plugin_dvi.dynamics import StepInput
    from tensorboard_plugin_dvi.stepstats import StepStatistics

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    split = (np.arange(n) >= n // 5).astype(np.uint8)
    centres = 4.0 * rng.standard_normal((10, d))
    noise = rng.standard_normal((n, d)).astype(np.float32)
    stats, detector = StepStatistics(10), alarms.AlarmDetector([str(c) for c in range(10)])
    times = []
    for t in range(steps):
        drift = centres + 0.02 * t * np.sin(np.arange(d) + t / 50.0)
        if t >= event:
            drift[3] = drift[5] + (drift[3] - drift[5]) * max(0.1, 1 - 0.3 * (t - event + 1))
        feats = (drift[labels] + noise + 0.05 * rng.standard_normal((n, d))).astype(np.float32)
        logits = -((feats[:, None, :] - drift[None]) ** 2).sum(-1) / d
        logits[labels == 3, 5] += 0.0 if t < event else 5.0 * min(1.0, 0.3 * (t - event + 1))
        started = time.perf_counter()
        detector.add(stats.add_step(StepInput(t, np.arange(n), labels, split, logits.astype(np.float32)), feats))
        times.append(1000 * (time.perf_counter() - started))
    started = time.perf_counter()
    body = training_views.stepstats_json(stats.steps, stats.maps, steps - 50, steps - 1)
    answer_ms = 1000 * (time.perf_counter() - started)
    size = len(json.dumps(body))
    return {"steps": steps, "n": n, "d": d, "event_step": event,
            "alarms": [{"step": a.step, "kind": a.kind, "classes": list(a.classes)} for a in detector.alarms],
            "per_step_ms": {"median": float(np.median(times)), "p90": float(np.quantile(times, 0.9))},
            "stepstats_answer_ms": answer_ms, "stepstats_bytes": size}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="/tmp/demo_logs_alarms")
    parser.add_argument("--demo-runs", default="clean,noisy")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--long", default="1000,10000,64", help="STEPS,N,D of the synthetic long log (empty: skip)")
    args = parser.parse_args(argv)
    demo = [r for r in args.demo_runs.split(",") if r]
    facts = ensure_examples(args.logdir, args.retrain)
    ensure_demo(args.logdir, demo)
    runs = {name: {**evaluate(os.path.join(args.logdir, name), facts[name]["event_after"]), **facts[name]}
            for name in ("continual", "continual_dense", "unstable")}
    runs.update({name: evaluate(os.path.join(args.logdir, name), None) for name in demo})
    c, u = runs["continual"], runs["unstable"]
    forgotten = [a for a in c["at_event"] if a["kind"] == "forgetting"]
    dense = runs["continual_dense"]
    checks = {
        "continual: alarm at the collapse step naming 0-4": bool(forgotten) and
        {"0", "1", "2", "3", "4"} <= set(forgotten[0]["class_names"]),
        "unstable: alarm at the spike step": bool(u["at_event"]),
        "continual_dense: first alarm before the test-accuracy drop": dense.get("lead_logged_steps", 0) > 0,
        **{f"{name}: no alarm over all steps": not runs[name]["alarms"] for name in demo if "noisy" not in name},
    }
    if args.long:
        steps, n, d = (int(v) for v in args.long.split(","))
        long = long_log(steps, n, d, event=int(0.6 * steps))
        first = [a for a in long["alarms"] if a["step"] >= long["event_step"]]
        checks["long log: no alarm before the event"] = all(a["step"] >= long["event_step"] for a in long["alarms"])
        checks["long log: class 3 alarmed from the event on"] = any(3 in a["classes"] for a in first)
    report = {"machine": {"platform": platform.platform(), "load_average": os.getloadavg(), "threads": 1},
              "rules": dataclasses.asdict(alarms.Rules()), "runs": runs, "checks": checks,
              "long_log": long if args.long else None}
    results_io.save("alarms", report, markdown(report))
    return report


def markdown(r: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.1f}" for x in r["machine"]["load_average"])
    lines = ["# Alarms benchmark (issue 12)", "",
             f"Real MNIST training runs, alarms through the route logic (`training_views.TrainingViews.alarms`), one "
             f"thread, load average {load} (a shared 2-core machine: times are noisy).", "",
             "| check | pass |", "|---|---|"]
    lines += [f"| {name} | {'yes' if ok else 'NO'} |" for name, ok in r["checks"].items()]
    lines += ["", "| run | logged steps | event (ground truth) | test-accuracy drop at | first alarm from the event |"
              " lead (logged steps / batches) | alarms | from scratch (per step) | new step |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, run in r["runs"].items():
        event = (f"after batch {run['event_after_batch']} (first logged: {run['event_logged_step']})"
                 if "event_after_batch" in run else "none")
        drop = run["test_drop_step"]
        drop = drop if drop is not None else f"none (largest fall {run['largest_test_drop']})"
        lead = (f"{run['lead_logged_steps']} / {run['lead_batches']}" if "lead_logged_steps" in run else "-")
        listed = "; ".join(f"{a['kind']}@{a['step']}" for a in run["alarms"]) or "none"
        lines.append(f"| {name} | {run['steps']} ({run['first_step']}..{run['last_step']}) | {event} | {drop} | "
                     f"{run.get('first_alarm_after', '-')} | {lead} | {listed} | {run['route_from_scratch_s']:.1f} s "
                     f"({run['per_step_ms']:.0f} ms) | {run['new_step_ms']:.0f} ms |")
    lines += ["", "Margins: the largest factor (of " + ", ".join(map(str, TIGHTEN)) + ") by which a rule's "
              "thresholds can be tightened with the run still raising no alarm of that rule (0: it raises one).", "",
              "| run | forgetting | collapse | early_warning | jump |", "|---|---|---|---|---|"]
    for name, run in r["runs"].items():
        m = run["margin"]
        lines.append(f"| {name} | {m['forgetting']} | {m['collapse']} | {m['early_warning']} | {m['jump']} |")
    if r.get("long_log"):
        g = r["long_log"]
        listed = "; ".join(f"{a['kind']}@{a['step']} {a['classes']}" for a in g["alarms"]) or "none"
        lines += ["", f"Synthetic long log: {g['steps']} steps of {g['n']:,} samples x {g['d']} features, 10 classes "
                  f"drifting slowly; from step {g['event_step']} class 3 merges into class 5. Statistics and alarms "
                  f"per new step: median {g['per_step_ms']['median']:.0f} ms, p90 {g['per_step_ms']['p90']:.0f} ms; "
                  f"the `stepstats` answer (overview of every step, detail of the last 50) "
                  f"{g['stepstats_answer_ms']:.0f} ms, {g['stepstats_bytes'] / 1024:.0f} KiB of JSON. "
                  f"Alarms: {listed}."]
    lines += ["", "Alarms in words:", ""]
    for name, run in r["runs"].items():
        for a in run["alarms"]:
            lines.append(f"- {name}, step {a['step']}, {a['kind']} ({a['source']}): {a['reason']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
