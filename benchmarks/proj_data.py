"""Benchmark data: a seeded network trained on MNIST 10k; penultimate features + head per epoch.

Two cases: ``cnn`` (the benchmark's own: a small CNN, clean labels, the first 8k digits for training) and
``mlp-noisy`` (a cross-check that nothing was tuned on: a 784-512-256 MLP, Adam, 20 % of the training labels
replaced by random classes, the last 8k digits for training and the first 2k for testing). Cached in
``benchmarks/.cache/`` (git-ignored) keyed by the settings, so re-running the benchmark does not retrain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

DATA = os.path.join(os.path.dirname(__file__), "..", "examples", "data", "mnist10k.npz")  # bundled copy
CACHE = os.path.join(os.path.dirname(__file__), ".cache")
FEATURE_DIM = 256
CASES = ("cnn", "mlp-noisy")
#: Share of the ``mlp-noisy`` case's training labels replaced by a random class.
LABEL_NOISE = 0.2


class SmallCNN(nn.Module):
    """Two conv blocks -> 256-d ReLU features -> linear head (10 classes)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, FEATURE_DIM), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class Epochs:
    """Per-epoch train/test features [E, N, 256], head weights, labels and test accuracy."""

    train: np.ndarray
    test: np.ndarray
    head_w: np.ndarray
    head_b: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    acc: np.ndarray

    def head(self, e: int) -> nn.Linear:
        """The classifier head of epoch ``e`` as a fresh ``nn.Linear``."""
        h = nn.Linear(FEATURE_DIM, 10)
        with torch.no_grad():
            h.weight.copy_(torch.from_numpy(self.head_w[e]))
            h.bias.copy_(torch.from_numpy(self.head_b[e]))
        return h.eval()


def _features(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([model.features(x[s : s + 1000]) for s in range(0, len(x), 1000)]).numpy()


class NoisyMLP(nn.Module):
    """784 -> 512 -> 256-d ReLU features -> linear head (10 classes): the ``mlp-noisy`` case's network."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, FEATURE_DIM),
                                      nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def load_epochs(n_epochs: int, seed: int = 0, case: str = "cnn") -> Epochs:
    """Train (or load from cache) the ``case``'s network for ``n_epochs`` and return its per-epoch features."""
    if case not in CASES:
        raise ValueError(f"The 'case' parameter of load_epochs must be one of {CASES}. Got {case!r} instead.")
    path = os.path.join(CACHE, f"proj_{case.replace('-', '_')}_e{n_epochs}_s{seed}.npz")
    if os.path.exists(path):
        return Epochs(**dict(np.load(path)))
    d = np.load(DATA)
    x = torch.from_numpy(d["images"].astype(np.float32) / 255.0)[:, None]
    y = torch.from_numpy(d["labels"].astype(np.int64))
    if case == "cnn":
        xtr, ytr, xte, yte = x[:8000], y[:8000], x[8000:], y[8000:]
        torch.manual_seed(seed)
        model: nn.Module = SmallCNN()
        opt: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        gen, batch = torch.Generator().manual_seed(seed), 128
    else:
        xte, yte, xtr, ytr = x[:2000], y[:2000], x[2000:], y[2000:].clone()
        gen, batch = torch.Generator().manual_seed(seed + 7), 64
        noisy = torch.rand(len(ytr), generator=gen) < LABEL_NOISE
        ytr[noisy] = torch.randint(10, (int(noisy.sum()),), generator=gen)
        torch.manual_seed(seed + 7)
        model = NoisyMLP()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ep = _train(model, opt, (xtr, ytr, xte, yte), n_epochs, gen, batch)
    os.makedirs(CACHE, exist_ok=True)
    np.savez(path, **ep.__dict__)
    return ep


def _train(model: nn.Module, opt: torch.optim.Optimizer, data: tuple[torch.Tensor, ...], n_epochs: int,
           gen: torch.Generator, batch: int) -> Epochs:
    """Train ``model`` (``features`` + ``head``) for ``n_epochs`` on shuffled batches; its features after each."""
    xtr, ytr, xte, yte = data
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("train", "test", "head_w", "head_b", "acc")}
    for _ in range(n_epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for s in range(0, len(xtr), batch):
            i = perm[s : s + batch]
            loss = nn.functional.cross_entropy(model(xtr[i]), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        out["train"].append(_features(model, xtr))
        out["test"].append(_features(model, xte))
        out["head_w"].append(model.head.weight.detach().numpy().copy())
        out["head_b"].append(model.head.bias.detach().numpy().copy())
        with torch.no_grad():
            out["acc"].append(np.float32((model.head(torch.from_numpy(out["test"][-1])).argmax(1) == yte)
                                         .float().mean()))
    return Epochs(**{k: np.stack(v) for k, v in out.items()}, y_train=ytr.numpy(), y_test=yte.numpy())
