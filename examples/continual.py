"""Demo: continual learning that forgets. The demo's CNN learns digits 0-4, then only 5-9, so 0-4 collapse.

    python examples/continual.py --logdir demo_logs
    tensorboard --logdir demo_logs      # the DVI tab's alarms name the forgotten digits

Every ``--every`` training batches (the step is the number of batches so far) the run logs loss and accuracy
scalars, one ``dvi.summary.snapshot`` of all 10,000 samples (8k train, 2k test; labels 0-9 throughout, so the
forgotten digits stay on the map) and the per-layer weight statistics (``dvi.layers.log_layers``, called after
``backward()`` so gradient norms are recorded too). The model logged at step ``s`` has made ``s`` updates. The
phase switch (after two epochs of 0-4) is not logged for DVI: the alarms must find it from the logits and features
alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_mnist import DATA, SmallCNN  # noqa: E402

import tensorboard_plugin_dvi as dvi  # noqa: E402
from tensorboard_plugin_dvi import layers  # noqa: E402

BATCH = 128
N_TRAIN = 8000
"""The first 8,000 bundled digits train, the last 2,000 are the test split."""


def load_digits() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """All 10,000 bundled digits as [N, 1, 28, 28] floats in [0, 1], their labels and the is-train mask."""
    with np.load(DATA) as data:
        images = torch.from_numpy(data["images"]).float().div_(255.0).unsqueeze(1)
        labels = data["labels"].astype(np.int64)
    return images, labels, np.arange(len(labels)) < N_TRAIN


@torch.no_grad()
def embed(model: SmallCNN, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features of every sample, in eval mode (the training mode is restored)."""
    was = model.training
    model.eval()
    try:
        return torch.cat([model.features(chunk) for chunk in torch.split(images, 1000)])
    finally:
        model.train(was)


def log_step(writer: SummaryWriter, step: int, model: SmallCNN, images: torch.Tensor, labels: np.ndarray,
             is_train: np.ndarray, loss: float) -> dict[str, float]:
    """Log one step: scalars, the DVI snapshot and the layer statistics (gradients of the current batch).

    Returns the test accuracies logged (overall, digits 0-4, digits 5-9).
    """
    layers.log_layers(writer, step, model)
    feats = embed(model, images)
    with torch.no_grad():
        pred = model.fc(feats).argmax(1).numpy()
    test = ~is_train
    acc = {"test": float((pred[test] == labels[test]).mean()),
           "test_0-4": float((pred[test & (labels < 5)] == labels[test & (labels < 5)]).mean()),
           "test_5-9": float((pred[test & (labels >= 5)] == labels[test & (labels >= 5)]).mean())}
    writer.add_scalar("loss/train", loss, step)
    for name, value in acc.items():
        writer.add_scalar(f"accuracy/{name}", value, step)
    dvi.summary.snapshot(writer, step=step, features=feats, labels=labels, head=model.fc, split=is_train,
                         inputs=images, class_names=[str(d) for d in range(10)])
    return acc


def switch_step(epochs: int = 2) -> int:
    """The number of training batches on digits 0-4 (the step after which only 5-9 are trained)."""
    _, labels, is_train = load_digits()
    return epochs * -(-int((labels[is_train] < 5).sum()) // BATCH)


def train_continual(logdir: str, name: str = "continual", epochs: int = 2, every: int = 8,
                    dense: tuple[int, int] | None = None, seed: int = 0) -> dict[str, Any]:
    """Train on digits 0-4 for ``epochs`` epochs, then on 5-9 for as many, logging every ``every`` batches (and
    every batch for steps within ``dense``, a closer look around the switch); returns the facts a benchmark checks:
    the logged steps, the number of batches trained on 0-4 (``switch_step``), the first logged step after it, and
    the test accuracies at every logged step."""
    torch.manual_seed(seed)
    images, labels, is_train = load_digits()
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    writer = SummaryWriter(os.path.join(logdir, name))
    phases = [np.flatnonzero(labels[:N_TRAIN] < 5), np.flatnonzero(labels[:N_TRAIN] >= 5)]
    step, logged, accuracy, switch = 0, [], [], None
    gen = torch.Generator().manual_seed(seed)
    for phase, pool in enumerate(phases):
        switch = step if phase == 1 else switch
        x, y = images[pool], torch.from_numpy(labels[pool])
        for epoch in range(epochs):
            started = time.time()
            model.train()
            for batch in torch.split(torch.randperm(len(pool), generator=gen), BATCH):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
                step += 1
                if step % every == 0 or (dense and dense[0] <= step <= dense[1]):  # this batch's gradients are there
                    accuracy.append(log_step(writer, step, model, images, labels, is_train, loss.item()))
                    logged.append(step)
            print(f"[{name}] digits {'0-4' if phase == 0 else '5-9'}, epoch {epoch + 1}/{epochs}: step {step}, test "
                  f"acc 0-4 {accuracy[-1]['test_0-4']:.3f}, 5-9 {accuracy[-1]['test_5-9']:.3f} "
                  f"({time.time() - started:.1f} s)", flush=True)
    writer.close()
    first_after = next(s for s in logged if s > switch)
    return {"steps": logged, "switch_step": switch, "first_logged_after_switch": first_after, "accuracy": accuracy}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="demo_logs")
    parser.add_argument("--name", default="continual")
    parser.add_argument("--epochs", type=int, default=2, help="epochs on each half of the digits")
    parser.add_argument("--every", type=int, default=8, help="log every this many training batches")
    parser.add_argument("--dense", default="", help="FIRST:LAST: also log every batch from step FIRST to LAST")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    dense = tuple(int(v) for v in args.dense.split(":")) if args.dense else None
    facts = train_continual(args.logdir, args.name, args.epochs, args.every, dense)
    print(f"[{args.name}] switched to digits 5-9 at step {facts['switch_step']}; first logged step after it: "
          f"{facts['first_logged_after_switch']}")


if __name__ == "__main__":
    main()
