"""Per-sample training dynamics on constructed histories, against hand-computed values and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest

from tensorboard_plugin_dvi import dynamics, notebook
from tensorboard_plugin_dvi.dynamics import ABSENT, Dynamics, StepInput


def _logits_for(preds: list[int], c: int = 3, high: float = 4.0) -> np.ndarray:
    """Logits [N, C] predicting ``preds`` (the predicted class gets ``high``, the others 0)."""
    out = np.zeros((len(preds), c), np.float32)
    out[np.arange(len(preds)), preds] = high
    return out


def _step(step: int, preds: list[int], labels: list[int], ids: list[int] | None = None,
          split: list[int] | None = None, c: int = 3) -> StepInput:
    n = len(preds)
    return StepInput(step, np.asarray(ids if ids is not None else range(n), np.int64), np.asarray(labels, np.int64),
                     np.asarray(split if split is not None else [1] * n, np.uint8), _logits_for(preds, c))


def test_correct_three_steps_then_wrong_is_one_forgetting_event_and_not_learned():
    dyn = Dynamics.from_steps([_step(s, [0 if s < 3 else 1], [0]) for s in range(4)])
    t = dyn.table()
    assert t["forgetting"][0] == 1
    assert t["learned_from"][0] == ABSENT and not t["last_correct"][0]
    assert t["correctness"][0] == pytest.approx(0.75) and t["flips"][0] == 1 and not t["never_learned"][0]


def test_learned_from_is_the_start_of_the_final_correct_run():
    history = [1, 0, 1, 0, 0]  # predictions of a sample labelled 0 at steps 0, 5, 10, 15, 20
    dyn = Dynamics.from_steps([_step(5 * i, [p], [0]) for i, p in enumerate(history)])
    t = dyn.table()
    assert t["learned_from"][0] == 15
    assert t["forgetting"][0] == 1  # correct at step 5, wrong at step 10
    assert t["flips"][0] == 3


def test_aum_confidence_and_variability_equal_hand_computed_values():
    logits = [np.array([[2.0, 0.5, -1.0]]), np.array([[0.0, 1.0, 3.0]])]  # label 0
    dyn = Dynamics.from_steps([StepInput(s, np.array([7]), np.array([0]), np.array([1], np.uint8), z)
                               for s, z in enumerate(logits)])
    t = dyn.table()
    # margins: 2.0 - 0.5 = 1.5 and 0.0 - 3.0 = -3.0, so AUM = (1.5 - 3.0) / 2
    assert t["aum"][0] == pytest.approx(-0.75)
    p = [np.exp(z[0, 0]) / np.exp(z[0]).sum() for z in logits]
    assert t["confidence"][0] == pytest.approx(np.mean(p))
    assert t["variability"][0] == pytest.approx(np.std(p))
    assert t["last_pred"][0] == 2 and t["last_p_label"][0] == pytest.approx(p[1])
    assert t["last_p_pred"][0] == pytest.approx(np.exp(3.0) / np.exp(logits[1][0]).sum())


def test_never_learned_and_mode_of_wrong_predictions():
    preds = [2, 2, 1, 2, 2]
    dyn = Dynamics.from_steps([_step(s, [p], [0]) for s, p in enumerate(preds)])
    t = dyn.table()
    assert t["never_learned"][0] and t["mode_pred"][0] == 2 and t["mode_count"][0] == 4


def test_majority_vote_fallback_names_the_majority_class(monkeypatch):
    monkeypatch.setattr(dynamics, "_MODE_CELLS", 1)  # forces the streaming majority vote
    preds = [2, 1, 2, 2, 1, 2]
    dyn = Dynamics.from_steps([_step(s, [p, 0], [0, 0]) for s, p in enumerate(preds)])
    assert dyn.table()["mode_pred"][0] == 2


def test_samples_added_and_dropped_are_summarised_over_their_own_steps():
    steps = [
        _step(0, [0, 1], [0, 1], ids=[10, 11]),
        _step(1, [1, 1, 2], [1, 0, 2], ids=[11, 10, 12]),  # order changes, 10 is now wrong, 12 appears
        _step(2, [2], [2], ids=[12]),  # 10 and 11 dropped
    ]
    dyn = Dynamics.from_steps(steps)
    t = dyn.table()
    assert t["id"].tolist() == [10, 11, 12]
    assert t["n_steps"].tolist() == [2, 2, 2]
    assert t["first_step"].tolist() == [0, 0, 1] and t["last_step"].tolist() == [1, 1, 2]
    assert t["forgetting"].tolist() == [1, 0, 0]
    assert t["learned_from"].tolist() == [ABSENT, 0, 1]
    matrix = dyn.correct_matrix()
    assert matrix.tolist() == [[1, 1, ABSENT], [0, 1, 1], [ABSENT, ABSENT, 1]]
    assert dyn.pred_matrix()[2].tolist() == [ABSENT, ABSENT, 2]


def _reference(steps: list[StepInput]) -> dict[str, dict[int, float]]:
    """Brute force: each sample's statistics from its full history, in plain Python."""
    history: dict[int, list[tuple[int, np.ndarray, int]]] = {}
    for item in steps:
        for i, sample in enumerate(item.ids.tolist()):
            history.setdefault(sample, []).append((item.step, item.logits[i].astype(np.float64),
                                                   int(item.labels[i])))
    out: dict[str, dict[int, float]] = {"aum": {}, "forgetting": {}, "learned_from": {}, "confidence": {}}
    for sample, rows in history.items():
        margins, probs, correct = [], [], []
        for _, z, y in rows:
            margins.append(z[y] - max(v for j, v in enumerate(z) if j != y))
            probs.append(np.exp(z[y] - z.max()) / np.exp(z - z.max()).sum())
            correct.append(int(np.argmax(z)) == y)
        out["aum"][sample] = float(np.mean(margins))
        out["confidence"][sample] = float(np.mean(probs))
        out["forgetting"][sample] = sum(a and not b for a, b in zip(correct, correct[1:], strict=False))
        learned = ABSENT
        for (step, _, _), ok in zip(reversed(rows), reversed(correct), strict=True):
            if not ok:
                break
            learned = step
        out["learned_from"][sample] = learned
    return out


