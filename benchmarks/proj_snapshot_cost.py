"""Cost of input-space boundary samples when logging: ``snapshot(..., encoder=)`` vs one training epoch.

Trains the demo CNN (``examples/train_mnist.py``'s ``SmallCNN``, Adam, batch 128) on the bundled MNIST 8k
training digits for a few epochs (timed: the median of the epochs after the first, which has the first-call
warm-up), then times ``dvi.summary.snapshot`` of all 10k samples with and without ``encoder=``/``inputs=`` on the
same model, on one torch thread, as consecutive steps of one run. The ratio (snapshot with encoder) / (one epoch)
is what a user pays per logged epoch: the median over the steps after the first; the first step also stores the
run's thumbnails (once per run) and is reported on its own.

    .venv/bin/python benchmarks/proj_snapshot_cost.py      # prints JSON; bench_projection.py embeds it
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))


def _epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    t0 = time.perf_counter()
    model.train()
    for batch in torch.split(torch.randperm(len(x)), 128):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
    return time.perf_counter() - t0


def measure(repeats: int = 6, epochs: int = 3) -> dict[str, Any]:
    """Seconds of one training epoch and of one snapshot with and without input-space boundary samples."""
    from train_mnist import N_TRAIN, SmallCNN, embed, load_data

    import tensorboard_plugin_dvi as dvi

    torch.manual_seed(0)
    images, labels, is_train, _ = load_data(0.0, 0)
    model = SmallCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = images[:N_TRAIN], torch.from_numpy(labels[:N_TRAIN])
    _epoch(model, opt, x, y)
    epochs_s = [_epoch(model, opt, x, y) for _ in range(epochs)]
    epoch_s = float(np.median(epochs_s))
    feats = embed(model, images)
    root = tempfile.mkdtemp(prefix="dvi-snap-")
    times: dict[str, list[float]] = {"plain": [], "encoder": []}
    try:
        for r in range(repeats):
            for kind in times:
                extra = {"inputs": images, "encoder": model.features} if kind == "encoder" else {}
                t0 = time.perf_counter()
                dvi.summary.snapshot(os.path.join(root, kind), step=r, features=feats, labels=labels, head=model.fc,
                                     split=is_train, **extra)
                times[kind].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    enc_s, plain_s = float(np.median(times["encoder"][1:])), float(np.median(times["plain"][1:]))
    return {"epoch_s": epoch_s, "epochs_s": epochs_s, "snapshot_encoder_all_s": times["encoder"],
            "snapshot_s": plain_s, "snapshot_encoder_s": enc_s,
            "snapshot_encoder_first_s": times["encoder"][0], "ratio_first_to_epoch": times["encoder"][0] / epoch_s,
            "ratio_encoder_to_epoch": enc_s / epoch_s, "n_train": N_TRAIN, "n_samples": len(labels),
            "torch_threads": torch.get_num_threads(), "load_average": list(os.getloadavg())}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps(measure(), indent=1))
