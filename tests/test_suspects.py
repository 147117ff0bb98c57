"""Suspects: the score, the categories and the reasons, on constructed training histories."""

from __future__ import annotations

import numpy as np
import pytest

from tensorboard_plugin_dvi import suspects
from tensorboard_plugin_dvi.dynamics import Dynamics, StepInput

CLASSES = ["t-shirt", "trouser", "coat"]
T = 10


def _history(rows: list[tuple[int, int, list[np.ndarray]]]) -> Dynamics:
    """Samples given as (label, split, logits per step); ids are their positions."""
    steps = []
    for s in range(T):
        logits = np.stack([row[2][s] for row in rows]).astype(np.float32)
        steps.append(StepInput(s, np.arange(len(rows)), np.array([r[0] for r in rows]),
                               np.array([r[1] for r in rows], np.uint8), logits))
    return Dynamics.from_steps(steps)


def _confident(cls: int, strength: float = 5.0) -> np.ndarray:
    z = np.zeros(3)
    z[cls] = strength
    return z


def _mixed_run() -> Dynamics:
    rows = [
        (0, 1, [_confident(0) for _ in range(T)]),  # 0: clean, learned at once
        (0, 1, [_confident(0, 1.0) if s % 2 else _confident(1, 1.0) for s in range(T)]),  # 1: oscillates
        (0, 1, [_confident(0) if s < 5 else _confident(1, 0.6) for s in range(T)]),  # 2: forgotten
        (0, 1, [_confident(2, 4.0) if s else _confident(0, 0.5) for s in range(T)]),  # 3: coat, 9 of 10 steps
        (1, 0, [_confident(2, 4.0) if s else _confident(1, 0.5) for s in range(T)]),  # 4: same, but a test sample
        (1, 1, [_confident(1, 3.0) for _ in range(T)]),  # 5: clean
    ]
    return _history(rows)


def test_a_consistently_confident_wrong_prediction_ranks_first():
    table = _mixed_run().table()
    rows = suspects.rank(table)
    assert rows[0] == 3, f"ranking {rows.tolist()}, scores {np.round(suspects.score(table), 3).tolist()}"
    s = suspects.score(table)
    assert s[3] > s[2] > s[0] and s[3] > s[1]


def test_categories_and_only_training_samples_as_likely_mislabeled():
    table = _mixed_run().table()
    codes = suspects.categorize(table)
    names = {i: suspects.CATEGORIES[c] if c >= 0 else None for i, c in enumerate(codes.tolist())}
    assert names[3] == "likely mislabeled"
    assert names[4] != "likely mislabeled", "a test sample must never be ranked as likely mislabeled"
    assert names[2] == "forgotten"
    assert names[1] == "ambiguous"
    assert names[0] is None and names[5] is None
    assert 0 not in suspects.rank(table).tolist() and 5 not in suspects.rank(table).tolist()


def test_never_learned_test_sample():
    table = _mixed_run().table()
    assert suspects.CATEGORIES[suspects.categorize(table)[4]] == "forgotten"  # right at step 0, then wrong
    rows = [(1, 0, [_confident(2, 4.0) for _ in range(T)]), (0, 1, [_confident(0) for _ in range(T)])]
    table = _history(rows).table()
    assert suspects.CATEGORIES[suspects.categorize(table)[0]] == "never learned"


def test_reason_in_words_uses_class_names_and_counts():
    rows = suspects.suspects(_mixed_run().table(), CLASSES, k=3)
    top = rows[0]
    assert top["id"] == 3 and top["category"] == "likely mislabeled" and top["split"] == "train"
    assert top["reason"].startswith("labelled 't-shirt' but predicted 'coat' at 9 of 10 steps"), top["reason"]
    assert "0.96 confidence at the last step" in top["reason"], top["reason"]
    assert len(rows) == 3 and [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)


def test_score_is_unchanged_by_the_scale_of_the_margins_term():
    """The margin term is in units of the run's mean |AUM|, so doubling every margin keeps it the same."""
    table = _mixed_run().table()
    doubled = {**table, "aum": 2 * table["aum"]}
    margin_part = suspects.score(table) - suspects.CONFIDENCE_WEIGHT * (1 - 2 * table["confidence"])
    margin_doubled = suspects.score(doubled) - suspects.CONFIDENCE_WEIGHT * (1 - 2 * table["confidence"])
    np.testing.assert_allclose(margin_part, margin_doubled)


def test_empty_ranking_when_nothing_is_suspicious():
    table = _history([(0, 1, [_confident(0) for _ in range(T)])]).table()
    assert suspects.rank(table).size == 0 and suspects.suspects(table, CLASSES) == []


@pytest.mark.parametrize("k", [1, 2, 100])
def test_k_limits_the_list(k):
    assert len(suspects.suspects(_mixed_run().table(), CLASSES, k=k)) == min(k, 4)


def test_forgotten_reason_names_the_current_prediction():
    rows = {r["id"]: r for r in suspects.suspects(_mixed_run().table(), CLASSES)}
    assert rows[2]["category"] == "forgotten"
    expected = "learned, then forgotten 1 time: labelled 't-shirt', predicted 'trouser' at the last step"
    assert rows[2]["reason"] == expected
