"""The default variant's encoder (placement.LayoutEncoder): exact on references, umap-like and prediction-keeping
on new points, deterministic, and the kNN graph a step hands to the next one."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from core_budget import FAST

from dvi_core import DVIProjector, StepProjection, metrics, placement
from dvi_core.placement import LayoutEncoder


def test_training_samples_map_exactly_onto_the_layout(digits, fitted):
    assert isinstance(fitted.encoder, LayoutEncoder)
    np.testing.assert_allclose(fitted.transform(digits.train), fitted.embedding_, atol=1e-6)


def test_new_points_do_not_depend_on_the_batch(digits, fitted):
    whole = fitted.transform(digits.test)
    np.testing.assert_allclose(fitted.transform(digits.test[:7]), whole[:7], atol=1e-5)
    np.testing.assert_allclose(fitted.transform(digits.test[::-1])[::-1], whole, atol=1e-5)


def test_new_points_keep_their_prediction_and_neighbourhoods(digits, fitted):
    Y = fitted.transform(digits.test)
    ppr = metrics.ppr(digits.head, digits.test, fitted.inverse_transform(Y))
    assert ppr >= 0.9, f"test PPR {ppr:.3f} < 0.9"
    raw = fitted.encoder(torch.from_numpy(digits.test)).numpy()  # no decoder: no prediction keeping
    ppr_raw = metrics.ppr(digits.head, digits.test, fitted.inverse_transform(raw))
    assert ppr > ppr_raw, f"keeping predictions did not raise test PPR ({ppr_raw:.3f} -> {ppr:.3f})"
    moved = np.linalg.norm(Y - raw, axis=1) > 1e-6
    assert 0 < moved.mean() < 0.5, f"{moved.mean():.0%} of test points moved to keep their prediction"
    nn = metrics.nn_preservation(digits.test, Y, 15)
    Xc = digits.test - digits.test.mean(0)
    pca = Xc @ np.linalg.svd(Xc, full_matrices=False)[2][:2].T
    assert nn > metrics.nn_preservation(digits.test, pca, 15), "test neighbourhoods no better than PCA's"


def test_moved_points_go_the_least_way(digits, fitted):
    """A moved point stops at the first fraction of the way to its same-class reference that decodes right."""
    raw = fitted.encoder(torch.from_numpy(digits.test)).numpy()
    Y = fitted.transform(digits.test)
    moved = np.flatnonzero(np.linalg.norm(Y - raw, axis=1) > 1e-6)
    refs = fitted.encoder.values.numpy()
    on_reference = (np.linalg.norm(refs[None] - Y[moved, None], axis=2).min(1) < 1e-6).mean()
    assert on_reference < 1.0, "every moved point was put onto a reference: the least-way search is not working"


def test_tied_points_keep_their_place(digits, fitted, monkeypatch):
    """With the tie threshold at 1 every point counts as tied: nothing moves."""
    monkeypatch.setattr(placement, "TIE_GAP", 1.01)
    raw = fitted.encoder(torch.from_numpy(digits.test)).numpy()
    np.testing.assert_allclose(fitted.transform(digits.test), raw, atol=1e-6)


def test_next_step_reuses_the_knn_graph_only_for_the_same_features(digits, fitted):
    assert fitted.knn_.shape == (600, 15) and fitted.knn_.dtype == np.int32
    X2 = digits.train + np.random.default_rng(2).normal(0, 0.3, digits.train.shape).astype(np.float32)
    warm = DVIProjector(seed=0, **FAST).fit_step(X2, digits.head, prev=fitted, prev_features=digits.train)
    stale = StepProjection(fitted.encoder, fitted.decoder, fitted.embedding_, fitted.config_,
                           knn=np.zeros_like(fitted.knn_), digest=fitted.features_digest_ + "x")
    again = DVIProjector(seed=0, **FAST).fit_step(X2, digits.head, prev=stale, prev_features=digits.train)
    assert warm.npr_ == pytest.approx(again.npr_), "a stale graph (digest mismatch) was used for NPR"
    wrong = StepProjection(fitted.encoder, fitted.decoder, fitted.embedding_, fitted.config_,
                           knn=np.zeros_like(fitted.knn_), digest=fitted.features_digest_)
    trusted = DVIProjector(seed=0, **FAST).fit_step(X2, digits.head, prev=wrong, prev_features=digits.train)
    assert trusted.npr_ != pytest.approx(warm.npr_), "the stored graph was not used although the digest matched"


REFUSED = r"not a saved StepProjection of this version .* project the step again"


def _object_array_file(path):
    with open(path, "wb") as f:
        np.savez(f, meta=np.array([{"format": "x"}], dtype=object))


def _other_version_file(path):
    with open(path, "wb") as f:
        np.savez(f, meta=np.frombuffer(b'{"format": "dvi_core.StepProjection/2"}', np.uint8))


@pytest.mark.parametrize("make", [
    lambda p: torch.save({"format": "dvi_core.StepProjection/2"}, p),  # the old pickle-based file
    lambda p: p.write_bytes(b"garbage" * 100),
    lambda p: p.write_bytes(b""),
    _object_array_file,
    _other_version_file,
], ids=["torch-pickle", "garbage", "empty", "object-array", "other-version"])
def test_a_file_of_another_format_is_refused_with_advice(tmp_path, make):
    path = tmp_path / "old.model.pt"
    make(path)
    with pytest.raises(ValueError, match=REFUSED):
        StepProjection.load(path)


def test_truncated_or_tampered_files_are_refused(tmp_path, fitted):
    path = tmp_path / "step.npz"
    fitted.save(path)
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=REFUSED):
        StepProjection.load(cut)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    name = next(k for k in arrays if k.startswith("decoder/net"))
    arrays[name] = arrays[name][..., :1]  # wrong shape
    bad = tmp_path / "bad.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match=REFUSED):
        StepProjection.load(bad)


def test_saved_file_stores_the_references_once(tmp_path, digits, fitted):
    path = tmp_path / "step.pt"
    fitted.save(path)
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(f["meta"].tobytes())
        assert meta["shared_memory"] == 600 and "decoder/memory.values" not in f.files
    loaded = StepProjection.load(path)
    torch.testing.assert_close(loaded.decoder.memory.values, fitted.decoder.memory.values, rtol=0, atol=0)
    Y = np.random.default_rng(0).normal(size=(20, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.inverse_transform(Y), fitted.inverse_transform(Y))


def test_non_finite_points_are_refused(digits, fitted):
    X = digits.test[:5].copy()
    X[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"'X' parameter of StepProjection.transform must be finite. Got 1 rows"):
        fitted.transform(X)
    with pytest.raises(ValueError, match=r"'Y' parameter of StepProjection.inverse_transform must be finite"):
        fitted.inverse_transform(np.array([[0.0, np.inf]]))


def test_evaluate_step_reuses_graphs_without_changing_any_metric(digits, fitted):
    """evaluate_step takes the step's stored kNN graph and one graph per split; values equal the plain functions."""
    X2 = digits.train + np.random.default_rng(3).normal(0, 0.3, digits.train.shape).astype(np.float32)
    T2 = digits.test + np.random.default_rng(4).normal(0, 0.3, digits.test.shape).astype(np.float32)
    warm = DVIProjector(seed=0, **FAST).fit_step(X2, digits.head, prev=fitted, prev_features=digits.train)
    got = metrics.evaluate_step(warm, digits.head, X2, test_features=T2, prev=fitted,
                                prev_train_features=digits.train, prev_test_features=digits.test)
    for name, X, Xp in (("train", X2, digits.train), ("test", T2, digits.test)):
        Y = warm.transform(X)
        assert got[name]["nn"] == pytest.approx(metrics.nn_preservation(X, Y, 15))
        assert got[name]["trustworthiness"] == pytest.approx(metrics.trustworthiness(X, Y, 15))
        want = metrics.temporal_correlation(Xp, X, fitted.transform(Xp), Y, 15)
        assert got[name]["temporal"] == pytest.approx(want)
    given = metrics.evaluate_step(warm, digits.head, X2, test_features=T2, prev=fitted,
                                  prev_train_features=digits.train, prev_test_features=digits.test,
                                  train_embedding=warm.embedding_, test_embedding=warm.transform(T2))
    assert given == got, "passing the embeddings the step would compute changed a metric"


