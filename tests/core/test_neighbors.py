"""Nearest-neighbour search: the row-wise, k-d tree, cross and approximate searches against exact ones."""

from __future__ import annotations

import numpy as np
import pytest

from dvi_core import neighbors


def _exact_sets(X: np.ndarray, k: int) -> list[set[int]]:
    """Each row's k nearest others by brute force (float64)."""
    d = ((X[:, None, :].astype(np.float64) - X[None].astype(np.float64)) ** 2).sum(2)
    np.fill_diagonal(d, np.inf)
    return [set(np.argsort(row, kind="stable")[:k].tolist()) for row in d]


@pytest.mark.parametrize("dim", [2, 30])
def test_knn_rows_are_the_exact_neighbours_of_those_rows(dim):
    X = np.random.default_rng(dim).normal(size=(400, dim)).astype(np.float32)
    rows = np.array([0, 7, 123, 399])
    idx, dist = neighbors.knn_rows(X, rows, 10)
    want = _exact_sets(X, 10)
    assert idx.shape == (4, 10) and dist.shape == (4, 10)
    for r, got in zip(rows, idx, strict=True):
        assert set(got.tolist()) == want[r] and r not in got
    assert (np.diff(dist, axis=1) >= -1e-6).all(), "not sorted by distance"
    np.testing.assert_allclose(dist, np.linalg.norm(X[rows][:, None] - X[idx], axis=2), rtol=1e-4, atol=1e-4)


def test_knn_rows_never_return_the_row_itself_among_duplicates():
    X = np.zeros((30, 2), np.float32)  # every point at the same place: self may come anywhere in the tie
    X[20:] = 5.0
    idx, _ = neighbors.knn_rows(X, np.arange(30), 5)
    assert all(r not in row for r, row in enumerate(idx))
    assert (idx[:20] < 20).all() and (idx[20:] >= 20).all()


def test_tree_knn_of_a_2d_map_equals_the_exact_graph():
    Y = np.random.default_rng(1).normal(size=(500, 2)).astype(np.float32)
    tree, _ = neighbors.knn(Y, 15, method="tree")
    exact, _ = neighbors.knn(Y, 15, method="exact")
    assert [set(r) for r in tree.tolist()] == [set(r) for r in exact.tolist()]


def test_pynndescent_graph_excludes_self_and_reports_true_distances():
    X = np.random.default_rng(2).normal(size=(600, 16)).astype(np.float32)
    exact, _ = neighbors.knn(X, 10, method="exact")
    approx, dist = neighbors.knn(X, 10, method="pynndescent")
    assert approx.shape == (600, 10) and not (approx == np.arange(600)[:, None]).any()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.tolist(), exact.tolist(), strict=True)])
    assert recall > 0.95, f"recall {recall}"
    np.testing.assert_allclose(dist, np.linalg.norm(X[:, None] - X[approx], axis=2), rtol=1e-4, atol=1e-4)


def test_cross_query_gives_both_exact_searches():
    rng = np.random.default_rng(4)
    A = rng.normal(size=(2500, 20)).astype(np.float32)  # more than one chunk of rows
    B = rng.normal(size=(300, 20)).astype(np.float32)
    (ab_i, ab_d), (ba_i, ba_d) = neighbors.cross_query(A, B, 7, 9)
    want_ab, want_ab_d = neighbors.exact_query(B, A, 7)
    want_ba, want_ba_d = neighbors.exact_query(A, B, 9)
    np.testing.assert_array_equal(ab_i, want_ab)
    np.testing.assert_array_equal(ba_i, want_ba)
    np.testing.assert_allclose(ab_d, want_ab_d, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ba_d, want_ba_d, rtol=1e-4, atol=1e-4)


