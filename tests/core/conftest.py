"""Shared fixtures for dvi_core tests: a few hundred real MNIST digits and a tiny seeded head."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest
import torch

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "data", "mnist10k.npz")  # bundled copy
torch.set_num_threads(1)  # tests run beside other jobs on 2 cores: avoid OpenMP oversubscription
from core_budget import FAST  # noqa: E402,F401 - re-exported for the fixtures below


@dataclass
class Digits:
    """PCA-50 features of MNIST digits, their labels, and a linear head trained on them."""

    train: np.ndarray
    test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    head: torch.nn.Linear


def _pca_features(images: np.ndarray, n_components: int) -> np.ndarray:
    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    Xc = X - X.mean(0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    return (Xc @ vt[:n_components].T).astype(np.float32)


def _train_head(X: np.ndarray, y: np.ndarray, seed: int = 0) -> torch.nn.Linear:
    torch.manual_seed(seed)
    head = torch.nn.Linear(X.shape[1], 10)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(head(Xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval().requires_grad_(False)


@pytest.fixture(scope="session")
def digits() -> Digits:
    """600 train / 200 test MNIST digits (PCA-50) with a linear head (about 85-90 % accurate)."""
    assert os.path.exists(DATA), f"the bundled MNIST digits are missing: {DATA}"
    d = np.load(DATA)
    F = _pca_features(d["images"][:800], 50)
    y = d["labels"][:800]
    head = _train_head(F[:600], y[:600])
    return Digits(F[:600], F[600:], y[:600], y[600:], head)


@pytest.fixture(scope="session")
def fitted(digits: Digits):
    """One default-variant step fitted on the digits (shared by several tests)."""
    from dvi_core import DVIProjector

    return DVIProjector(seed=0, **FAST).fit_step(digits.train, digits.head)