def test_a_large_seed_still_loads(tmp_path, digits):
    st = DVIProjector(seed=2**40, **FAST).fit_step(digits.train, digits.head)
    st.save(tmp_path / "s.npz")
    assert StepProjection.load(tmp_path / "s.npz").config_["seed"] == 2**40


def test_new_points_are_placed_against_a_wider_set_of_references():
    """With n_neighbors=15 a new point still weighs its MIN_PLACEMENT_NEIGHBORS nearest references: 15 of them
    lie at one place of the layout and the next 25, barely farther, at another: the point leaves the first group
    (with 15 references it sits on it)."""
    assert placement.MIN_PLACEMENT_NEIGHBORS == 40, "the benchmark-tuned value"
    rng = np.random.default_rng(0)
    near = rng.normal(0.0, 0.001, (15, 2)) + [1.0, 0.0]  # features: 15 at ~1, 25 at ~1.02, 60 far away
    ring = rng.normal(0.0, 0.001, (25, 2)) + [0.0, 1.02]
    far = rng.normal(0.0, 0.01, (60, 2)) + [40.0, 40.0]
    X = torch.as_tensor(np.concatenate([near, ring, far]), dtype=torch.float32)
    Y = torch.as_tensor(np.concatenate([np.zeros((15, 2)), np.full((25, 2), 10.0), np.full((60, 2), -50.0)]),
                        dtype=torch.float32)
    enc = LayoutEncoder(2, 2, n_neighbors=15)
    enc.store(X, Y, torch.zeros(len(X), 2))
    y = enc(torch.zeros(1, 2))[0].numpy()
    assert np.linalg.norm(y) > 2.0, f"placed at {y}: on the 15 nearest references alone"