def test_incremental_statistics_match_a_brute_force_reference_with_changing_samples(rng):
    steps = []
    for s in range(8):
        ids = rng.choice(40, size=30, replace=False)
        labels = ids % 4
        logits = rng.normal(size=(30, 4)).astype(np.float32)
        logits[np.arange(30), labels] += s * 0.4
        steps.append(StepInput(3 * s, ids, labels, (ids < 30).astype(np.uint8), logits))
    dyn = Dynamics(4)
    for item in steps:
        dyn.add_step(item)
    t, ref = dyn.table(), _reference(steps)
    for name in ("aum", "confidence", "forgetting", "learned_from"):
        got = dict(zip(t["id"].tolist(), t[name].tolist(), strict=True))
        assert got.keys() == ref[name].keys()
        for sample, value in ref[name].items():
            assert got[sample] == pytest.approx(value), f"{name} of sample {sample}"


def test_steps_must_arrive_in_order_and_ids_be_unique():
    dyn = Dynamics.from_steps([_step(5, [0], [0])])
    with pytest.raises(ValueError, match="increasing order"):
        dyn.add_step(_step(5, [0], [0]))
    with pytest.raises(ValueError, match="unique"):
        dyn.add_step(_step(6, [0, 0], [0, 0], ids=[1, 1]))
    with pytest.raises(ValueError, match="classes"):
        dyn.add_step(_step(7, [0], [0], c=4))


def test_class_curves_per_split():
    item = _step(0, [0, 1, 1, 2], [0, 0, 1, 2], split=[1, 1, 1, 0])
    curves = Dynamics.from_steps([item]).class_curves()
    assert curves.shape == (1, 2, 3)
    assert curves[0, 1, :2].tolist() == [0.5, 1.0] and np.isnan(curves[0, 1, 2])
    assert curves[0, 0, 2] == 1.0 and np.isnan(curves[0, 0, :2]).all()


def _write_run(run_dir: str, steps: int = 3) -> None:
    import torch

    import tensorboard_plugin_dvi as dvi

    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(20, 4, generator=gen)
    head = torch.nn.Linear(4, 3)
    labels = torch.randint(0, 3, (20,), generator=gen)
    for step in range(steps):
        dvi.summary.snapshot(run_dir, step, feats + 0.1 * step, labels, head, class_names=["cat", "dog", "eel"])
    dvi.summary.close(run_dir)


