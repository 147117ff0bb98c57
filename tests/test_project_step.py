"""``method.project_step``, the plugin's projection of one logged step, against the public API it wraps."""

from __future__ import annotations

import numpy as np
import torch

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import cache, method, storage


def _drifting_run(run_dir: str, n: int = 300, d: int = 16, c: int = 4) -> None:
    """Two steps of one head whose features barely change (a small drift): most neighbourhoods are kept."""
    gen = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(c, d, generator=gen)
    labels = torch.randint(0, c, (n,), generator=gen)
    feats = centres[labels] + torch.randn(n, d, generator=gen)
    head = torch.nn.Linear(d, c)
    with torch.no_grad():
        head.weight.copy_(centres)
        head.bias.zero_()
    split = np.arange(n) % 4 != 0  # a quarter held out
    for step in range(2):
        drift = 0.1 * step * torch.randn(n, d, generator=gen)
        dvi.summary.snapshot(run_dir, step, feats + drift, labels, head, split=split)
    dvi.summary.close(run_dir)


def test_held_out_samples_continue_from_their_previous_place(tmp_path):
    """Held-out samples are placed as ``transform(prev=...)`` places them, continuing from step t-1's positions,
    so where the model did not change they stay closer to where they were than a fresh placement puts them."""
    _drifting_run(str(tmp_path / "run"))
    store = storage.RunStore(str(tmp_path / "run"))
    records, _ = store.read_run()
    results = cache.ResultCache(store, cache.Settings())
    first = method.project_step(store, results, records[0], None)
    second = method.project_step(store, results, records[1], records[0])
    data = store.load_step(records[1])
    test = ~data.split.astype(bool)
    feats = data.features.astype(np.float32)[test]
    feats_before = store.load_step(records[0]).features.astype(np.float32)[test]
    model, prev = method.load_model(second.model_path), method.load_model(first.model_path)
    continued = model.transform(feats, prev=prev, prev_features=feats_before, prev_embedding=first.xy[test])
    fresh = model.transform(feats)
    np.testing.assert_allclose(second.xy[test], continued, atol=1e-5)
    moved = np.linalg.norm(second.xy[test] - first.xy[test], axis=1).mean()
    moved_fresh = np.linalg.norm(fresh - first.xy[test], axis=1).mean()
    assert moved < moved_fresh, (moved, moved_fresh)
