"""Metrics on constructed cases with known values, and against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from core_budget import FAST
from sklearn.manifold import trustworthiness as sk_trustworthiness

from dvi_core import DVIProjector, metrics
from dvi_core.boundary import boundary_samples


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


def _halves(R: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Two classes split by a vertical white boundary band (columns 15-16)."""
    classes = np.zeros((R, R), np.int64)
    classes[:, R // 2 :] = 1
    white = np.zeros((R, R), bool)
    white[:, R // 2 - 1 : R // 2 + 1] = True
    return classes, white


def test_speckle_is_zero_on_a_clean_landscape_and_counts_one_planted_speckle():
    classes, white = _halves()
    assert metrics.speckle(classes, white) == 0.0, "a clean two-region landscape has speckles"
    coloured = int((~white[1:-1, 1:-1]).sum())
    spotted = classes.copy()
    spotted[8, 5] = 2  # one pixel of another class inside region 0
    v = metrics.speckle(spotted, white)
    assert v == pytest.approx(1 / coloured), f"one planted speckle scored {v}, expected {1 / coloured}"
    holed = white.copy()
    holed[20, 25] = True  # a white hole inside the confident region 1
    v = metrics.speckle(classes, holed)
    assert v == pytest.approx(1 / (coloured - 1)), f"one white hole scored {v}"


def test_landscape_agreement_pixels_under_dots():
    classes, _ = _halves(4)  # bounds (0, 0, 4, 4): column c covers x in [c, c + 1)
    Y = np.array([[0.5, 0.5], [3.5, 3.9], [1.2, 2.0], [9.0, 1.0]])
    assert metrics.landscape_agreement(classes, (0, 0, 4, 4), Y, np.array([0, 1, 0, 0])) == 1.0
    v = metrics.landscape_agreement(classes, (0, 0, 4, 4), Y, np.array([1, 1, 1, 1]))
    assert v == pytest.approx(1 / 3), f"agreement {v}; the dot outside the bounds must not count"


class _WrongBetweenPoints(torch.nn.Module):
    """Decodes the dots exactly but flips the sign everywhere else (a per-point memory, wrong between dots)."""

    def __init__(self, Y: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("dots", torch.as_tensor(Y, dtype=torch.float32))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        on_dot = torch.cdist(y, self.dots, compute_mode="donot_use_mm_for_euclid_dist").min(1).values < 1e-6
        return torch.where(on_dot[:, None], y, -y)


def _sign_of_x_head() -> torch.nn.Linear:
    """A 2-class head on 2-D points: class 1 where x > 0, class 0 where x < 0."""
    head = torch.nn.Linear(2, 2)
    head.weight.data = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    head.bias.data.zero_()
    return head


def test_a_decoder_wrong_between_points_scores_low_agreement_despite_perfect_ppr():
    from dvi_core import StepProjection

    X = _points(300, 2, seed=3)
    head = _sign_of_x_head()
    good = StepProjection(torch.nn.Identity(), torch.nn.Identity(), X, {"n_features": 2})
    bad = StepProjection(torch.nn.Identity(), _WrongBetweenPoints(X), X, {"n_features": 2})
    for step, low in ((good, False), (bad, True)):
        res = metrics.evaluate_step(step, head, X, train_embedding=X)["train"]
        assert res["ppr"] == 1.0, f"PPR at the points {res['ppr']}"
        v = res["landscape_agreement"]
        assert (v < 0.1) if low else (v > 0.95), f"landscape agreement {v:.3f} (decoder wrong between dots: {low})"


def test_evaluate_step_measures_the_landscape_over_the_given_bounds():
    from dvi_core import StepProjection

    X = _points(200, 2, seed=4)
    head = _sign_of_x_head()
    step = StepProjection(torch.nn.Identity(), torch.nn.Identity(), X, {"n_features": 2})
    far = metrics.evaluate_step(step, head, X, train_embedding=X, bounds=(50.0, 50.0, 60.0, 60.0))["train"]
    assert far["landscape_agreement"] is None, "dots outside the served box were counted"
    near = metrics.evaluate_step(step, head, X, train_embedding=X)["train"]
    assert near["landscape_agreement"] > 0.95 and near["speckle"] == 0.0, f"{near}"


def test_trustworthiness_estimate_on_many_points_is_close_to_the_exact_value():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 20)).astype(np.float32)
    Y = X[:, :2] + 0.3 * rng.normal(size=(3000, 2)).astype(np.float32)  # a lossy projection: T well below 1
    exact = metrics.trustworthiness(X, Y, 15, max_queries=None)
    estimate = metrics.trustworthiness(X, Y, 15, max_queries=600)
    assert exact < 0.95 and abs(estimate - exact) < 0.01, f"estimate {estimate} vs exact {exact}"


def test_trustworthiness_on_given_rows_is_the_mean_over_those_rows():
    """rows=all gives the exact value; the rank counting's two paths (few / many distances below the largest
    threshold) agree with a plain count."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(700, 12)).astype(np.float32)
    for noise in (0.05, 3.0):  # a good map (few candidates per row) and a poor one (most of the row)
        Y = X[:, :2] + noise * rng.normal(size=(700, 2)).astype(np.float32)
        exact = sk_trustworthiness(X, Y, n_neighbors=15)
        assert metrics.trustworthiness(X, Y, 15, rows=np.arange(700)) == pytest.approx(exact, abs=1e-9)
    d2 = torch.as_tensor(rng.normal(size=(6, 50)))
    dn = d2[:, :4].sort(1).values
    plain = sum(float(((d2 < dn[:, j : j + 1]).sum(1) - 2).clamp_min(0).sum()) for j in range(4))
    assert metrics._rank_penalty(d2, dn, 2) == plain
    sparse = torch.cat([d2, torch.full((6, 5000), 99.0, dtype=d2.dtype)], 1)  # few below: the row-wise path
    assert metrics._rank_penalty(sparse, dn, 2) == plain


def test_evaluate_step_subsamples_large_splits_and_gives_full_values_on_request(digits, fitted):
    """Above max_samples the per-sample metrics are means over a fixed subsample (close to the full values);
    max_samples=None is the full computation, and given previous positions equal prev.transform's."""
    from core_budget import FAST

    from dvi_core import DVIProjector

    X2 = digits.train + np.random.default_rng(3).normal(0, 0.3, digits.train.shape).astype(np.float32)
    warm = DVIProjector(seed=0, **FAST).fit_step(X2, digits.head, prev=fitted, prev_features=digits.train)
    kw = dict(prev=fitted, prev_train_features=digits.train)
    full = metrics.evaluate_step(warm, digits.head, X2, max_samples=None, **kw)["train"]
    assert full == metrics.evaluate_step(warm, digits.head, X2, **kw)["train"], "600 samples were subsampled"
    given = metrics.evaluate_step(warm, digits.head, X2, max_samples=None,
                                  prev_train_embedding=fitted.transform(digits.train), **kw)["train"]
    assert given == full
    old = metrics.EVAL_SAMPLES
    try:
        metrics.EVAL_SAMPLES = 300
        sub = metrics.evaluate_step(warm, digits.head, X2, max_samples=400, **kw)["train"]
        again = metrics.evaluate_step(warm, digits.head, X2, max_samples=400, **kw)["train"]
    finally:
        metrics.EVAL_SAMPLES = old
    assert sub == again, "the subsample is not fixed"
    for key in ("nn", "boundary", "ppr", "trustworthiness"):
        assert sub[key] == pytest.approx(full[key], abs=0.05), key
    assert sub["landscape_agreement"] == full["landscape_agreement"] and sub["speckle"] == full["speckle"]
    assert sub != full, "nothing was subsampled"


def test_evaluate_step_scores_the_fitted_boundary_layout_as_transform_places_it(digits):
    """The boundary points a step was fit with are references of its placement: ``transform`` maps them onto
    ``boundary_embedding_``, so passing those positions gives the same boundary metric without placing them."""
    B = boundary_samples(digits.head, digits.train, seed=0)
    step = DVIProjector(seed=0, **FAST).fit_step(digits.train, digits.head, boundary=B)
    laid = step.boundary_embedding_
    assert laid.shape == (len(B), 2)
    np.testing.assert_allclose(step.transform(B), laid, atol=1e-6)
    kw = dict(boundary=B, train_embedding=step.embedding_)
    placed = metrics.evaluate_step(step, digits.head, digits.train, **kw)["train"]
    given = metrics.evaluate_step(step, digits.head, digits.train, boundary_embedding=laid, **kw)["train"]
    assert given["boundary"] is not None and given == placed
    with pytest.raises(ValueError, match="boundary_embedding"):
        metrics.evaluate_step(step, digits.head, digits.train, boundary_embedding=laid[1:], **kw)


def test_compiled_rank_penalty_counts_candidates_in_any_block_and_at_equal_thresholds():
    """The compiled count tests blocks of entries at once: candidates in the first, a middle and the ragged last
    block, and entries equal to a threshold (which count for the thresholds above only), give the plain count."""
    from dvi_core import knn_select

    rng = np.random.default_rng(9)
    for width in (7, 32, 95, 1000):
        d2 = (10.0 + rng.integers(0, 3, (5, width))).astype(np.float32)  # mostly above every threshold
        for r in range(5):
            d2[r, rng.choice(width, min(width, 12), replace=False)] = rng.integers(0, 6, min(width, 12))
        dn = np.sort(rng.integers(0, 7, (5, 4)), 1).astype(np.float32)
        t = torch.as_tensor(d2)
        plain = sum(int(((t < torch.as_tensor(dn[:, j : j + 1])).sum(1) - 2).clamp_min(0).sum()) for j in range(4))
        assert knn_select.rank_penalty(d2, dn, 2) == plain
