"""Layer statistics: the sketched relative change against the exact one, gradient norms, memory, files and records."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing import event_file_loader
from torch.utils.tensorboard import SummaryWriter

from tensorboard_plugin_dvi import layers, metadata, storage


def exact_change(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    moved = sum(float(((a.detach() - b) ** 2).sum()) for a, b in zip(after, before, strict=True))
    return float(np.sqrt(moved / sum(float((b ** 2).sum()) for b in before)))


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(784, 300), torch.nn.ReLU(), torch.nn.Linear(300, 10))


@pytest.mark.parametrize("change", ["dense", "rank-1", "sparse rows", "one entry"])
def test_sketched_relative_change_matches_the_exact_one(change):
    model, rec = mlp(), layers.LayerRecorder()
    rec.measure(model)
    before = [p.detach().clone() for p in model[0].parameters()]
    gen = torch.Generator().manual_seed(1)
    weight = model[0].weight
    with torch.no_grad():
        if change == "dense":
            weight += 0.02 * torch.randn(weight.shape, generator=gen)
        elif change == "rank-1":
            weight += 0.05 * torch.outer(torch.randn(300, generator=gen), torch.randn(784, generator=gen))
        elif change == "sparse rows":
            weight[:5] += 0.3 * torch.randn(5, 784, generator=gen)
        else:
            weight[7, 11] += 3.0
    got = rec.measure(model)
    expected = exact_change(before, list(model[0].parameters()))
    assert got["rel_change"][0] == pytest.approx(expected, rel=0.1), (change, got["rel_change"][0], expected)
    assert got["rel_change"][1] == 0.0, "an unchanged layer"


def test_small_tensors_are_kept_whole_so_their_change_is_exact():
    model, rec = torch.nn.Linear(20, 5), layers.LayerRecorder()
    rec.measure(model)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        model.weight.mul_(1.5)
        model.bias.add_(1.0)
    got = rec.measure(model)
    assert got["rel_change"][0] == pytest.approx(exact_change(before, list(model.parameters())), rel=1e-5)


def test_norms_gradients_names_blocks_and_a_fresh_start():
    model = torch.nn.Sequential(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 3))
    rec = layers.LayerRecorder()
    first = rec.measure(model)
    assert first["names"].tolist() == ["0.0", "0.1", "2"] and first["blocks"].tolist() == ["0", "0", ""]
    assert first["params"].tolist() == [40, 8, 4 * 26 * 26 * 3 + 3]
    assert np.isnan(first["rel_change"]).all() and np.isnan(first["grad_norm"]).all()
    weight_norm = np.sqrt(sum(float((p ** 2).sum()) for p in model[2].parameters()))
    assert first["norm"][2] == pytest.approx(weight_norm, rel=1e-6)
    torch.nn.functional.cross_entropy(model(torch.randn(8, 1, 28, 28)), torch.arange(8) % 3).backward()
    second = rec.measure(model)
    grad = np.sqrt(sum(float((p.grad ** 2).sum()) for p in model[2].parameters()))
    assert second["grad_norm"][2] == pytest.approx(grad, rel=1e-5) and (second["grad_norm"] > 0).all()
    assert (second["rel_change"] == 0).all(), "no optimizer step between the calls"
    model[2] = torch.nn.Linear(4 * 26 * 26, 5)  # a layer that changed shape starts over
    third = rec.measure(model)
    assert np.isnan(third["rel_change"][2]) and not np.isnan(third["rel_change"][0])


def test_extra_memory_is_a_small_fraction_of_the_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Conv2d(128, 128, 3) for _ in range(4)], torch.nn.Flatten(),
                                torch.nn.Linear(2048, 1000))
    rec = layers.LayerRecorder()
    rec.measure(model)
    rec.measure(model)
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert rec.memory_bytes() <= 0.02 * model_bytes, (rec.memory_bytes(), model_bytes)


def test_log_layers_writes_files_records_and_an_event_that_read_back(tmp_path):
    run_dir = str(tmp_path / "run")
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        opt.zero_grad()
        model(torch.randn(16, 784)).pow(2).mean().backward()
        layers.log_layers(run_dir, step, model)
        opt.step()
    from tensorboard_plugin_dvi import summary

    summary.close(run_dir)
    store = storage.RunStore(run_dir)
    records, problems = layers.disk_records(store)
    assert sorted(records) == [0, 1, 2] and problems == []
    arrays = layers.load_step(store, records[2])
    assert arrays["names"].tolist() == ["0", "2"] and (arrays["rel_change"] > 0).all()
    assert (arrays["grad_norm"] > 0).all()
    events = [e for name in os.listdir(run_dir) if name.startswith("events")
              for e in event_file_loader.EventFileLoader(os.path.join(run_dir, name)).Load() if e.HasField("summary")]
    values = [v for e in events for v in e.summary.value]
    assert [v.tag for v in values] == [layers.TAG] * 3
    assert values[0].metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME
    from tensorboard.util import tensor_util

    record = json.loads(tensor_util.make_ndarray(values[2].tensor).reshape(-1)[0])
    assert record == records[2] and layers.parse_record(json.dumps(record)) == record


def test_a_summary_writer_target_and_a_relogged_step(tmp_path):
    writer = SummaryWriter(str(tmp_path / "w"))
    model = mlp()
    first = layers.log_layers(writer, 5, model)
    with torch.no_grad():
        model[0].weight.add_(0.1)
    second = layers.log_layers(writer, 5, model)
    writer.close()
    folder = os.path.join(storage.asset_dir(str(tmp_path / "w")), layers.FOLDER)
    files = sorted(n for n in os.listdir(folder) if n.endswith(".npz"))
    assert files == [second["file"]["name"]] and first["file"]["name"] != second["file"]["name"]


def test_damaged_or_planted_files_are_refused(tmp_path):
    run_dir = str(tmp_path / "run")
    record = layers.log_layers(run_dir, 0, mlp())
    store = storage.RunStore(run_dir)
    path = os.path.join(storage.asset_dir(run_dir), layers.FOLDER, record["file"]["name"])
    with open(path, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(storage.StepError, match="hash mismatch"):
        layers.load_step(store, record)
    np.savez(path, **{k: np.array([object()] * 2, dtype=object) for k in layers.ARRAYS})  # a pickle payload
    planted = {**record, "file": {**record["file"], "sha256": storage.sha256_file(path)}}
    with pytest.raises(storage.StepError, match="not numbers|cannot read"):
        layers.load_step(store, planted)
    for bad in (b"{", json.dumps({**record, "file": {**record["file"], "name": "../x.npz"}}).encode(),
                json.dumps({"version": 1, "step": 0}).encode()):
        with pytest.raises(storage.StepError):
            layers.parse_record(bad)


def test_bad_arguments_are_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match="'model' parameter of log_layers"):
        layers.log_layers(str(tmp_path), 0, "not a model")
    with pytest.raises(ValueError, match="no parameters"):
        layers.log_layers(str(tmp_path), 0, torch.nn.ReLU())
    with pytest.raises((TypeError, ValueError)):
        layers.log_layers(str(tmp_path), -1, mlp())
    assert not os.path.exists(os.path.join(storage.asset_dir(str(tmp_path)), layers.FOLDER))
