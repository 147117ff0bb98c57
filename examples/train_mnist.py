"""Demo: train a small CNN on 10k real MNIST digits, twice (clean and 20 % noisy labels), logging DVI snapshots.

    python examples/train_mnist.py --logdir demo_logs
    tensorboard --logdir demo_logs      # then open the DVI tab

Each epoch logs loss and accuracy scalars and one ``dvi.summary.snapshot`` of all 10,000 samples (8k train, 2k test)
with their 256-d penultimate features, the classifier head, the images (for thumbnails) and the convolutional
encoder (for input-space boundary samples). The noisy run records which training labels were flipped as the flag
set ``flipped``, so the tab can filter them.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import storage

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mnist10k.npz")
N_TRAIN = 8000


class SmallCNN(nn.Module):
    """Two conv blocks and a 256-d representation, then a linear head (``model.fc``)."""

    def __init__(self, dim: int = 256, n_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, dim), nn.ReLU(),
        )
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def load_data(noise: float, seed: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Images as [N,1,28,28] floats in [0,1], the (possibly noisy) labels, the is-train mask and the flipped ids."""
    data = np.load(DATA)
    images = torch.from_numpy(data["images"]).float().div_(255.0).unsqueeze(1)
    labels = data["labels"].astype(np.int64)
    is_train = np.arange(len(labels)) < N_TRAIN
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(N_TRAIN, size=int(noise * N_TRAIN), replace=False))
    labels = labels.copy()
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, size=flipped.size)) % 10
    return images, labels, is_train, flipped


@torch.no_grad()
def embed(model: SmallCNN, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features of every sample, in eval mode."""
    model.eval()
    return torch.cat([model.features(chunk) for chunk in torch.split(images, 1000)])


def train_run(logdir: str, name: str, noise: float, epochs: int, seed: int = 0) -> None:
    """Train one run and log scalars plus a DVI snapshot every epoch."""
    torch.manual_seed(seed)
    images, labels, is_train, flipped = load_data(noise, seed)
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    x_train, y_train = images[:N_TRAIN], torch.from_numpy(labels[:N_TRAIN])
    writer = SummaryWriter(os.path.join(logdir, name))
    flags = {"flipped": flipped} if flipped.size else None
    for epoch in range(epochs):
        started = time.time()
        model.train()
        order = torch.randperm(N_TRAIN)
        total = 0.0
        for batch in torch.split(order, 128):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        feats = embed(model, images)
        pred = model.fc(feats).argmax(1).numpy()
        acc_train = float((pred[is_train] == labels[is_train]).mean())
        acc_test = float((pred[~is_train] == labels[~is_train]).mean())
        writer.add_scalar("loss/train", total / N_TRAIN, epoch)
        writer.add_scalar("accuracy/train", acc_train, epoch)
        writer.add_scalar("accuracy/test", acc_test, epoch)
        dvi.summary.snapshot(writer, step=epoch, features=feats, labels=labels, head=model.fc, split=is_train,
                             inputs=images, encoder=model.features, class_names=[str(d) for d in range(10)],
                             flags=flags)
        print(f"[{name}] epoch {epoch + 1}/{epochs}: loss {total / N_TRAIN:.3f}, train acc {acc_train:.3f}, "
              f"test acc {acc_test:.3f} ({time.time() - started:.1f} s)", flush=True)
    writer.close()


def already_logged(logdir: str, name: str, epochs: int) -> bool:
    """True when the run's DVI files hold every epoch (so ``--skip-existing`` can skip training)."""
    records, _ = storage.RunStore(os.path.join(logdir, name)).read_run()
    return len(records) >= epochs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="demo_logs")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--noise", type=float, default=0.2, help="fraction of training labels flipped in 'noisy'")
    parser.add_argument("--runs", default="clean,noisy", help="comma-separated subset of clean,noisy")
    parser.add_argument("--skip-existing", action="store_true", help="skip runs whose logs already hold every epoch")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for name in args.runs.split(","):
        if args.skip_existing and already_logged(args.logdir, name, args.epochs):
            print(f"[{name}] already logged in {args.logdir}; skipping training")
            continue
        train_run(args.logdir, name, args.noise if name == "noisy" else 0.0, args.epochs)


if __name__ == "__main__":
    main()