def test_notebook_load_returns_arrays_without_pandas_and_a_frame_with_it(tmp_path, monkeypatch):
    run = str(tmp_path / "run")
    _write_run(run)
    monkeypatch.setattr(notebook, "_pandas", lambda: None)
    table = dynamics.load(run)
    assert isinstance(table, dict) and len(table["id"]) == 20 and set(table["label_name"]) <= {"cat", "dog", "eel"}
    assert table["n_steps"].tolist() == [3] * 20
    with pytest.raises(ImportError, match="pandas"):
        notebook.load(run, frame=True)

    class FakePandas:
        @staticmethod
        def DataFrame(columns):  # noqa: N802 - mimics pandas.DataFrame
            return ("frame", columns)

    monkeypatch.setattr(notebook, "_pandas", lambda: FakePandas)
    kind, columns = notebook.load(run)
    assert kind == "frame" and columns["id"].tolist() == table["id"].tolist()
    assert isinstance(notebook.load(run, frame=False), dict)


def test_notebook_with_the_installed_pandas_or_without(tmp_path):
    run = str(tmp_path / "run")
    _write_run(run)
    table = notebook.load(run)
    if notebook._pandas() is not None:
        assert table.shape[0] == 20 and "score" in table.columns
    else:
        assert isinstance(table, dict) and len(table["score"]) == 20
    top = notebook.suspects(run, k=5, frame=False)
    assert len(top["id"]) <= 5


def test_notebook_load_of_a_directory_without_steps(tmp_path):
    with pytest.raises(FileNotFoundError, match="No readable DVI steps"):
        notebook.load(str(tmp_path))


def test_trajectories_path_length_largest_jump_and_other_region():
    dyn = Dynamics.from_steps([_step(s, [0, 1], [0, 1]) for s in range(3)])
    positions = [
        dynamics.Positions(0, np.array([0, 1]), np.array([[0.0, 0.0], [5.0, 5.0]]), width=10.0,
                           region=np.array([0, 0])),
        dynamics.Positions(1, np.array([1, 0, 99]), np.array([[5.0, 5.0], [3.0, 4.0], [1.0, 1.0]]), width=10.0,
                           region=np.array([1, 2, 0])),
        dynamics.Positions(2, np.array([0]), np.array([[3.0, 4.0]]), width=5.0),  # the map shrank by half
    ]
    for pos in positions:
        dyn.add_positions(pos)
    t = dyn.table()
    # sample 0 in map widths: (0, 0) -> (0.3, 0.4) -> (0.6, 0.8); jumps 0.5 and 0.5
    assert t["path_length"][0] == pytest.approx(1.0) and t["max_jump"][0] == pytest.approx(0.5)
    assert t["path_length"][1] == pytest.approx(0.0) and t["n_projected"].tolist() == [3, 2]
    # region known at steps 0 and 1: sample 0 (label 0) was in class 2's region once; sample 1 (label 1) once
    assert t["steps_other_region"].tolist() == [1, 1]
    with pytest.raises(ValueError, match="increasing order"):
        dyn.add_positions(positions[0])
    dyn.reset_positions()
    t = dyn.table()
    assert t["n_projected"].tolist() == [0, 0] and np.isnan(t["path_length"]).all()
    assert t["steps_other_region"].tolist() == [-1, -1] and dyn.projected_steps == []


@pytest.mark.parametrize("change,match", [
    (lambda a: a.pop("logits"), "no logits"),
    (lambda a: a.update(labels=np.array([0, 5])), r"labels must lie in \[0, 3\)"),
    (lambda a: a.update(labels=np.array([0.0, 1.0])), "labels must be 2 integers"),
    (lambda a: a.update(ids=np.array([1, 2, 3])), "ids must be 2 integers"),
    (lambda a: a.update(logits=np.array([[0.0, np.nan, 1.0], [1.0, 0.0, 0.0]])), "NaN or infinite"),
    (lambda a: a.update(logits=np.zeros((2,))), r"numeric \[N, C\]"),
])
def test_malformed_step_arrays_are_refused_with_the_reason(change, match):
    arrays = {"ids": np.array([1, 2]), "labels": np.array([0, 2]), "split": np.array([1, 0], np.uint8),
              "logits": np.zeros((2, 3), np.float32)}
    StepInput.from_arrays(0, dict(arrays))
    change(arrays)
    with pytest.raises(ValueError, match=match):
        StepInput.from_arrays(0, arrays)


