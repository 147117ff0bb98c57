"""`snapshot(..., model=model)` also records per-layer weight statistics, which the catalog reads from the events."""

from __future__ import annotations

import json

import numpy as np
import torch
from helpers import WsgiApp

import tensorboard_plugin_dvi as dvi


def test_snapshot_with_model_records_layer_statistics(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = torch.randn(60, 8)
    labels = torch.randint(0, 3, (60,))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), labels).backward()
        opt.step()
        with torch.no_grad():
            feats = model[1](model[0](x))
        dvi.summary.snapshot(str(tmp_path / "run"), step, feats, labels, model[2], model=model,
                             split=np.arange(60) < 48)
    dvi.summary.close(str(tmp_path / "run"))
    app = WsgiApp(str(tmp_path))
    try:
        index = app.index("run")
        assert sorted(index.layer_records) == [0, 1, 2], "layer records are read from the event files"
        body = json.loads(app.get("layers?run=run").get_data())
        assert body["steps"] == [0, 1, 2] and len(body["layers"]) >= 2
        changes = np.array(body["rel_change"], dtype=float)
        assert np.isfinite(changes[1:]).all() and (changes[1:] > 0).all(), "weights changed between steps"
    finally:
        app.close()