def test_compiled_refine_equals_the_torch_refine():
    """The CPU refine (one numba loop, placement_cpu) and the torch loop give the same places up to float rounding:
    points spread near and far from a layout of 300 references, each with 40 neighbours of uneven weights."""
    gen = torch.Generator().manual_seed(1)
    values = torch.randn(300, 2, generator=gen) * 5
    enc = LayoutEncoder(4, 4, n_ref=300)
    enc.values = values
    nbr = torch.randint(300, (200, 40), generator=gen)
    w = torch.rand(200, 40, generator=gen) + 0.01
    start = values[nbr].mean(1) + torch.randn(200, 2, generator=gen) * torch.linspace(0.0, 3.0, 200)[:, None]
    compiled = enc._refine(start, nbr, w)
    plain = enc._refine(start, nbr, w, compiled=False)
    assert (compiled - start).abs().max() > 0.1, "the refine moved nothing: the comparison says nothing"
    np.testing.assert_allclose(compiled.numpy(), plain.numpy(), atol=1e-4)


def test_unchanged_points_continue_from_their_previous_place(digits, fitted):
    """Same features and samples as the previous step: a new point keeps where it was shown (when that place decodes
    to its class), moved by its nearest samples' displacement; training samples stay exactly on the layout."""
    placed = fitted.transform(digits.test)
    shown = placed + np.float32(0.02)
    Y = fitted.transform(digits.test, prev=fitted, prev_features=digits.test, prev_embedding=shown)
    kept = np.all(np.abs(Y - shown) < 1e-5, axis=1)
    fresh = np.all(np.abs(Y - placed) < 1e-5, axis=1)
    assert np.all(kept | fresh), "a point went somewhere else than its previous place or its placement"
    assert kept.mean() > 0.8, f"only {kept.mean():.0%} of the unchanged points kept their previous place"
    moved = copy.copy(fitted)
    moved.embedding_ = fitted.embedding_ - np.array([0.05, 0.0], np.float32)  # every sample moves by (+0.05, 0)
    Y = fitted.transform(digits.test, prev=moved, prev_features=digits.test, prev_embedding=placed)
    followed = np.all(np.abs(Y - (placed + np.array([0.05, 0.0], np.float32))) < 1e-4, axis=1)
    assert followed.mean() > 0.8, f"only {followed.mean():.0%} of the points followed their samples"
    Yt = fitted.transform(digits.train, prev=fitted, prev_features=digits.train, prev_embedding=fitted.embedding_ + 1)
    np.testing.assert_allclose(Yt, fitted.embedding_, atol=1e-6)


def test_points_whose_neighbourhood_changed_are_placed_afresh(digits, fitted):
    placed = fitted.transform(digits.test)
    others = digits.test[np.random.default_rng(0).permutation(len(digits.test))]  # unrelated previous features
    Y = fitted.transform(digits.test, prev=fitted, prev_features=others, prev_embedding=placed + 3.0)
    fresh = np.all(np.abs(Y - placed) < 1e-5, axis=1)
    assert fresh.mean() > 0.9, f"{1 - fresh.mean():.0%} of the points kept a place their neighbourhood left"


def test_nearest_samples_are_remembered_only_for_the_same_points_and_references(digits, fitted):
    """The next step asks this step's encoder for the same points' nearest samples: the answer is kept, equal to a
    fresh search, and not reused for other points or after the references change."""
    enc = copy.deepcopy(fitted.encoder)
    n = len(fitted.embedding_)
    X = torch.as_tensor(digits.test)
    first = placement._nearest_samples(enc, X, n)
    fresh = placement._search_nearest_samples(enc, X, n)
    np.testing.assert_array_equal(first[0], fresh[0])
    np.testing.assert_array_equal(first[1], fresh[1])
    again = placement._nearest_samples(enc, X, n)
    assert again[0] is first[0], "the same points' neighbours were searched again"
    other = placement._nearest_samples(enc, X.flip(0), n)
    np.testing.assert_array_equal(other[0], first[0][::-1])
    kept = placement._nearest_samples(enc, X, n)[0]
    assert placement._nearest_samples(enc, X, n)[0] is kept
    enc.keys.mul_(2.0)  # the references moved: the remembered answer no longer applies
    assert placement._nearest_samples(enc, X, n)[0] is not kept


def test_kept_share_counts_common_neighbours():
    before = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    now = np.array([[3, 2, 9, 8], [4, 5, 6, 7]])
    np.testing.assert_allclose(placement._kept_share(before, now, 10), [0.5, 1.0])
    np.testing.assert_allclose(placement._kept_share(before, now[::-1], 10), [0.0, 0.0])


def test_continuity_arguments_are_checked(digits, fitted):
    T = digits.test[:5]
    with pytest.raises(ValueError, match=r"'prev', 'prev_features' and 'prev_embedding' parameters .* go together"):
        fitted.transform(T, prev=fitted)
    with pytest.raises(ValueError, match=r"'prev_embedding' parameter of StepProjection.transform must have shape"):
        fitted.transform(T, prev=fitted, prev_features=T, prev_embedding=np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"'prev_features' parameter of StepProjection.transform must be finite"):
        fitted.transform(T, prev=fitted, prev_features=T * np.nan, prev_embedding=np.zeros((5, 2)))
