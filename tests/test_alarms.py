"""Alarm rules on constructed runs with known answers: each rule fires exactly where it should, and only there."""

from __future__ import annotations

import numpy as np
import pytest

from tensorboard_plugin_dvi import alarms, stepstats
from tensorboard_plugin_dvi.dynamics import StepInput

C, PER = 4, 100
CLASSES = ["cat", "dog", "bird", "fish"]


def make_step(step, accuracy, toward=1.0, jitter=0.0, seed=0, move=None):
    """A step of C classes x PER test samples: class c predicted right for a fraction ``accuracy[c]`` (the rest as
    the next class), features in unit clusters at fixed centres, except that 'dog' sits at the fraction ``toward``
    of the way from 'cat' to its own centre; ``move`` swaps that fraction of each class's samples' features among
    them (the representation reshuffles, the classes stay where they are)."""
    rng = np.random.default_rng(seed + 1000 * step)
    labels = np.repeat(np.arange(C), PER)
    pred = labels.copy()
    for c, a in enumerate(accuracy):
        wrong = np.flatnonzero(labels == c)[int(round(a * PER)):]
        pred[wrong] = (c + 1) % C
    logits = np.full((len(labels), C), -2.0, np.float32)
    logits[np.arange(len(labels)), pred] = 2.0
    centres = 10.0 * np.eye(C, 6)
    centres[1] = centres[0] + toward * (centres[1] - centres[0])
    base = np.random.default_rng(seed).standard_normal((len(labels), 6))  # the same samples each step
    feats = centres[labels] + base + jitter * rng.standard_normal(base.shape)
    for c in range(C) if move else ():
        idx = rng.choice(np.flatnonzero(labels == c), int(move * PER), replace=False)
        feats[idx] = feats[rng.permutation(idx)]
    return StepInput(step, np.arange(len(labels)), labels, np.zeros(len(labels), np.uint8), logits), \
        feats.astype(np.float32)


def run(steps, rules=None, probe=400):
    stats = stepstats.StepStatistics(probe=probe, k=5)
    detector = alarms.AlarmDetector(CLASSES, rules)
    for item, feats in steps:
        detector.add(stats.add_step(item, feats))
    return detector.alarms


def steady(n=12, **kw):
    return [make_step(t, [0.95] * C, jitter=0.05, **kw) for t in range(n)]


def test_a_steady_run_raises_no_alarm():
    assert run(steady()) == []


def test_a_class_falling_from_095_to_01_raises_exactly_one_alarm_at_that_step():
    steps = [make_step(t, [0.95, 0.95, 0.1 if t >= 6 else 0.95, 0.95], jitter=0.05) for t in range(12)]
    got = run(steps)
    assert [(a.step, a.kind, a.classes) for a in got] == [(6, "forgetting", (2,))]
    reason = got[0].reason
    assert "'bird' 0.95 (step 1) -> 0.10" in reason, reason  # the level held at steps 0 and 1 (and later)
    assert "forgetting" in reason and "test split" in reason
    assert "confusions that grew: 'bird' as 'fish' 0.05 -> 0.90" in reason, reason
    assert got[0].value == pytest.approx(0.85) and got[0].threshold == pytest.approx(0.2)


def test_classes_forgotten_together_share_one_alarm_and_recovery_rearms():
    acc = [[0.95] * C] * 4 + [[0.05, 0.05, 0.95, 0.95]] * 2 + [[0.95] * C] * 2 + [[0.95, 0.3, 0.95, 0.95]]
    got = run([make_step(t, a, jitter=0.05) for t, a in enumerate(acc)])
    assert [(a.step, a.kind, a.classes) for a in got] == [(4, "forgetting", (0, 1)), (8, "forgetting", (1,))]
    assert got[0].to_json(CLASSES)["class_names"] == ["cat", "dog"]


def test_small_drops_and_noise_of_a_small_class_raise_nothing():
    acc = [[0.95, 0.95, 0.95, 0.95], [0.9, 0.8, 0.95, 0.95], [0.95, 0.85, 0.95, 0.9]]
    assert run([make_step(t, a, jitter=0.05) for t, a in enumerate(acc)]) == []
    detector = alarms.AlarmDetector()
    detector._start(2)
    detector._acc_best[:] = 0.5
    assert detector.acc_threshold(np.array([1000, 10])) == pytest.approx([0.2, 4 * np.sqrt(0.25 / 10)])


def test_an_untrained_model_predicting_one_class_for_everything_sets_no_reference():
    first = [1.0 if c == 0 else 0.0 for c in range(C)]  # every sample predicted as 'cat' (via the next-class rule)
    item, feats = make_step(0, first)
    item.logits[:] = -2.0
    item.logits[:, 0] = 2.0
    steps = [(item, feats)] + [make_step(t, [0.3, 0.9, 0.9, 0.9], jitter=0.05) for t in range(1, 8)]
    assert [a.kind for a in run(steps)] == []


