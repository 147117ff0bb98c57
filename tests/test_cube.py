"""The correctness cube: band order, row and column summaries, the pixel-to-sample map and the binary answer."""

from __future__ import annotations

import numpy as np
import pytest

from tensorboard_plugin_dvi import cube
from tensorboard_plugin_dvi.dynamics import ABSENT, Dynamics, StepInput


def _run(history: dict[int, tuple[int, int, list[int]]], c: int = 3) -> Dynamics:
    """Samples {id: (label, split, correctness per step with -1 absent)}; wrong means predicting label + 1."""
    t = len(next(iter(history.values()))[2])
    steps = []
    for s in range(t):
        present = [i for i, (_, _, h) in history.items() if h[s] != ABSENT]
        labels = np.array([history[i][0] for i in present])
        preds = np.array([history[i][0] if history[i][2][s] else (history[i][0] + 1) % c for i in present])
        logits = np.zeros((len(present), c), np.float32)
        logits[np.arange(len(present)), preds] = 3.0
        steps.append(StepInput(10 * s, np.array(present), labels,
                               np.array([history[i][1] for i in present], np.uint8), logits))
    return Dynamics.from_steps(steps)


HISTORY = {
    # id: (label, split, correct per step)
    1: (1, 1, [0, 1, 1, 1]),   # class 1, learned from step 10
    2: (0, 1, [0, 0, 1, 1]),   # class 0, learned from step 20
    3: (0, 1, [1, 1, 1, 1]),   # class 0, learned from step 0
    4: (0, 1, [1, 0, 0, 0]),   # class 0, never settled
    5: (0, 0, [0, 1, 1, 1]),   # test block
    6: (2, 1, [-1, -1, 1, 0]),  # appears at step 20, wrong at the end
}


def _build(dyn: Dynamics, rows: int = 100, cols: int = 100, split: str | None = None) -> cube.Cube:
    return cube.build(dyn.correct_matrix(), dyn.table(), dyn.steps, dyn.class_curves(), dyn.n_classes, rows, cols,
                      split)


def test_rows_are_train_then_test_in_class_bands_sorted_by_learned_from_step():
    built = _build(_run(HISTORY))
    assert built.order.tolist() == [3, 2, 4, 1, 6, 5]
    assert [(b["split"], b["class"], b["samples"]) for b in built.bands] == [
        ("train", 0, 3), ("train", 1, 1), ("train", 2, 1), ("test", 0, 1)]
    assert built.row_start.tolist() == [0, 1, 2, 3, 4, 5, 6]  # one pixel row per sample when they fit


def test_cells_are_fractions_correct_and_absent_pairs_are_left_out():
    built = _build(_run(HISTORY))
    s = cube.SCALE
    assert built.cells.shape == (6, 4)
    assert built.cells[0].tolist() == [s, s, s, s]  # sample 3
    assert built.cells[2].tolist() == [s, 0, 0, 0]  # sample 4
    assert built.cells[4].tolist() == [cube.EMPTY, cube.EMPTY, s, 0]  # sample 6 appears at the third step


def test_rows_and_columns_aggregate_to_the_pixel_budget():
    built = _build(_run(HISTORY), rows=5, cols=2)
    # the class-0 train band (3 of 6 samples) gets floor(5 * 3 / 6) = 2 of the 5 rows, the others one each
    assert [b["rows"] for b in built.bands] == [2, 1, 1, 1]
    assert built.row_start.tolist() == [0, 2, 3, 4, 5, 6]
    assert built.col_start.tolist() == [0, 2, 4]
    # first pixel row: samples 3 and 2 over steps 0 and 10: correct 1+1 of sample 3, 0+0 of sample 2 -> 2 of 4
    assert built.cells[0, 0] == round(cube.SCALE * 2 / 4)
    # sample 6 over its steps 20-30 (present twice, right once); over steps 0-10 it is absent
    assert built.cells[3].tolist() == [cube.EMPTY, round(cube.SCALE / 2)]


def test_split_filter_keeps_one_block():
    built = _build(_run(HISTORY), split="test")
    assert built.order.tolist() == [5] and [b["split"] for b in built.bands] == ["test"]


def test_allot_rows_gives_every_band_at_least_one_row():
    assert cube.allot_rows([5, 3], 10) == [5, 3]
    assert cube.allot_rows([1000, 1, 10], 100) == [98, 1, 1]
    assert 500 <= sum(cube.allot_rows([60000] * 10 + [1], 512)) <= 512
    assert cube.allot_rows([5, 5, 5, 1], 4) == [1, 1, 1, 1]
    assert cube.allot_rows([9, 9, 9], 2) == [1, 1, 1]  # more bands than rows: one row each


def test_binary_answer_round_trips_and_maps_pixels_to_samples():
    dyn = _run(HISTORY)
    built = _build(dyn, rows=5, cols=2)
    header, arrays = cube.decode(cube.encode(built, {"run": "r"}))
    assert header["run"] == "r" and header["rows"] == 5 and header["cols"] == 2 and header["steps"] == [0, 10, 20, 30]
    np.testing.assert_array_equal(arrays["cells"], built.cells)
    first = arrays["ids"][arrays["row_start"][0]:arrays["row_start"][1]]
    assert first.tolist() == [3, 2]
    assert arrays["curves"].shape == (4, 2, 3)
    np.testing.assert_allclose(arrays["curves"], dyn.class_curves().astype(np.float32))


def test_per_class_curves_follow_the_history():
    curves = _run(HISTORY).class_curves()
    # train class 0 (samples 2, 3, 4): correct 2, 1, 2, 2 of 3 over the steps
    np.testing.assert_allclose(curves[:, 1, 0], [2 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert np.isnan(curves[0, 1, 2]) and curves[2, 1, 2] == 1.0


@pytest.mark.parametrize("absent", [0.0, 0.1])  # every sample at every step (the fast path), or not
@pytest.mark.parametrize("rows,cols", [(1, 1), (7, 3), (512, 512)])
def test_large_random_cube_matches_a_direct_mean(rows, cols, absent, rng):
    n, t, c = 500, 13, 4
    correct = rng.integers(0, 2, size=(t, n)).astype(np.int8)
    correct[rng.random((t, n)) < absent] = ABSENT
    table = {"label": rng.integers(0, c, n), "split": (rng.random(n) < 0.7).astype(np.uint8),
             "learned_from": rng.integers(-1, t, n), "id": np.arange(n)}
    built = cube.build(correct, table, list(range(t)), np.zeros((t, 2, c)), c, rows, cols)
    for r in range(built.cells.shape[0]):
        members = np.asarray(built.order[built.row_start[r]:built.row_start[r + 1]])
        for k in range(built.cells.shape[1]):
            block = correct[built.col_start[k]:built.col_start[k + 1]][:, members]
            seen = block >= 0
            expect = cube.EMPTY if not seen.any() else round(cube.SCALE * (block == 1)[seen].mean())
            assert abs(int(built.cells[r, k]) - expect) <= (0 if expect == cube.EMPTY else 1), (r, k)
