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
    assert kind == ("graph" if name == "custom" else "spec")


def test_untraceable_head_gets_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="head=model.fc"):
        dvi.summary.snapshot(str(tmp_path), 0, torch.randn(10, 6), torch.zeros(10, dtype=torch.long), Opaque())


@pytest.mark.parametrize("head", [nn.Sequential(nn.Linear(4, 3), nn.ReLU()), ScaledHead()], ids=["spec", "graph"])
def test_head_file_is_a_plain_npz_without_pickle(tmp_path, head):
    data, kind = heads.serialize_head(head, torch.randn(2, head[0].in_features if kind_is_spec(head) else 12))
    path = tmp_path / "h.head.npz"
    path.write_bytes(data)
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object (pickled) member
        assert all(npz[k].dtype.kind in "biuf" for k in npz.files)
        meta = json.loads(npz["__meta__"].tobytes())
    assert meta["kind"] == kind


def kind_is_spec(head: nn.Module) -> bool:
    return isinstance(head, nn.Sequential)


def _graph_file(tmp_path, edit) -> str:
    """A saved ScaledHead whose JSON graph was changed by ``edit(meta)`` (a stranger's crafted file)."""
    data, _ = heads.serialize_head(ScaledHead(), torch.randn(4, 12))
    path = tmp_path / "crafted.head.npz"
    path.write_bytes(data)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes())
    edit(meta)
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("op", ["builtins.eval", "os.system", "aten.save.default", "aten.full.default",
                                "torch.load", "aten.tanh.nonexistent", "operator.call"])
def test_crafted_graph_operators_are_refused(tmp_path, op):
    def edit(meta):
        meta["nodes"][0]["op"] = op

    with pytest.raises(heads.HeadFormatError, match="not allowed|does not exist"):
        heads.load_head(_graph_file(tmp_path, edit), "graph")


def test_crafted_graph_forward_reference_is_refused(tmp_path):
    def edit(meta):
        meta["nodes"][0]["args"] = [{"node": meta["nodes"][-2]["name"]}]

    with pytest.raises(heads.HeadFormatError, match="before defining it"):
        heads.load_head(_graph_file(tmp_path, edit), "graph")


def test_graph_head_that_blows_up_memory_is_stopped(tmp_path):
    def edit(meta):  # expand the input to 100M elements (a view: cheap until the next op)
        first = meta["nodes"][0]
        meta["nodes"].insert(0, {"name": "huge", "op": "aten.expand.default",
                                 "args": [{"node": first["args"][0]["node"]}, [1 << 23, 12]], "kwargs": {"kw": {}}})
        first["args"][0] = {"node": "huge"}

    head = heads.load_head(_graph_file(tmp_path, edit), "graph")
    with pytest.raises(heads.HeadFormatError, match="elements"):
        head(torch.randn(1, 12))


@pytest.mark.parametrize("name,kind", [("step_00000000-aaaa0000.head.pt", "spec"),
                                       ("step_00000000-aaaa0000.head.pt2", "export")])
def test_heads_of_the_pickle_based_formats_are_refused(tmp_path, name, kind):
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04 anything at all")
    with pytest.raises(heads.HeadFormatError, match="log the step again"):
        heads.load_head(str(path), kind)


def test_unknown_layer_in_spec_is_rejected():
    with pytest.raises(ValueError, match="Unknown layer type 'Evil'"):
        heads.build_from_spec([{"type": "Evil", "args": {}}])
