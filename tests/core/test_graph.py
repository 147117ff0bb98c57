"""Neighbour search and fuzzy complexes: invariants on tiny seeded data."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from dvi_core import graph
from dvi_core.neighbors import exact_query, knn


def _blobs(n: int = 300, d: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (4, d))
    return (centers[rng.integers(0, 4, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_exact_knn_matches_sklearn():
    X = _blobs()
    idx, dist = knn(X, 10, method="exact")
    ref_d, _ = NearestNeighbors(n_neighbors=11).fit(X).kneighbors(X)
    err = np.abs(dist - ref_d[:, 1:]).max()
    assert err < 1e-3, f"exact kNN distances differ from sklearn's by up to {err}"
    assert not (idx == np.arange(len(X))[:, None]).any(), "a point is listed as its own neighbour"


def test_fuzzy_graph_symmetric_with_weights_in_unit_interval():
    X = _blobs()
    G = graph.fuzzy_simplicial_set(*knn(X, 15))
    asym = abs(G - G.T).max()
    assert asym < 1e-6, f"fuzzy graph not symmetric: max |G - G^T| = {asym}"
    assert G.data.min() > 0 and G.data.max() <= 1.0, f"weights outside (0, 1]: [{G.data.min()}, {G.data.max()}]"
    assert G.diagonal().max() == 0, "self loops in the fuzzy graph"


def test_smooth_knn_rows_sum_to_log2_k():
    _, dist = knn(_blobs(), 15)
    sums = graph.smooth_knn_memberships(dist).sum(1)
    err = np.abs(sums - np.log2(15)).max()
    assert err < 1e-2, f"membership row sums deviate from log2(15) by {err}"


def test_complex_edges_pruned_and_within_bounds():
    X = _blobs()
    B = _blobs(n=40, seed=1)
    G = graph.fuzzy_simplicial_set(*knn(X, 15))
    bi, bd = exact_query(B, X, 5)
    e = graph.complex_edges(G, [graph.boundary_complex(bi, bd, len(X))], len(X) + len(B), n_epochs=200)
    assert (e.head < e.tail).all(), "edges must be listed once (head < tail)"
    assert e.weight.min() >= e.weight.max() / 200, f"edge below max/n_epochs kept: {e.weight.min()}"
    assert e.tail.max() >= len(X), "no edge reaches a boundary vertex"
