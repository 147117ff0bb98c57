"""Boundary samples sit on the head's decision boundary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dvi_core.boundary import GAP, boundary_samples, normalized_gap


def test_boundary_samples_on_the_boundary(digits):
    B = boundary_samples(digits.head, digits.train, n=60, seed=0)
    gap = normalized_gap(digits.head(torch.from_numpy(B))).numpy()
    assert B.shape == (60, digits.train.shape[1]), f"unexpected shape {B.shape}"
    assert gap.max() < GAP, f"largest normalised top-2 gap {gap.max():.3f} >= {GAP}"


def test_default_count_and_independent_sets(digits):
    a = boundary_samples(digits.head, digits.train, seed=0)
    b = boundary_samples(digits.head, digits.train, seed=1)
    assert len(a) == len(digits.train) // 10, f"default count {len(a)} != N/10"
    assert not np.allclose(a, b), "two seeds gave the same boundary set"


def test_input_space_mixing_returns_encoded_features(digits):
    torch.manual_seed(0)
    inputs = torch.randn(len(digits.train), 3, 4)  # stand-in inputs and an encoder that reproduces the features
    W = torch.linalg.lstsq(inputs.reshape(len(inputs), -1), torch.from_numpy(digits.train)).solution
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, digits.train.shape[1], bias=False))
    encoder[1].weight.data = W.T.contiguous()
    feats = encoder(inputs).detach().numpy()
    B = boundary_samples(digits.head, feats, n=30, seed=0, encoder=encoder, inputs=inputs)
    gap = normalized_gap(digits.head(torch.from_numpy(B))).numpy()
    assert len(B) == 30 and gap.max() < GAP, f"input-space boundary: n={len(B)}, max gap {gap.max():.3f}"


def test_single_class_head_rejected(digits):
    head = torch.nn.Linear(digits.train.shape[1], 3)
    torch.nn.init.zeros_(head.weight)
    head.bias.data = torch.tensor([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="at least 2 distinct classes"):
        boundary_samples(head, digits.train)
