"""Metrics on constructed cases with known values, and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.manifold import trustworthiness as sk_trustworthiness

from dvi_core import metrics


def _points(n: int = 200, d: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_identity_projection_preserves_neighbours():
    X = _points()
    assert metrics.nn_preservation(X, X, 15) == pytest.approx(1.0)
    Y = 3.0 * X + 1.0  # similarity transforms keep neighbourhoods
    v = metrics.nn_preservation(X, Y, 15)
    assert v == pytest.approx(1.0), f"NN preservation of an affine similarity is {v}"
    t = metrics.trustworthiness(X, Y, 15)
    assert t == pytest.approx(1.0), f"trustworthiness of an affine similarity is {t}"


def test_boundary_preservation_identity_is_one():
    X, B = _points(), _points(40, seed=1)
    v = metrics.boundary_preservation(X, B, X, B, 15)
    assert v == pytest.approx(1.0), f"boundary preservation of the identity is {v}"


@pytest.mark.parametrize("seed", [0, 1])
def test_trustworthiness_matches_sklearn(seed):
    X = _points(300, 10, seed)
    Y = X[:, :2] + 0.3 * _points(300, 2, seed + 10)
    ours, ref = metrics.trustworthiness(X, Y, 15), sk_trustworthiness(X, Y, n_neighbors=15)
    assert abs(ours - ref) < 1e-6, f"trustworthiness {ours} vs sklearn {ref}"


def test_random_projection_scores_low():
    X = _points(300, 10)
    v = metrics.nn_preservation(X, _points(300, 2, seed=5), 15)
    assert v < 0.15, f"NN preservation of an unrelated layout is {v}"


def test_temporal_correlation_known_cases():
    rng = np.random.default_rng(0)
    X0 = rng.normal(size=(300, 5)).astype(np.float32)
    X1 = X0.copy()
    moved = np.arange(150)
    X1[moved] += rng.normal(0, 2.0, (150, 5)).astype(np.float32)  # half the samples change neighbourhoods
    Y0 = X0[:, :2]
    Y1 = Y0.copy()
    Y1[moved] += 5.0  # ... and only those move in 2-D
    r = metrics.temporal_correlation(X0, X1, Y0, Y1, 15)
    assert r > 0.5, f"temporal correlation {r:.3f} when only changed samples move"
    r_bad = metrics.temporal_correlation(X0, X1, Y0, Y0 + rng.normal(size=Y0.shape), 15)
    assert abs(r_bad) < 0.2, f"temporal correlation {r_bad:.3f} for random movement"


def test_ppr_and_ccr_identity():
    head = torch.nn.Linear(5, 3)
    X = _points(100, 5)
    assert metrics.ppr(head, X, X) == 1.0
    assert metrics.ccr(head, X, X) == pytest.approx(0.0, abs=1e-7)
    v = metrics.ppr(head, X, -X)
    assert v < 1.0, f"PPR of a sign-flipped reconstruction is {v}"


def test_neighbor_preserving_rate():
    a = np.array([[1, 2, 3], [4, 5, 6]])
    b = np.array([[3, 2, 9], [7, 8, 9]])
    np.testing.assert_allclose(metrics.neighbor_preserving_rate(a, b), [2 / 3, 0.0])
