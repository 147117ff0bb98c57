"""Saved heads reproduce the original logits in a fresh process that has none of the defining code."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import heads, storage


class ScaledHead(nn.Module):
    """A custom head (not a Sequential): saved through torch.export."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(12, 5)
        self.temperature = nn.Parameter(torch.tensor(0.7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.tanh(x)) / self.temperature


class Opaque(nn.Module):
    """A head torch.export cannot trace (data-dependent Python control flow on a tensor value)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum().item() > 0:
            return x[:, :3]
        return -x[:, :3]


HEADS = {
    "linear": lambda: nn.Linear(12, 5),
    "mlp": lambda: nn.Sequential(nn.Linear(12, 16), nn.BatchNorm1d(16), nn.GELU(), nn.Dropout(0.3),
                                 nn.Linear(16, 8), nn.LayerNorm(8), nn.LeakyReLU(0.2), nn.Linear(8, 5)),
    "custom": ScaledHead,
}

_LOADER = """
import json, sys, numpy as np, torch
from tensorboard_plugin_dvi import storage
store = storage.RunStore(sys.argv[1])
records, problems = store.read_run()
head = store.load_head(records[0])
x = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    print(json.dumps(head(x).tolist()))
"""


@pytest.mark.parametrize("name", list(HEADS))
def test_saved_head_matches_in_fresh_process(tmp_path, name):
    torch.manual_seed(0)
    head = HEADS[name]()
    if name == "mlp":  # give BatchNorm real running statistics
        head.train()
        head(torch.randn(64, 12) * 3 + 1)
    head.train()  # snapshot must evaluate and save in eval mode, then restore the user's mode
    feats = torch.randn(40, 12)
    dvi.summary.snapshot(str(tmp_path), 0, feats, torch.zeros(40, dtype=torch.long), head)
    assert head.training, "snapshot must restore the head's training mode"
    head.eval()
    with torch.no_grad():
        expected = head(feats).numpy()
    np.save(tmp_path / "x.npy", feats.numpy())
    out = subprocess.run([sys.executable, "-c", _LOADER, str(tmp_path), str(tmp_path / "x.npy")],
                         capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    got = np.array(json.loads(out.stdout))
    diff = float(np.abs(got - expected).max())
    assert diff < 1e-5, f"reloaded {name} head differs from the original by {diff}"
    kind = storage.RunStore(str(tmp_path)).read_run()[0][0]["files"]["head"]["kind"]
    assert kind == ("export" if name == "custom" else "spec")


def test_untraceable_head_gets_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="head=model.fc"):
        dvi.summary.snapshot(str(tmp_path), 0, torch.randn(10, 6), torch.zeros(10, dtype=torch.long), Opaque())


def test_spec_file_loads_with_weights_only(tmp_path):
    data, kind = heads.serialize_head(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), torch.randn(2, 4))
    path = tmp_path / "h.pt"
    path.write_bytes(data)
    saved = torch.load(path, weights_only=True)  # would raise if anything but plain data were pickled
    assert kind == "spec" and json.loads(saved["spec"])[1]["type"] == "ReLU"


def test_unknown_layer_in_spec_is_rejected():
    with pytest.raises(ValueError, match="Unknown layer type 'Evil'"):
        heads.build_from_spec([{"type": "Evil", "args": {}}])
