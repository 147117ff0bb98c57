"""DVIProjector / StepProjection: round trip, temporal behaviour, persistence, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from core_budget import FAST

from dvi_core import DVIProjector, StepProjection, metrics
from dvi_core.neighbors import knn


def test_round_trip_keeps_predictions(digits, fitted):
    Y = fitted.transform(digits.train)
    v = metrics.ppr(digits.head, digits.train, fitted.inverse_transform(Y))
    assert v >= 0.9, f"train PPR {v:.3f} < 0.9"
    vt = metrics.ppr(digits.head, digits.test, fitted.inverse_transform(fitted.transform(digits.test)))
    assert vt >= 0.8, f"test PPR {vt:.3f} < 0.8"


def test_shapes_dtypes_and_bounds(digits, fitted):
    assert fitted.embedding_.shape == (600, 2) and fitted.embedding_.dtype == np.float32
    assert fitted.inverse_transform(np.zeros((3, 2))).shape == (3, 50)
    x0, y0, x1, y1 = fitted.bounds_
    lo, hi = fitted.embedding_.min(0), fitted.embedding_.max(0)
    assert x1 - x0 == pytest.approx(y1 - y0), "bounds are not square"
    assert x0 < lo[0] and y0 < lo[1] and x1 > hi[0] and y1 > hi[1], f"bounds {fitted.bounds_} miss points"
    side = max(hi - lo) * 1.2
    assert x1 - x0 == pytest.approx(side, rel=1e-4), f"side {x1 - x0} != 1.2 x extent {side}"


def test_neighbourhoods_beat_pca(digits, fitted):
    nn = metrics.nn_preservation(digits.train, fitted.embedding_, 15)
    Xc = digits.train - digits.train.mean(0)
    pca = Xc @ np.linalg.svd(Xc, full_matrices=False)[2][:2].T
    ref = metrics.nn_preservation(digits.train, pca, 15)
    assert nn > ref, f"NN preservation {nn:.3f} not above PCA's {ref:.3f}"


def test_deterministic_for_a_seed(digits, fitted):
    again = DVIProjector(seed=0, **FAST).fit_step(digits.train, digits.head)
    np.testing.assert_array_equal(again.embedding_, fitted.embedding_)


def test_save_load_round_trip(tmp_path, digits, fitted):
    path = tmp_path / "step.model.pt"  # any name: nothing is appended to it
    fitted.save(path)
    assert path.exists() and not (tmp_path / "step.model.pt.npz").exists()
    with np.load(path, allow_pickle=False) as f:  # a plain npz: arrays only, no pickle
        assert "meta" in f.files and f["embedding"].shape == (600, 2)
        assert all(f[name].dtype != object for name in f.files)
    loaded = StepProjection.load(path)
    np.testing.assert_array_equal(loaded.transform(digits.test), fitted.transform(digits.test))
    Y = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.inverse_transform(Y), fitted.inverse_transform(Y))
    assert loaded.bounds_ == fitted.bounds_


def test_warm_start_moves_unchanged_samples_less(digits, fitted):
    X2 = digits.train.copy()
    changed = np.arange(60)
    X2[changed] += np.random.default_rng(1).normal(0, 1.0, X2[changed].shape).astype(np.float32)
    same = np.setdiff1d(np.arange(len(X2)), changed)
    before = fitted.embedding_.copy()
    warm = DVIProjector(seed=0, **FAST).fit_step(X2, digits.head, prev=fitted, prev_features=digits.train)
    cold = DVIProjector(seed=1, **FAST).fit_step(X2, digits.head)
    np.testing.assert_array_equal(fitted.embedding_, before)  # prev is not mutated
    move_warm = np.linalg.norm(warm.embedding_[same] - before[same], axis=1).mean()
    move_cold = np.linalg.norm(cold.embedding_[same] - before[same], axis=1).mean()
    assert move_warm < 0.5 * move_cold, f"unchanged samples moved {move_warm:.3f} warm vs {move_cold:.3f} cold"
    assert warm.npr_ is not None and 0.5 < warm.npr_ <= 1.0, f"NPR {warm.npr_}"
    kept = metrics.neighbor_preserving_rate(knn(digits.train, 15)[0], knn(X2, 15)[0]) >= 14 / 15
    still = (np.linalg.norm(warm.embedding_ - before, axis=1) == 0)[kept].mean()
    assert still > 0.9, f"only {still:.0%} of the samples that kept their neighbourhood stayed exactly in place"


def test_boundary_points_do_not_pull_the_samples_layout(digits):
    """The samples are laid out on their own complex and the boundary points after them, against the fixed samples:
    two different boundary sets leave the samples' layout exactly the same, and the boundary points end up near the
    samples they are nearest to in feature space."""
    from dvi_core import boundary
    from dvi_core.projector import _recipe

    proj = DVIProjector(seed=0, **FAST)
    X = digits.train
    recipe = _recipe(proj, X.shape[1], warm=False, n_samples=len(X))
    assert recipe.boundary_epochs > 0
    layouts = []
    for seed in (1, 2):
        B = boundary.boundary_samples(digits.head, X, seed=seed)
        edges, idx_xb, G, _, sample_edges = proj._complex(X, B, recipe.boundary_weight)
        Y = proj._layout(X, B, idx_xb, edges, sample_edges, G, None, None, recipe, lambda f: None)
        layouts.append(Y)
        near = np.linalg.norm(Y[len(X):] - Y[idx_xb[:, 0]], axis=1)
        spread = np.linalg.norm(Y[: len(X)] - Y[: len(X)].mean(0), axis=1).mean()
        assert np.median(near) < 0.5 * spread, "boundary points are not laid out near their nearest samples"
    np.testing.assert_array_equal(layouts[0][: len(X)], layouts[1][: len(X)])


def test_warm_mobility_follows_own_and_neighbours_change():
    """Constructed graph: a sample that kept its neighbours stays still unless its neighbours changed; mobility grows
    faster than linearly with change, so small changes move little."""
    from dvi_core.projector import _recipe, warm_mobility

    recipe = _recipe(DVIProjector(seed=0), 50, warm=True, n_samples=100)
    # samples 0-3 are each other's neighbours, as are 4-7; samples 0-3 and 4 kept all of theirs, 5-7 lost them all
    knn_now = np.array([[0, 1, 2, 3]] * 4 + [[4, 5, 6, 7]] * 4)
    npr = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    move = warm_mobility(npr, knn_now, recipe)
    assert move.dtype == np.float32 and move.shape == (8,)
    assert (move[:4] == 0).all(), f"samples in an unchanged neighbourhood moved: {move[:4]}"
    assert move[4] > 0, "a sample whose neighbours all changed is held still"
    assert move[4] < move[5] <= 1.0, f"mobility does not follow change: {move[4:]}"
    # a moderate change moves a sample less than in proportion (change squared)
    half = warm_mobility(np.full(4, 0.5), np.array([[0, 1, 2, 3]] * 4), recipe)
    assert (half < 0.5).all() and (half > 0).all(), f"mobility at half change {half}"
    # a step where most samples changed a lot ranks movement more steeply: the same change moves less
    alone = np.repeat(np.arange(9)[:, None], 4, 1)  # each sample its own only neighbour: change = own loss
    probe = 0.3
    calm = warm_mobility(1 - np.r_[probe, np.full(8, 0.15)], alone, recipe)[0]  # median change 0.15
    stormy = warm_mobility(1 - np.r_[probe, np.full(8, 0.5)], alone, recipe)[0]  # median change 0.5
    assert calm == pytest.approx(probe**2) and stormy == pytest.approx(probe**3), f"{calm}, {stormy}"
    # the faithful variant's recipe moves every sample fully
    faithful = _recipe(DVIProjector(variant="faithful", seed=0), 50, warm=True, n_samples=100)
    np.testing.assert_array_equal(warm_mobility(npr, knn_now, faithful), np.ones(8, np.float32))


def test_layout_schedule_is_longer_for_small_steps():
    from dvi_core.projector import LONG_LAYOUT_MAX_N, _layout_epochs

    assert _layout_epochs(LONG_LAYOUT_MAX_N, warm=False) > _layout_epochs(LONG_LAYOUT_MAX_N + 1, warm=False)
    assert _layout_epochs(100, warm=True) < _layout_epochs(100, warm=False)


def test_faithful_variant_and_progress(digits):
    seen: list[float] = []
    st = DVIProjector(variant="faithful", n_iter=40, seed=0).fit_step(digits.train, digits.head, progress=seen.append)
    assert st.embedding_.shape == (600, 2) and np.isfinite(st.embedding_).all()
    assert seen and seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen), f"progress values {seen[:5]}..."
    assert seen == sorted(seen), "progress is not monotone"
    st2 = DVIProjector(variant="faithful", n_iter=20, seed=0).fit_step(
        digits.train, digits.head, prev=st, prev_features=digits.train)
    assert st2.config_["variant"] == "faithful"


def test_two_dimensional_features_are_allowed():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))]).astype(np.float32)
    head = torch.nn.Linear(2, 2)
    head.weight.data = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    head.bias.data.zero_()
    st = DVIProjector(**FAST).fit_step(X, head)
    assert st.transform(X).shape == (200, 2) and st.inverse_transform(st.embedding_).shape == (200, 2)


BAD_FEATURES = [
    (np.zeros((5, 3), np.float32), ValueError, r"'features' parameter of DVIProjector.fit_step must be a finite "
     r"float array of shape \[N, D\] with N >= 16 and D >= 2. Got shape \(5, 3\) instead"),
    (np.ones((40, 1), np.float32), ValueError, r"D >= 2. Got shape \(40, 1\)"),
    (np.full((40, 4), np.nan, np.float32), ValueError, r"finite float array.*NaN or inf"),
    (np.ones((40, 4), np.float32), ValueError, r"must not be constant"),
    ([[1.0, 2.0]] * 40, TypeError, r"must be a numpy array. Got list instead"),
]


@pytest.mark.parametrize(("features", "exc", "match"), BAD_FEATURES)
def test_bad_features_rejected(features, exc, match):
    with pytest.raises(exc, match=match):
        DVIProjector().fit_step(features, torch.nn.Linear(4, 3))


def test_single_predicted_class_rejected(digits):
    head = torch.nn.Linear(50, 10)
    torch.nn.init.zeros_(head.weight)
    head.bias.data = torch.arange(10.0)
    with pytest.raises(ValueError, match=r"'head' parameter .* at least 2 distinct classes .*Got a single predicted"):
        DVIProjector().fit_step(digits.train, head)


def test_dimension_mismatch_with_prev_rejected(digits, fitted):
    with pytest.raises(ValueError, match=r"must have D = 50 columns like the previous step"):
        DVIProjector().fit_step(digits.train[:, :40], torch.nn.Linear(40, 10), prev=fitted,
                                prev_features=digits.train[:, :40])
    with pytest.raises(ValueError, match=r"'prev_features' parameter .* is required when 'prev' is given"):
        DVIProjector().fit_step(digits.train, digits.head, prev=fitted)
    with pytest.raises(ValueError, match=r"'prev_features' .* same shape as 'features'"):
        DVIProjector().fit_step(digits.train, digits.head, prev=fitted, prev_features=digits.train[:100])


@pytest.mark.parametrize(("params", "match"), [
    ({"n_neighbors": 1}, r"'n_neighbors' parameter of DVIProjector must be an int >= 2. Got 1 instead"),
    ({"variant": "tsne"}, r"'variant' parameter of DVIProjector must be one of \('dvi', 'faithful'\)"),
    ({"n_iter": 0}, r"'n_iter' parameter of DVIProjector must be None or an int >= 1"),
    ({"device": "gpu0"}, r"'device' parameter of DVIProjector must be a torch device"),
])
def test_bad_hyper_parameters_rejected(digits, params, match):
    with pytest.raises(ValueError, match=match):
        DVIProjector(**params).fit_step(digits.train, digits.head)
