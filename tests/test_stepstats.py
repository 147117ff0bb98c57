"""Per-step statistics on constructed cases with known answers, and on a real (small) MNIST training run."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import write_mnist_run

from tensorboard_plugin_dvi import stepstats, storage
from tensorboard_plugin_dvi.dynamics import Positions, StepInput


def item(step, labels, logits, split=None, ids=None):
    n = len(labels)
    return StepInput(step, np.arange(n) if ids is None else np.asarray(ids), np.asarray(labels),
                     np.ones(n, np.uint8) if split is None else np.asarray(split, np.uint8),
                     np.asarray(logits, np.float32))


def onehot_logits(pred, c):
    z = np.zeros((len(pred), c), np.float32)
    z[np.arange(len(pred)), pred] = 5.0
    return z


def clusters(rng, n_per, centres, sigma):
    x = np.concatenate([c + sigma * rng.standard_normal((n_per, len(c))) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(len(centres)), n_per)


def test_geometry_of_two_known_clusters(rng):
    x, y = clusters(rng, 4000, [np.zeros(3), np.array([6.0, 0, 0])], 1.0)
    geo = stepstats.geometry(x, y, 3)
    assert geo.counts.tolist() == [4000, 4000, 0]
    np.testing.assert_allclose(geo.spread[:2], np.sqrt(3), rtol=0.03)  # RMS distance of a 3-d unit Gaussian
    np.testing.assert_allclose(geo.centroid_dist[0, 1], 6.0, rtol=0.02)
    np.testing.assert_allclose(geo.separation[:2], 6.0 / np.sqrt(3), rtol=0.04)
    assert np.isnan(geo.spread[2]) and np.isnan(geo.separation[2]) and np.isnan(geo.centroid_dist[2]).all()
    assert geo.mean_separation == pytest.approx(np.nanmean(geo.separation))


def test_separation_ignores_scale_rotation_and_translation(rng):
    x, y = clusters(rng, 300, [rng.standard_normal(8) * 3 for _ in range(4)], 1.0)
    q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    moved = (7.0 * x @ q + 100.0).astype(np.float32)
    np.testing.assert_allclose(stepstats.geometry(moved, y, 4).separation, stepstats.geometry(x, y, 4).separation,
                               rtol=1e-3)


def test_neighbour_change_is_zero_for_the_same_samples_in_any_order_and_high_for_shuffled_ones(rng):
    x = rng.standard_normal((500, 6)).astype(np.float32)
    y = rng.integers(0, 3, 500)
    logits = onehot_logits(y, 3)
    stats = stepstats.StepStatistics(probe=200, k=5)
    assert np.isnan(stats.add_step(item(0, y, logits), x).neighbour_change)
    order = rng.permutation(500)  # the same samples (matched by id), listed in another order
    assert stats.add_step(item(1, y[order], logits[order], ids=order), x[order]).neighbour_change == 0.0
    shuffled = x[rng.permutation(500)]  # every sample gets another sample's features
    change = stats.add_step(item(2, y, logits), shuffled).neighbour_change
    assert change > 0.9, f"neighbour change after shuffling features: {change:.3f}"
    small = stats.add_step(item(3, y, logits), shuffled + 0.01 * rng.standard_normal((500, 6)).astype(np.float32))
    assert small.neighbour_change < 0.2


def test_watched_split_accuracy_confusion_and_grown_confusions():
    labels = np.repeat(np.arange(3), 20)
    split = np.tile(np.r_[np.ones(10), np.zeros(10)], 3)  # half of each class is test
    x = np.eye(3, dtype=np.float32)[labels] + 0.0
    stats = stepstats.StepStatistics(probe=30, k=3)
    first = stats.add_step(item(0, labels, onehot_logits(labels, 3), split), x)
    assert first.watched == 0 and first.watched_counts.tolist() == [10, 10, 10]
    assert first.overall_accuracy == 1.0 and first.grown == []
    pred = labels.copy()
    pred[(labels == 2) & (split == 0)] = 1  # every test '2' now predicted as '1'; train ones stay right
    second = stats.add_step(item(1, labels, onehot_logits(pred, 3), split), x)
    assert second.watched_accuracy.tolist() == [1.0, 1.0, 0.0]
    assert second.accuracy[1].tolist() == [1.0, 1.0, 1.0]
    assert second.confusion[2].tolist() == [0, 10, 0]
    assert second.grown == [{"label": 2, "pred": 1, "before": 0.0, "now": 1.0}]
    only_train = stepstats.StepStatistics().add_step(item(0, labels, onehot_logits(labels, 3)), x)
    assert only_train.watched == 1 and only_train.watched_counts.tolist() == [20, 20, 20]


def test_steps_must_increase_and_features_must_be_sane(rng):
    stats = stepstats.StepStatistics()
    y = np.zeros(4, np.int64)
    x = rng.standard_normal((4, 2)).astype(np.float32)
    stats.add_step(item(3, y, onehot_logits(y, 2)), x)
    with pytest.raises(ValueError, match="increasing order"):
        stats.add_step(item(3, y, onehot_logits(y, 2)), x)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite floats"):
        stats.add_step(item(4, y, onehot_logits(y, 2)), bad)
    with pytest.raises(ValueError, match="finite floats"):
        stats.add_step(item(4, y, onehot_logits(y, 2)), x[:3])
    with pytest.raises(ValueError, match="unique"):
        stats.add_step(item(4, y, onehot_logits(y, 2), ids=[0, 1, 1, 2]), x)
    with pytest.raises(ValueError, match="3 classes"):
        stats.add_step(item(4, y, onehot_logits(y, 3)), x)


def test_map_geometry_and_displacement_in_map_widths_any_projection_order(rng):
    n = 100
    labels = np.repeat([0, 1], 50)
    stats = stepstats.StepStatistics(probe=n, k=5)
    for step in range(3):
        stats.add_step(item(step, labels, onehot_logits(labels, 2)), rng.standard_normal((n, 4)).astype(np.float32))
    xy = np.where(labels[:, None] == 0, 0.0, 10.0) + rng.standard_normal((n, 2))
    stats.add_positions(Positions(2, np.arange(n), xy + [4.0, 0.0], 20.0))  # later step projected first
    first = stats.add_positions(Positions(0, np.arange(n), xy, 20.0))
    assert np.isnan(first.displacement) and first.since is None
    assert stats.maps[2].since == 0 and stats.maps[2].displacement == pytest.approx(0.2)
    stats.add_positions(Positions(1, np.arange(n)[::-1], (xy + [1.0, 0.0])[::-1], 20.0))
    assert stats.maps[1].displacement == pytest.approx(0.05) and stats.maps[2].displacement == pytest.approx(0.15)
    geo = stats.maps[1].geometry
    assert geo.centroid_dist[0, 1] == pytest.approx(np.sqrt(2) * 10 / 20, rel=0.05)
    unknown = stats.add_positions(Positions(3, np.arange(n, 2 * n), xy, 20.0))  # ids never logged: left out
    assert unknown.geometry.counts.sum() == 0


def test_real_training_run_separates_classes_as_it_learns(tmp_path):
    run_dir = str(tmp_path / "mnist")
    write_mnist_run(run_dir, 4, n=500)
    store = storage.RunStore(run_dir)
    records, _ = store.read_run()
    stats = stepstats.StepStatistics(probe=300)
    for step in sorted(records):
        arrays = store.load_arrays(records[step])
        got = stats.add_step(StepInput.from_arrays(step, arrays), arrays["features"])
        assert got.overall_accuracy == pytest.approx(records[step]["accuracy"]["test"])
    seps = [s.geometry.mean_separation for s in stats.steps]
    changes = [s.neighbour_change for s in stats.steps]
    assert seps[-1] > seps[0], f"mean separation over steps: {np.round(seps, 3)}"
    assert np.isnan(changes[0]) and all(0 < c < 1 for c in changes[1:]), changes