def test_a_step_without_samples_changes_nothing_but_the_step_list():
    empty = StepInput(1, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros((0, 3)))
    dyn = Dynamics.from_steps([_step(0, [0], [0]), empty, _step(2, [1], [0])])
    t = dyn.table()
    assert dyn.steps == [0, 1, 2] and t["n_steps"].tolist() == [2] and t["forgetting"].tolist() == [1]
    assert dyn.correct_matrix().tolist() == [[1], [ABSENT], [0]]


# -- the dynamics table as JSON and CSV text (formatted with numpy): the same bytes json.dumps and csv.writer write --

def _tricky_table(n: int = 2_000, seed: int = 0) -> dict[str, np.ndarray]:
    """A table of every column with the values text formatting gets wrong most easily: NaN, -0.0, values below
    1e-4 (repr writes 1e-05), whole numbers, negative integers, ids of several 4-digit groups, names to quote."""
    from tensorboard_plugin_dvi import diagnosis

    rng = np.random.default_rng(seed)
    specials = np.array([np.nan, 0.0, -0.0, 1e-5, 3e-5, -9.4e-5, 1e-4, 0.00015, 1.0, 2.5, -7.000004, 123.456789,
                         9_999_999_999.0, 0.999996, 4e-6, -4e-6])
    table: dict[str, np.ndarray] = {}
    for name, dtype in diagnosis._BINARY_DTYPES.items():
        kind = np.dtype(dtype).kind
        if kind == "f":
            table[name] = np.where(rng.random(n) < 0.5, rng.choice(specials, n), rng.normal(0, 50, n))
        elif name in ("never_learned", "last_correct"):
            table[name] = rng.random(n) < 0.5
        else:
            table[name] = rng.integers(-3, 10 ** int(rng.integers(1, 12)), n)
    table["split"] = rng.integers(0, 2, n).astype(np.uint8)
    table["label"] = rng.integers(-1, 4, n)
    table["category"] = rng.choice(np.asarray(["", "mislabeled", 'odd, "quoted"'], dtype=object), n)
    return table


def _reference_columns(table: dict[str, np.ndarray]) -> dict[str, list]:
    from tensorboard_plugin_dvi import diagnosis

    def values(v: np.ndarray) -> list:
        if v.dtype.kind == "f":
            return [None if x != x else x for x in np.round(v, 5).tolist()]
        return v.tolist()
    return {name: values(table[name]) for name in diagnosis.COLUMNS}


@pytest.mark.parametrize("seed", [0, 1])
def test_dynamics_json_text_is_what_json_dumps_writes(seed):
    import json

    from tensorboard_plugin_dvi import diagnosis

    table = _tricky_table(seed=seed)
    header = {"run": "r\u00e9", "steps": [0, 5], "n": 2_000, "classes": ["a", "b"], "skipped_steps": []}
    expected = json.dumps({**header, "columns": _reference_columns(table)}, allow_nan=False).encode()
    assert diagnosis.table_json(table, header) == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_dynamics_csv_text_is_what_csv_writer_writes(seed):
    import csv
    import io

    from tensorboard_plugin_dvi import diagnosis

    table = _tricky_table(seed=seed)
    classes = ["zero", "one, with a comma", 'two "quoted"', "three"]
    columns = _reference_columns(table)
    columns["split"] = ["train" if s == 1 else "test" for s in columns["split"]]
    columns["label_name"] = [classes[c] if 0 <= c < len(classes) else str(c) for c in columns["label"]]
    names = [*diagnosis.COLUMNS[:2], "label_name", *diagnosis.COLUMNS[2:]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(zip(*(columns[n] for n in names), strict=True))
    assert diagnosis.table_csv(table, classes) == out.getvalue().encode()


def test_dynamics_text_of_large_or_infinite_values_and_of_no_samples():
    import json

    from tensorboard_plugin_dvi import diagnosis

    table = _tricky_table(n=50)
    table["aum"][3] = 3.5e17  # beyond the fast path: the column is written by Python (repr 3.5e+17)
    header = {"run": "r", "steps": [], "n": 50, "classes": [], "skipped_steps": []}
    assert b"3.5e+17" in diagnosis.table_json(table, header)
    assert b"3.5e+17" in diagnosis.table_csv(table, [])
    table["aum"][3] = np.inf
    with pytest.raises(ValueError):
        diagnosis.table_json(table, header)
    empty = {k: v[:0] for k, v in _tricky_table(n=5).items()}
    assert json.loads(diagnosis.table_json(empty, header))["columns"]["id"] == []
    assert diagnosis.table_csv(empty, []).count(b"\n") == 1
