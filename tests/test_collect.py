"""``collect``: the eval pass over a real DataLoader of MNIST digits that feeds ``snapshot`` in one line."""

from __future__ import annotations

import io
import os
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import storage
from tensorboard_plugin_dvi.collect import collect, thumbnails

N = 300


class Net(nn.Module):
    """A small CNN with dropout and batch norm (so eval mode changes its output) and a linear head ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 13 * 13, 32), nn.Dropout(0.5), nn.ReLU())
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


class DictDigits(Dataset):
    """A dataset that yields dicts (as many real datasets do), with its own sample ids."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, object]:
        return {"pixels": self.images[i], "target": self.labels[i], "uid": 1000 + i}


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Real MNIST digits: float images [N,1,28,28] in [0, 1], labels, and the original uint8 pixels."""
    with np.load("examples/data/mnist10k.npz") as data:
        raw = data["images"][:N]
        labels = torch.from_numpy(data["labels"][:N].astype(np.int64))
    return torch.from_numpy(raw).float().div(255.0).unsqueeze(1), labels, raw


def loader_of(images: torch.Tensor, labels: torch.Tensor, batch_size: int = 64, **kwargs) -> DataLoader:
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, **kwargs)


def test_hooked_layer_equals_a_manual_forward(digits):
    images, labels, _ = digits
    model = Net().eval()
    with torch.no_grad():
        penultimate = model.body(images).numpy()
        pre_relu = model.body[:5](images).numpy()
    out = collect(model, loader_of(images, labels), layer="fc")  # 300 = 4 full batches + one of 44
    np.testing.assert_allclose(out["features"], penultimate, rtol=1e-5, atol=1e-6)
    assert out["features"].dtype == np.float32 and out["features"].shape == (N, 32)
    dotted = collect(model, loader_of(images, labels), layer="body.4", capture="output", inputs=None)
    np.testing.assert_allclose(dotted["features"], pre_relu, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["labels"], labels.numpy())
    assert set(out) == {"features", "labels", "inputs", "sample_ids"} and set(dotted) == {"features", "labels",
                                                                                          "sample_ids"}


def test_conv_output_is_flattened(digits):
    images, labels, _ = digits
    model = Net().eval()
    out = collect(model, loader_of(images, labels), layer="body.0", capture="output", inputs=None)
    with torch.no_grad():
        expected = model.body[0](images).flatten(1).numpy()
    np.testing.assert_allclose(out["features"], expected, rtol=1e-5, atol=1e-6)


def test_thumbnails_and_ids_are_right(digits):
    images, labels, raw = digits
    out = collect(Net(), loader_of(images, labels, batch_size=37), layer="fc")
    assert out["inputs"].dtype == np.uint8 and out["inputs"].shape == (N, 28, 28, 1)
    np.testing.assert_array_equal(out["inputs"][..., 0], raw)  # [0, 1] floats back to the original pixels
    np.testing.assert_array_equal(out["sample_ids"], np.arange(N))


def test_large_images_are_averaged_down_and_normalised_ones_stretched():
    gen = torch.Generator().manual_seed(1)
    colour = torch.rand(5, 3, 96, 128, generator=gen)
    small = thumbnails(colour, size=64)
    assert small.shape == (5, 48, 64, 3) and small.dtype == np.uint8
    expected = nn.functional.avg_pool2d(colour * 255, 2).permute(0, 2, 3, 1).round()
    assert np.abs(small.astype(np.float32) - expected.numpy()).max() <= 1.0
    normalised = (torch.rand(6, 1, 28, 28, generator=gen) - 0.13) / 0.31
    whole = thumbnails(normalised)
    assert (whole.reshape(6, -1).min(1) == 0).all() and (whole.reshape(6, -1).max(1) == 255).all()
    np.testing.assert_array_equal(np.concatenate([thumbnails(normalised[i:i + 1]) for i in range(6)]), whole)
    channels_last = thumbnails((torch.rand(2, 20, 20, 3, generator=gen) * 255).to(torch.uint8))
    assert channels_last.shape == (2, 20, 20, 3)


def test_model_modes_are_restored_and_the_pass_is_in_eval_mode(digits):
    images, labels, _ = digits
    model = Net().train()
    model.body[1].eval()  # a frozen batch norm inside a training model: mixed modes must survive
    modes = {name: m.training for name, m in model.named_modules()}
    stats = model.body[1].running_mean.clone()
    first = collect(model, loader_of(images, labels), layer="fc", inputs=None)
    second = collect(model, loader_of(images, labels), layer="fc", inputs=None)
    np.testing.assert_array_equal(first["features"], second["features"])  # dropout off
    assert {name: m.training for name, m in model.named_modules()} == modes
    model.body[1].train()
    collect(model, loader_of(images, labels), layer="fc", inputs=None)
    torch.testing.assert_close(model.body[1].running_mean, stats)  # batch norm ran in eval mode
    assert model.body[1].training and not model.fc._forward_hooks  # mode restored, hook removed
    assert all(p.grad is None for p in model.parameters())


def test_mode_restored_when_the_forward_fails(digits):
    images, labels, _ = digits
    model = Net().train()
    bad = DataLoader(TensorDataset(images[:, :, :20], labels), batch_size=50)  # wrong image size
    with pytest.raises(RuntimeError):
        collect(model, bad, layer="fc")
    assert all(m.training for m in model.modules()) and not model.fc._forward_hooks


def test_dict_dataset_through_an_adapter(digits):
    images, labels, raw = digits
    loader = DataLoader(DictDigits(images, labels), batch_size=50)
    with pytest.raises(TypeError, match="adapter"):
        collect(Net(), loader, layer="fc")
    out = collect(Net(), loader, layer="fc", adapter=lambda b: (b["pixels"], b["target"], b["uid"]))
    np.testing.assert_array_equal(out["sample_ids"], 1000 + np.arange(N))
    np.testing.assert_array_equal(out["labels"], labels.numpy())
    np.testing.assert_array_equal(out["inputs"][..., 0], raw)


def test_shuffled_loader_needs_ids(digits):
    images, labels, _ = digits
    with pytest.raises(ValueError, match="shuffle=False"):
        collect(Net(), loader_of(images, labels, shuffle=True), layer="fc")
    with pytest.raises(ValueError, match="shuffle=False"):  # an adapter without ids: refused after the pass
        collect(Net(), loader_of(images, labels, shuffle=True), layer="fc", adapter=lambda b: (b[0], b[1]))
    ids = torch.arange(N)
    shuffled = DataLoader(TensorDataset(images, labels, ids), batch_size=64, shuffle=True)
    out = collect(Net().eval(), shuffled, layer="fc", adapter=lambda b: tuple(b))
    order = np.argsort(out["sample_ids"])
    np.testing.assert_array_equal(out["sample_ids"][order], np.arange(N))
    np.testing.assert_array_equal(out["labels"][order], labels.numpy())


def test_split_from_a_mapping_of_loaders(digits):
    images, labels, _ = digits
    out = collect(Net(), {"test": loader_of(images[200:], labels[200:]), "train": loader_of(images[:200],
                                                                                           labels[:200])},
                  layer="fc", inputs="raw")
    np.testing.assert_array_equal(out["split"], np.arange(N) < 200)
    np.testing.assert_array_equal(out["sample_ids"], np.arange(N))
    torch.testing.assert_close(out["inputs"], images)  # raw inputs, for snapshot's encoder=
    one = collect(Net(), loader_of(images, labels), layer="fc", inputs=None, split="test")
    assert not one["split"].any() and one["split"].shape == (N,)


def test_clear_errors(digits):
    images, labels, _ = digits
    with pytest.raises(ValueError, match="body.4"):
        collect(Net(), loader_of(images, labels), layer="body.44")
    with pytest.raises(ValueError, match="thumbnail_size"):
        collect(Net(), loader_of(images, labels), layer="fc", thumbnail_size=0)
    with pytest.raises(ValueError, match="'train' and/or 'test'"):
        collect(Net(), {"val": loader_of(images, labels)}, layer="fc")

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Linear(784, 784)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.block(self.block(x.flatten(1)))

    with pytest.raises(RuntimeError, match="2 times"):
        collect(Twice(), loader_of(images, labels), layer="block")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, and keeps what is written to it."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_for_long_passes_only(digits, capsys, monkeypatch):
    images, labels, _ = digits
    collect(Net(), loader_of(images, labels), layer="fc", progress=True)
    assert "dvi.collect" in capsys.readouterr().err  # asked for: always, even into a captured stream

    def slow(batch):  # 5 batches of 0.5 s: a pass longer than the bar's 2 s delay
        time.sleep(0.5)
        return batch

    long_pass = DataLoader(TensorDataset(images, labels), batch_size=60)
    collect(Net(), long_pass, layer="fc", adapter=slow)
    collect(Net(), long_pass, layer="fc", adapter=slow, progress=False)
    assert capsys.readouterr().err == ""  # not a terminal (a log file): no bar by default
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    collect(Net(), loader_of(images, labels), layer="fc")  # short: the bar waits 2 s, so none
    assert terminal.getvalue() == ""
    collect(Net(), long_pass, layer="fc", adapter=slow)
    assert "dvi.collect" in terminal.getvalue()


def test_snapshot_takes_the_result_in_one_line(digits, tmp_path):
    images, labels, raw = digits
    model = Net()
    loaders = {"train": loader_of(images[:240], labels[:240]), "test": loader_of(images[240:], labels[240:])}
    record = dvi.summary.snapshot(str(tmp_path), step=0, head=model.fc, **collect(model, loaders, layer="fc"))
    dvi.summary.close(str(tmp_path))
    assert record["n"] == N and record["d"] == 32 and record["n_train"] == 240 and record["has_inputs"]
    records, _ = storage.RunStore(str(tmp_path)).read_run()
    assert list(records) == [0]
    ids, thumbs = storage.RunStore(str(tmp_path)).load_inputs()
    np.testing.assert_array_equal(thumbs[np.argsort(ids)].reshape(raw.shape), raw)


def test_the_demo_logs_every_epoch_through_collect(tmp_path):
    """examples/train_mnist.py (what `make demo` trains) on its smallest slice: a step per epoch, images, flags."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
    import train_mnist

    train_mnist.main(["--logdir", str(tmp_path), "--samples", "1000", "--epochs", "2", "--runs", "noisy"])
    records, problems = storage.RunStore(str(tmp_path / "noisy")).read_run()
    assert not problems and sorted(records) == [0, 1]
    assert records[1]["n"] == 1000 and records[1]["n_train"] == 800 and records[1]["has_inputs"]
    assert records[1]["flags"] == ["flipped"] and records[1]["boundary"] == "input"
    assert train_mnist.already_logged(str(tmp_path), "noisy", 2)
