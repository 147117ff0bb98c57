"""Demo: train a small CNN on real MNIST digits, twice (clean and 20 % noisy labels), logging DVI snapshots.

    python examples/train_mnist.py --logdir demo_logs
    tensorboard --logdir demo_logs --dvi_autoproject all     # then open the DVI tab

Each epoch logs loss and accuracy scalars and one ``dvi.summary.snapshot`` of the samples (by default 5,000 of the
bundled 10,000 digits: 4,000 train, 1,000 test) with their 256-d penultimate features, the classifier head, the
images and the convolutional encoder (for input-space boundary samples). The snapshot is the three-line integration:
``dvi.collect`` runs the eval pass over ordinary DataLoaders with a hook on ``model.fc``. The noisy run records which
training labels were flipped as the flag set ``flipped``, so the tab can filter them.

Sizes are chosen so both runs train in about two minutes on two busy CPU cores and TensorBoard projects every step
a few minutes later; ``--samples 10000 --epochs 12`` gives the fuller (slower) version.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.tensorboard import SummaryWriter

import tensorboard_plugin_dvi as dvi
from tensorboard_plugin_dvi import storage
from tensorboard_plugin_dvi.collect import collect

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "mnist10k.npz")
TRAIN_FRACTION = 0.8  # the first 80 % of the samples train, the rest test
N_TRAIN = 8000  # the training split of all 10,000 digits (what scripts calling load_data(noise, seed) get)


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


def load_data(noise: float, seed: int, samples: int = 10000) -> tuple[torch.Tensor, np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """The first ``samples`` digits as [N,1,28,28] floats in [0,1], their labels (a ``noise`` fraction of the
    training labels flipped), the is-train mask (the first 80 %) and the flipped sample ids."""
    with np.load(DATA) as data:
        images = torch.from_numpy(data["images"][:samples]).float().div_(255.0).unsqueeze(1)
        labels = data["labels"][:samples].astype(np.int64)
    n_train = int(TRAIN_FRACTION * len(labels))
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(n_train, size=int(noise * n_train), replace=False))
    labels[flipped] = (labels[flipped] + rng.integers(1, 10, size=flipped.size)) % 10
    return images, labels, np.arange(len(labels)) < n_train, flipped


def datasets(images: torch.Tensor, labels: np.ndarray, is_train: np.ndarray) -> tuple[TensorDataset, TensorDataset]:
    """Train and test datasets of (image, label) pairs."""
    targets, train = torch.from_numpy(labels), torch.from_numpy(is_train)
    return TensorDataset(images[train], targets[train]), TensorDataset(images[~train], targets[~train])


@torch.no_grad()
def embed(model: SmallCNN, images: torch.Tensor) -> torch.Tensor:
    """Penultimate features of every sample in eval mode, by hand (for scripts that do not use ``collect``)."""
    model.eval()
    return torch.cat([model.features(chunk) for chunk in torch.split(images, 1000)])


def train_epoch(model: SmallCNN, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    """One pass of Adam over the shuffled training loader; the mean training loss."""
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(y), count + len(y)
    return total / count


def train_run(logdir: str, name: str, noise: float, epochs: int, seed: int = 0, samples: int = 10000) -> None:
    """Train one run on the first ``samples`` digits and log scalars plus a DVI snapshot every epoch."""
    torch.manual_seed(seed)
    images, labels, is_train, flipped = load_data(noise, seed, samples)
    train_set, test_set = datasets(images, labels, is_train)
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    train_loader = DataLoader(train_set, batch_size=128, shuffle=True)
    # What DVI maps: every sample in a fixed order, train then test (collect numbers them 0..N-1 in this order).
    mapped = {"train": DataLoader(train_set, batch_size=1000), "test": DataLoader(test_set, batch_size=1000)}
    writer = SummaryWriter(os.path.join(logdir, name))
    flags = {"flipped": flipped} if flipped.size else None
    for epoch in range(epochs):
        started = time.time()
        loss = train_epoch(model, train_loader, optimizer)
        # The integration: one eval pass with a hook on model.fc, then the snapshot (inputs="raw" so the encoder
        # can make DVI's input-space boundary samples from real images; the default keeps small thumbnails).
        record = dvi.summary.snapshot(writer, step=epoch, head=model.fc, encoder=model.features,
                                      **collect(model, mapped, layer="fc", inputs="raw"),
                                      class_names=[str(d) for d in range(10)], flags=flags)
        writer.add_scalar("loss/train", loss, epoch)
        writer.add_scalar("accuracy/train", record["accuracy"]["train"], epoch)
        writer.add_scalar("accuracy/test", record["accuracy"]["test"], epoch)
        print(f"[{name}] epoch {epoch + 1}/{epochs}: loss {loss:.3f}, train acc {record['accuracy']['train']:.3f}, "
              f"test acc {record['accuracy']['test']:.3f} ({time.time() - started:.1f} s)", flush=True)
    writer.close()


def already_logged(logdir: str, name: str, epochs: int) -> bool:
    """True when the run's DVI files hold every epoch (so ``--skip-existing`` can skip training)."""
    records, _ = storage.RunStore(os.path.join(logdir, name)).read_run()
    return len(records) >= epochs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="demo_logs")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--samples", type=int, default=5000, help="how many of the 10,000 bundled digits (80 %% train)")
    parser.add_argument("--noise", type=float, default=0.2, help="fraction of training labels flipped in 'noisy'")
    parser.add_argument("--runs", default="clean,noisy", help="comma-separated subset of clean,noisy")
    parser.add_argument("--skip-existing", action="store_true", help="skip runs whose logs already hold every epoch")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: for a model this small, more threads mostly wait on each "
                             "other, several times slower on a busy machine)")
    args = parser.parse_args(argv)
    if not 1000 <= args.samples <= 10000:  # fewer: a first-epoch model may predict one class, with no boundary
        parser.error("--samples must be between 1000 and 10000 (the bundled digits)")
    torch.set_num_threads(max(1, args.threads))
    started, trained = time.time(), 0
    for name in args.runs.split(","):
        if args.skip_existing and already_logged(args.logdir, name, args.epochs):
            print(f"[{name}] already logged in {args.logdir}; skipping training")
            continue
        train_run(args.logdir, name, args.noise if name == "noisy" else 0.0, args.epochs, samples=args.samples)
        trained += 1
    if trained:
        print(f"Trained {trained} run(s) in {time.time() - started:.0f} s.", flush=True)


if __name__ == "__main__":
    main()
