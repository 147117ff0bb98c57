"""``DVICallback`` in a real Lightning ``Trainer.fit`` on the bundled MNIST digits, listed by the real plugin."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import MNIST_PATH, WsgiApp
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tensorboard_plugin_dvi import storage
from tensorboard_plugin_dvi.lightning import DVICallback

N, N_TRAIN = 600, 500


class LitDigits(LightningModule):
    """A small MLP classifier whose ``fc`` maps 32-d penultimate features to 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU())
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _index: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("loss/train", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=3e-3)


@pytest.fixture(scope="module")
def digits() -> TensorDataset:
    with np.load(MNIST_PATH) as data:
        images = torch.from_numpy(data["images"][:N]).float().div_(255.0).unsqueeze(1)
        labels = torch.from_numpy(data["labels"][:N].astype(np.int64))
    return TensorDataset(images, labels)


def fit(logdir: str, digits: TensorDataset, callbacks: list[DVICallback], epochs: int = 2) -> LitDigits:
    torch.manual_seed(0)
    model = LitDigits()
    trainer = Trainer(max_epochs=epochs, accelerator="cpu", devices=1, callbacks=callbacks,
                      logger=TensorBoardLogger(logdir, name="digits", version=0), enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=5)
    train = DataLoader(torch.utils.data.Subset(digits, range(N_TRAIN)), batch_size=50, shuffle=True)
    trainer.fit(model, train)
    return model


def test_two_epoch_fit_logs_two_steps_the_plugin_lists(tmp_path, digits):
    mapped = {"train": DataLoader(torch.utils.data.Subset(digits, range(N_TRAIN)), batch_size=128),
              "test": DataLoader(torch.utils.data.Subset(digits, range(N_TRAIN, N)), batch_size=128)}
    every = DVICallback(mapped, layer="fc", class_names=[f"digit {d}" for d in range(10)])
    second = DVICallback(DataLoader(digits, batch_size=128), layer="body.1", capture="output", head="fc",
                         every_n_epochs=2, step="global_step", log_dir=str(tmp_path / "every2"))
    model = fit(str(tmp_path), digits, [every, second])
    assert model.training  # Lightning's mode survives the callback's eval pass
    assert every.logged_steps == [0, 1] and second.logged_steps == [2 * N_TRAIN // 50]

    app = WsgiApp(str(tmp_path))
    try:
        runs = {r["run"]: r for r in json.loads(app.get("runs").get_data())["runs"]}
    finally:
        app.close()
    assert sorted(runs) == ["digits/version_0", "every2"]
    run = runs["digits/version_0"]
    assert run["steps"] == [0, 1] and run["n"] == N and run["dim"] == 32 and run["has_inputs"] is True
    assert run["classes"][0] == "digit 0" and run["broken_steps"] == []
    assert runs["every2"]["steps"] == [20] and runs["every2"]["dim"] == 32
    records, problems = storage.RunStore(str(tmp_path / "digits" / "version_0")).read_run()
    assert not problems and records[1]["n_train"] == N_TRAIN
    assert records[1]["accuracy"]["train"] > records[0]["accuracy"]["train"] - 0.05
    scalars = EventAccumulator(str(tmp_path / "digits" / "version_0"))
    assert "loss/train" in scalars.Reload().Tags()["scalars"], "the logger's scalars share the DVI run"


def test_encoder_by_method_name_makes_input_space_boundaries(tmp_path, digits):
    callback = DVICallback(DataLoader(digits, batch_size=200), layer="fc", encoder="body",
                           log_dir=str(tmp_path / "enc"))
    fit(str(tmp_path), digits, [callback], epochs=1)
    records, _ = storage.RunStore(str(tmp_path / "enc")).read_run()
    assert records[0]["boundary"] == "input" and records[0]["has_inputs"]


def test_bad_arguments_are_refused_at_construction(digits):
    loader = DataLoader(digits, batch_size=100)
    with pytest.raises(ValueError, match="every_n_epochs"):
        DVICallback(loader, layer="fc", every_n_epochs=0)
    with pytest.raises(ValueError, match="head"):
        DVICallback(loader, layer="body.1", capture="output")


def test_importing_the_plugin_does_not_import_lightning():
    code = ("import sys, tensorboard_plugin_dvi, tensorboard_plugin_dvi.loader, tensorboard_plugin_dvi.collect; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
