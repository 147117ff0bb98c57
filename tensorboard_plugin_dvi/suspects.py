"""Suspects: samples whose training history says "look at me", ranked by one score, each with a reason in words.

The score (higher = more suspicious) of a sample whose given label is ``y``:

    score = -aum / A + 0.25 * (1 - 2 * confidence)

* ``aum`` is the area under the margin (Pleiss et al. 2020): the mean, over the steps where the sample appears, of
  its logit margin ``z_y - max_{j != y} z_j``. It is negative when the model prefers another class to the label on
  most steps. ``A`` is the run's mean ``|aum|`` over its training samples: it puts the margin in units of the run's
  typical margin, so the score does not depend on how large the model's logits are.
* ``confidence`` is the mean softmax probability of the label over those steps (data maps, Swayamdipta et al. 2020);
  ``1 - 2 * confidence`` runs from -1 (always sure of the label) to 1 (never gives it any probability).

Both terms are large for a sample the model keeps assigning, confidently, to another class: the pattern of a wrong
label. The margin term says how far the label is behind; the bounded probability term keeps a few steps with huge
logits from deciding the order on their own. Only the logged logits and labels enter the score; logged flags
(such as a demo's ``flipped`` set) never do.

Each sample gets at most one category, checked in this order:

* ``likely mislabeled``: a training sample whose ``aum`` is negative and that was predicted as one same
  other class at at least half of its steps (test samples are never put here: their labels are not trained on);
* ``never learned``: predicted correctly at no step;
* ``forgotten``: at least one forgetting event (correct, then wrong) and wrong at its latest step: it was learned
  and is lost now;
* ``ambiguous``: the confidence in the label varies a lot across steps (``variability >= 0.2``) or the prediction
  changed at least ``max(2, steps / 4)`` times (a sample that keeps being learned and forgotten but is right at
  its latest step lands here).

The ranked list holds the samples with a category, by decreasing score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CONFIDENCE_WEIGHT = 0.25
"""Weight of the probability term ``1 - 2 * confidence`` next to the margin term (in units of the run's mean |AUM|)."""

MISLABELED_MODE_FRACTION = 0.5
"""A likely mislabeled sample is predicted as one same other class at least at this fraction of its steps."""

AMBIGUOUS_VARIABILITY = 0.2
"""Standard deviation of the label's probability over steps from which a sample counts as ambiguous."""

CATEGORIES = ("likely mislabeled", "never learned", "forgotten", "ambiguous")
"""Category names in the order they are checked; index ``i`` is the code ``i`` in :func:`categorize`."""

NONE = -1
"""Category code of a sample that is not a suspect."""


def margin_unit(table: dict[str, np.ndarray]) -> float:
    """``A``: the mean ``|aum|`` of the training samples (of all samples when none is train), 1 when that is 0."""
    train = table["split"] == 1
    values = np.abs(table["aum"][train] if train.any() else table["aum"])
    unit = float(values.mean()) if values.size else 0.0
    return unit if unit > 1e-12 else 1.0


def score(table: dict[str, np.ndarray]) -> np.ndarray:
    """The suspicion score of every sample of a dynamics table (see the module docstring)."""
    return -table["aum"] / margin_unit(table) + CONFIDENCE_WEIGHT * (1.0 - 2.0 * table["confidence"])


def categorize(table: dict[str, np.ndarray]) -> np.ndarray:
    """Category code per sample: an index into :data:`CATEGORIES`, or :data:`NONE`."""
    n_steps = np.maximum(table["n_steps"], 1)
    train = table["split"] == 1
    mode_fraction = table["mode_count"] / n_steps
    rules = [
        train & (table["aum"] < 0) & (mode_fraction >= MISLABELED_MODE_FRACTION),
        table["never_learned"],
        (table["forgetting"] >= 1) & ~table["last_correct"],
        (table["variability"] >= AMBIGUOUS_VARIABILITY) | (table["flips"] >= np.maximum(2, n_steps / 4)),
    ]
    out = np.full(len(n_steps), NONE, np.int8)
    for code in range(len(rules) - 1, -1, -1):  # the first matching rule wins
        out[rules[code]] = code
    return out


def rank(table: dict[str, np.ndarray], k: int | None = None) -> np.ndarray:
    """Rows of the suspects (samples with a category) by decreasing score, ties by id; the first ``k`` if given."""
    codes = categorize(table)
    rows = np.flatnonzero(codes != NONE)
    s = score(table)[rows]
    order = np.lexsort((table["id"][rows], -s))
    rows = rows[order]
    return rows if k is None else rows[:k]


def _name(classes: list[str], c: int) -> str:
    return f"'{classes[c]}'" if 0 <= c < len(classes) else f"class {c}"


def reason(table: dict[str, np.ndarray], row: int, code: int, classes: list[str]) -> str:
    """Why a sample is a suspect, in words with class names."""
    label, n = int(table["label"][row]), int(table["n_steps"][row])
    mode, count = int(table["mode_pred"][row]), int(table["mode_count"][row])
    last_pred, steps = int(table["last_pred"][row]), "step" if n == 1 else "steps"
    if code == 0:
        text = f"labelled {_name(classes, label)} but predicted {_name(classes, mode)} at {count} of {n} {steps}"
        if last_pred == mode:
            text += f" ({float(table['last_p_pred'][row]):.2f} confidence at the last step)"
        return text
    if code == 1:
        return (f"never predicted as its label {_name(classes, label)} in {n} {steps}; predicted "
                f"{_name(classes, mode)} at {count} of them")
    if code == 2:
        times = int(table["forgetting"][row])
        return (f"learned, then forgotten {times} time{'s' if times != 1 else ''}: labelled {_name(classes, label)}, "
                f"predicted {_name(classes, last_pred)} at the last step")
    conf, var, flips = float(table["confidence"][row]), float(table["variability"][row]), int(table["flips"][row])
    return (f"confidence in its label {_name(classes, label)} varies across steps ({conf:.2f} ± {var:.2f}); "
            f"prediction changed {flips} time{'s' if flips != 1 else ''} in {n} {steps}")


def suspects(table: dict[str, np.ndarray], classes: list[str], k: int | None = None) -> list[dict[str, Any]]:
    """The ranked suspects as JSON-ready rows: id, label, prediction, split, category, score and reason."""
    codes = categorize(table)
    s = score(table)
    out = []
    for r in rank(table, k).tolist():
        code = int(codes[r])
        out.append({
            "id": int(table["id"][r]), "label": int(table["label"][r]), "pred": int(table["last_pred"][r]),
            "split": "train" if table["split"][r] == 1 else "test", "category": CATEGORIES[code],
            "score": round(float(s[r]), 5), "reason": reason(table, r, code, classes),
        })
    return out