def test_compiled_selection_keeps_what_torch_topk_keeps_and_breaks_ties_by_index():
    import torch

    from dvi_core import knn_select

    d = np.random.default_rng(5).random((50, 300)).astype(np.float32)
    d[0, :] = 1.0  # one row all ties: the first columns win
    d[1, 10] = -np.inf  # exact_query's mark for "self"
    out_d, out_i = np.empty((50, 8), np.float32), np.empty((50, 8), np.int64)
    knn_select.smallest_k_rows(d, 8, out_d, out_i)
    want_d, want_i = torch.topk(torch.from_numpy(d), 8, dim=1, largest=False)
    np.testing.assert_array_equal(out_d, want_d.numpy())
    assert [set(r) for r in out_i[1:].tolist()] == [set(r) for r in want_i[1:].tolist()]
    np.testing.assert_array_equal(out_i[0], np.arange(8))
    assert out_i[1, 0] == 10
    best_d, best_i = np.full((300, 6), np.inf, np.float32), np.zeros((300, 6), np.int64)
    for s in range(0, 50, 16):  # columns merged block by block, as cross_query feeds them
        knn_select.merge_smallest_k_cols(d[s : s + 16], s, best_d, best_i)
    want_d, want_i = torch.topk(torch.from_numpy(d), 6, dim=0, largest=False)
    np.testing.assert_array_equal(best_d, want_d.numpy().T)
    assert [set(r) for r in best_i.tolist()] == [set(r) for r in want_i.numpy().T.tolist()]


def test_blocked_row_selection_equals_a_stable_sort_with_ties_and_every_width():
    from dvi_core import knn_select

    rng = np.random.default_rng(7)
    for width, k in [(5, 5), (31, 4), (32, 1), (33, 32), (100, 7), (257, 20)]:
        d = rng.integers(0, 6, (40, width)).astype(np.float32)  # few values: many exact ties, across blocks too
        d[3, width // 2] = -np.inf
        d[4, :] = np.arange(width, 0, -1)  # strictly falling: a new candidate in every block
        out_d, out_i = np.empty((40, k), np.float32), np.empty((40, k), np.int64)
        knn_select.smallest_k_rows(d, k, out_d, out_i)
        want_i = np.argsort(d, axis=1, kind="stable")[:, :k]  # ties: the smaller index first
        np.testing.assert_array_equal(out_i, want_i)
        np.testing.assert_array_equal(out_d, np.take_along_axis(d, want_i, 1))


@pytest.mark.parametrize("threads", [1, 2])
def test_tiled_cpu_search_equals_a_stable_sort_across_key_blocks_with_ties_self_and_k_over_n(threads: int):
    """Queries and keys beyond one tile (more than 512 queries, more than 4,096 keys; tiles on one thread, whole
    rows on two): integer points give exact distances and many ties, which keep the smaller index first."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _check_exact_query_on_integer_points()
    finally:
        torch.set_num_threads(before)


def _check_exact_query_on_integer_points() -> None:
    rng = np.random.default_rng(11)
    X = rng.integers(0, 4, (4500, 3)).astype(np.float32)
    Q = rng.integers(0, 4, (600, 3)).astype(np.float32)
    d2 = ((Q[:, None, :] - X[None]) ** 2).sum(2)
    want = np.argsort(d2, axis=1, kind="stable")[:, :9]
    idx, dist = neighbors.exact_query(X, Q, 9)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(dist, np.sqrt(np.take_along_axis(d2, want, 1)), atol=1e-5)
    self_d2 = ((X[:700, None, :] - X[None]) ** 2).sum(2)
    self_d2[np.arange(700), np.arange(700)] = -1.0  # self first, then dropped
    idx, _ = neighbors.exact_query(X, X[:700], 5, exclude_self=True)
    assert idx.shape == (700, 5)
    np.testing.assert_array_equal(idx, np.argsort(self_d2, axis=1, kind="stable")[:, 1:6])
    S = X[:2500]  # a whole kNN graph beyond one block (the symmetric search on one thread): ties, self dropped
    full = ((S[:, None, :] - S[None]) ** 2).sum(2)
    full[np.arange(len(S)), np.arange(len(S))] = -1.0
    want = np.argsort(full, axis=1, kind="stable")[:, 1:8]
    idx, dist = neighbors.exact_query(S, S, 7, exclude_self=True)
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_allclose(dist, np.sqrt(np.take_along_axis(full, want, 1)), atol=1e-5)
    idx, dist = neighbors.exact_query(X[:6], Q[:3], 10)  # k > n: every key, nearest first
    assert idx.shape == (3, 6) and sorted(idx[0].tolist()) == list(range(6))
    assert (np.diff(dist, axis=1) >= 0).all()
