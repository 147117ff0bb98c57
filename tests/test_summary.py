"""`dvi.summary.snapshot`: round trips, targets, and every bad input rejected before anything is written."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from helpers import make_step_data
from tensorboard.backend.event_processing import event_accumulator
from torch.utils.tensorboard import SummaryWriter

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import metadata, storage


def _files(run_dir: str) -> list[str]:
    found = []
    for root, _, names in os.walk(run_dir):
        found += [os.path.join(root, n) for n in names]
    return sorted(found)


def _accumulator(run_dir: str) -> event_accumulator.EventAccumulator:
    acc = event_accumulator.EventAccumulator(run_dir, size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    return acc


@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
def test_round_trip_path_target(tmp_path, as_torch):
    feats, labels, head = make_step_data(n=50, d=6, c=4)
    split = np.arange(50) < 40
    ids = np.arange(100, 150)
    if not as_torch:
        feats, labels = feats.numpy(), labels.numpy()
    record = dvi.summary.snapshot(str(tmp_path), 3, feats, labels, head, split=split, sample_ids=ids,
                                  class_names=list("abcd"), flags={"odd": ids[1::2]})
    dvi.summary.close(str(tmp_path))
    records, problems = storage.RunStore(str(tmp_path)).read_run()
    assert problems == [] and list(records) == [3]
    data = storage.RunStore(str(tmp_path)).load_step(records[3])
    np.testing.assert_array_equal(data.features, np.asarray(feats, dtype=np.float32))
    np.testing.assert_array_equal(data.labels, np.asarray(labels))
    np.testing.assert_array_equal(data.split, split.astype(np.uint8))
    np.testing.assert_array_equal(data.ids, ids)
    np.testing.assert_array_equal(data.flags["odd"], ids[1::2])
    with torch.no_grad():
        expected = head(torch.as_tensor(np.asarray(feats), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(data.logits, expected, atol=1e-6)
    assert record["classes"] == list("abcd") and record["n"] == 50 and record["d"] == 6
    # The same record is in the event file, under the DVI tag and plugin.
    acc = _accumulator(str(tmp_path))
    events = acc.Tensors(metadata.TAG)
    assert [e.step for e in events] == [3]
    assert acc.SummaryMetadata(metadata.TAG).plugin_data.plugin_name == "dvi"
    assert storage.parse_record(events[0].tensor_proto.string_val[0]) == record


def test_summary_writer_target_keeps_user_scalars(tmp_path):
    feats, labels, head = make_step_data()
    writer = SummaryWriter(str(tmp_path / "run"))
    for step in range(3):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        dvi.summary.snapshot(writer, step=step, features=feats, labels=labels, head=head)
    writer.close()
    event_files = [f for f in _files(str(tmp_path / "run")) if "tfevents" in f]
    assert len(event_files) == 1, f"DVI should write into the writer's own event file, found {event_files}"
    acc = _accumulator(str(tmp_path / "run"))
    assert [round(s.value, 4) for s in acc.Scalars("loss")] == [1.0, 0.5, 0.3333]
    assert [e.step for e in acc.Tensors(metadata.TAG)] == [0, 1, 2]
    records, problems = storage.RunStore(str(tmp_path / "run")).read_run()
    assert sorted(records) == [0, 1, 2] and problems == []


def test_closed_writer_is_rejected(tmp_path):
    feats, labels, head = make_step_data()
    writer = SummaryWriter(str(tmp_path))
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        dvi.summary.snapshot(writer, 0, feats, labels, head)


def test_float16_features_and_string_split(tmp_path):
    feats, labels, head = make_step_data(n=20)
    split = np.array(["train"] * 15 + ["test"] * 5)
    dvi.summary.snapshot(str(tmp_path), 0, feats.half(), labels, head, split=split)
    records, _ = storage.RunStore(str(tmp_path)).read_run()
    data = storage.RunStore(str(tmp_path)).load_step(records[0])
    assert data.features.dtype == np.float16
    assert data.split.tolist() == [1] * 15 + [0] * 5
    assert records[0]["accuracy"]["train"] == 1.0  # labels are the head's own predictions


def test_inputs_become_thumbnails_once(tmp_path, mnist):
    images = mnist["images"][:30]
    feats, labels, head = make_step_data(n=30, c=10)
    for step in range(2):
        dvi.summary.snapshot(str(tmp_path), step, feats, labels, head, inputs=torch.from_numpy(images).float() / 255)
    ids, thumbs = storage.RunStore(str(tmp_path)).load_inputs()
    assert thumbs.shape == (30, 28, 28, 1) and thumbs.dtype == np.uint8
    assert np.abs(thumbs[..., 0].astype(int) - images.astype(int)).max() <= 1


def test_later_steps_reuse_stored_thumbnails_but_still_validate_inputs(tmp_path, mnist, monkeypatch):
    """Thumbnails are made once per run: a later step with the same ids makes none, a new id extends the file,
    and bad inputs are still rejected on later steps (nothing written)."""
    images = mnist["images"][:30]
    feats, labels, head = make_step_data(n=30, c=10)
    dvi.summary.snapshot(str(tmp_path), 0, feats, labels, head, inputs=images)
    made = []
    real = dvi.summary.validation.to_thumbnails
    monkeypatch.setattr(dvi.summary.validation, "to_thumbnails", lambda x, n: made.append(n) or real(x, n))
    record = dvi.summary.snapshot(str(tmp_path), 1, feats, labels, head, inputs=images)
    assert record["has_inputs"] and made == [1], made  # only the one-image shape check
    bad = images.astype(np.float32)
    bad[3, 0, 0] = np.nan
    before = _files(str(tmp_path))
    with pytest.raises(ValueError, match="'inputs'.*finite"):
        dvi.summary.snapshot(str(tmp_path), 2, feats, labels, head, inputs=bad)
    with pytest.raises(ValueError, match="'inputs'.*N=30"):
        dvi.summary.snapshot(str(tmp_path), 2, feats, labels, head, inputs=images[:5])
    assert _files(str(tmp_path)) == before
    dvi.summary.snapshot(str(tmp_path), 2, feats, labels, head, inputs=images, sample_ids=np.arange(30) + 10)
    ids, thumbs = storage.RunStore(str(tmp_path)).load_inputs()
    assert sorted(ids) == list(range(40)) and len(thumbs) == 40
    assert np.array_equal(thumbs[list(ids).index(35), ..., 0], images[25])


def test_large_inputs_are_downscaled_nchw(tmp_path):
    feats, labels, head = make_step_data(n=4)
    images = np.random.default_rng(0).random((4, 3, 128, 96)).astype(np.float32)
    dvi.summary.snapshot(str(tmp_path), 0, feats, labels, head, inputs=images)
    _, thumbs = storage.RunStore(str(tmp_path)).load_inputs()
    assert thumbs.shape == (4, 64, 48, 3)


def _bad_cases():
    feats, labels, head = make_step_data(n=30, d=5, c=3)
    nan_feats = feats.clone()
    nan_feats[4, 2] = float("nan")
    return {
        "mismatched N": (dict(labels=labels[:20]), ValueError, "'labels'.*length N=30"),
        "wrong rank": (dict(features=feats.reshape(30, 5, 1)), ValueError, "'features'.*2-D"),
        "non-finite": (dict(features=nan_feats), ValueError, "'features'.*finite.*first rows: \\[4\\]"),
        "label out of range": (dict(labels=torch.full((30,), 3)), ValueError, "'labels'.*\\[0, 3\\)"),
        "negative label": (dict(labels=torch.full((30,), -1)), ValueError, "'labels'.*\\[0, 3\\)"),
        "negative step": (dict(step=-1), ValueError, "'step'.*non-negative"),
        "float step": (dict(step=1.5), TypeError, "'step'"),
        "head/classes mismatch": (dict(class_names=["a", "b"]), ValueError, "'class_names'.*3 names"),
        "head wrong input size": (dict(head=torch.nn.Linear(7, 3)), ValueError, "'head'.*could not be applied"),
        "head not a module": (dict(head=lambda x: x), TypeError, "'head'.*torch.nn.Module"),
        "duplicate ids": (dict(sample_ids=np.r_[np.arange(29), 0]), ValueError, "'sample_ids'.*unique"),
        "split wrong values": (dict(split=np.array(["train", "val"] * 15)), ValueError, "'split'.*'val'"),
        "split wrong length": (dict(split=np.ones(10, bool)), ValueError, "'split'.*length N=30"),
        "flag unknown id": (dict(flags={"x": [999]}), ValueError, "'flags'.*999"),
        "inputs wrong N": (dict(inputs=np.zeros((3, 8, 8))), ValueError, "'inputs'.*N=30"),
        "encoder without inputs": (dict(encoder=torch.nn.Identity()), ValueError, "'encoder'.*needs 'inputs'"),
        "bad target": (dict(target=42), TypeError, "'target'"),
        "string features": (dict(features=np.array([["a"] * 5] * 30)), TypeError, "'features'.*float"),
    }, dict(step=0, features=feats, labels=labels, head=head)


@pytest.mark.parametrize("case", list(_bad_cases()[0]))
def test_bad_input_is_rejected_and_nothing_written(tmp_path, case):
    cases, good = _bad_cases()
    override, error, message = cases[case]
    kwargs = {"target": str(tmp_path / "run"), **good, **override}
    target, step, features, labels, head = (kwargs.pop(k) for k in ("target", "step", "features", "labels", "head"))
    with pytest.raises(error, match=message):
        dvi.summary.snapshot(target, step, features, labels, head, **kwargs)
    assert _files(str(tmp_path)) == [], f"a rejected snapshot wrote files: {_files(str(tmp_path))}"


def test_encoder_and_inputs_store_input_space_boundary_samples(tmp_path, mnist):
    """With an encoder, boundary samples are mixes of real inputs, encoded, sitting on the head's boundary."""
    from dvi_core.boundary import normalized_gap

    torch.manual_seed(0)
    images = torch.from_numpy(mnist["images"][:400]).float().div(255).unsqueeze(1)
    labels = torch.from_numpy(mnist["labels"][:400])
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 32), torch.nn.ReLU())
    head = torch.nn.Linear(32, 10)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(encoder(images)), labels).backward()
        opt.step()
    with torch.no_grad():
        feats = encoder(images)
    dvi.summary.snapshot(str(tmp_path), 0, feats, labels, head, inputs=images, encoder=encoder)
    store = storage.RunStore(str(tmp_path))
    records, _ = store.read_run()
    data = store.load_step(records[0])
    assert records[0]["boundary"] == "input"
    assert data.boundary is not None and data.boundary_test is not None
    assert data.boundary.shape[1] == 32 and 10 <= len(data.boundary) <= 80, data.boundary.shape
    assert not np.array_equal(data.boundary[: len(data.boundary_test)], data.boundary_test[: len(data.boundary)])
    with torch.no_grad():
        gap = normalized_gap(head(torch.from_numpy(data.boundary))).numpy()
    assert float(np.mean(gap < 0.1)) >= 0.9, f"only {np.mean(gap < 0.1):.2f} of boundary samples are on the boundary"