def test_one_lucky_step_is_no_reference_but_a_level_held_twice_is():
    lucky = [0.6, 0.95, 0.6, 0.6, 0.6]
    assert run([make_step(t, [0.95, a, 0.95, 0.95], jitter=0.05) for t, a in enumerate(lucky)]) == []
    held = [0.6, 0.95, 0.95, 0.6, 0.6]
    got = run([make_step(t, [0.95, a, 0.95, 0.95], jitter=0.05) for t, a in enumerate(held)])
    assert [(a.step, a.kind, a.classes) for a in got] == [(3, "forgetting", (1,))]


def test_separation_collapse_and_an_early_warning_before_accuracy_falls():
    toward = [1.0] * 4 + [0.7, 0.5, 0.5, 0.5]
    acc = [0.95] * 6 + [0.2, 0.2]
    steps = [make_step(t, [0.95, acc[t], 0.95, 0.95], toward=toward[t], jitter=0.02) for t in range(len(acc))]
    got = [(a.step, a.kind, a.classes) for a in run(steps)]
    # 'dog' drifts toward 'cat': the pair's separation falls 30 % at step 4 while accuracy holds (early warning),
    # 50 % at step 5 (collapse); 'dog''s accuracy falls at step 6 (forgetting, reported with the warning).
    assert got == [(4, "early_warning", (0, 1)), (5, "collapse", (0, 1)), (6, "forgetting", (1,))], got
    forgetting = run(steps)[-1]
    assert "warned at step 4, 2 steps earlier" in forgetting.reason


def test_a_class_recovering_part_way_from_a_collapse_raises_no_early_warning():
    toward = [1.0] * 4 + [0.4, 0.7, 0.7]  # collapse (-60 %) then back to -30 %: still past the warning level
    steps = [make_step(t, [0.95] * C, toward=toward[t], jitter=0.02) for t in range(len(toward))]
    assert [(a.step, a.kind) for a in run(steps)] == [(4, "collapse")]


def test_a_representation_jump_is_an_outlier_once_and_not_again_at_the_next_step():
    steps = [make_step(t, [0.95] * C, jitter=0.05, move=0.6 if t == 8 else 0.02) for t in range(14)]
    got = run(steps)
    assert [(a.step, a.kind) for a in got] == [(8, "jump")], [(a.step, a.kind, a.reason) for a in got]
    assert "neighbours changed" in got[0].reason and got[0].value > got[0].threshold


def test_a_jump_needs_history():
    assert alarms.is_outlier(0.9, [0.1, 0.1], alarms.Rules()) == (False, pytest.approx(float("nan"), nan_ok=True))
    hit, limit = alarms.is_outlier(0.9, [0.1, 0.12, 0.11], alarms.Rules())
    assert hit and 0.12 < limit < 0.9


def test_alarms_do_not_change_when_later_steps_arrive():
    steps = [make_step(t, [0.95, 0.95, 0.1 if t >= 6 else 0.95, 0.95], jitter=0.05) for t in range(12)]
    assert run(steps[:7]) == [a for a in run(steps) if a.step <= 6]


def test_map_jumps_and_layer_jumps():
    disp = [0.05, 0.04, 0.05, 0.045, 0.3, 0.05, 0.04]
    got = alarms.map_jumps(list(range(0, 70, 10)), disp)
    assert [(a.step, a.kind, a.source) for a in got] == [(40, "jump", "map")]
    rel = np.full((8, 4), 0.01) + np.random.default_rng(0).uniform(0, 0.002, (8, 4))
    rel[0] = np.nan  # no previous step
    rel[5, :3] = 0.2  # three of four layers jump
    rel[6, 3] = 0.2  # one layer alone: marked as an outlier, not an alarm (1 of 4 < layer_fraction 0.5)
    flags, starts = alarms.layer_outliers(list(range(8)), rel)
    assert flags[5].tolist() == [True, True, True, False] and flags[6].tolist() == [False, False, False, True]
    assert (starts == flags).all()
    names = ["conv1", "conv2", "fc1", "fc2"]
    got = alarms.layer_jumps(list(range(8)), names, rel, alarms.Rules(layer_fraction=0.5))
    assert [(a.step, a.layers) for a in got] == [(5, ("conv1", "conv2", "fc1"))]
    assert "3 of 4 layers" in got[0].reason


def test_a_denser_stretch_of_the_log_is_judged_against_its_own_gap():
    steps = [0, 8, 16, 24, 32, 33, 34, 35, 36, 37, 45, 46]
    disp = [None, 0.05, 0.06, 0.05, 0.055, 0.006, 0.007, 0.006, 0.006, 0.007, 0.06, 0.006]
    assert alarms.map_jumps(steps, [np.nan if d is None else d for d in disp]) == [], "8 steps apart again: usual"
    disp[-1] = 0.05  # one step apart: far more than the other one-step moves
    assert [a.step for a in alarms.map_jumps(steps, [np.nan if d is None else d for d in disp])] == [46]


def test_kinds_sort_within_a_step():
    a = [alarms.Alarm(3, "jump", "features", ""), alarms.Alarm(3, "forgetting", "features", ""),
         alarms.Alarm(1, "collapse", "features", "")]
    assert [(x.step, x.kind) for x in alarms.sort_alarms(a)] == [(1, "collapse"), (3, "forgetting"), (3, "jump")]
