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


def _linear_encoder(digits):
    torch.manual_seed(0)
    inputs = torch.randn(len(digits.train), 12)
    W = torch.linalg.lstsq(inputs, torch.from_numpy(digits.train)).solution
    enc = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(12, digits.train.shape[1], bias=False))
    enc[1].weight.data = W.T.contiguous()
    return inputs, enc


def test_any_callable_encoder_is_accepted_and_module_modes_restored(digits):
    inputs, enc = _linear_encoder(digits)
    enc.train()  # dropout on: the sampler must switch it off and restore it afterwards
    feats = enc.eval()(inputs).detach().numpy()
    enc.train()
    B = boundary_samples(digits.head, feats, n=20, seed=0, encoder=enc, inputs=inputs)
    assert enc.training, "the encoder's training mode was not restored"
    gap = normalized_gap(digits.head(torch.from_numpy(B))).numpy()
    assert len(B) == 20 and gap.max() < GAP, f"module encoder: n={len(B)}, max gap {gap.max():.3f}"
    enc.eval()
    lin = enc[1]
    B2 = boundary_samples(lambda x: digits.head(x), feats, n=20, seed=0, encoder=lambda x: lin(x), inputs=inputs)
    gap2 = normalized_gap(digits.head(torch.from_numpy(B2))).numpy()
    assert len(B2) == 20 and gap2.max() < GAP, f"lambda encoder: n={len(B2)}, max gap {gap2.max():.3f}"
    np.testing.assert_allclose(B2, B, rtol=1e-4, atol=1e-4)


def test_root_finding_needs_few_encoder_calls(digits):
    """The regula-falsi search evaluates each pair about 2-3 times, not 8 as full bisection would."""
    inputs, enc = _linear_encoder(digits)
    enc.eval()
    feats = enc(inputs).detach().numpy()
    calls = []

    def counting(x):
        calls.append(len(x))
        return enc(x)

    B = boundary_samples(digits.head, feats, n=50, seed=0, encoder=counting, inputs=inputs)
    per_sample = sum(calls) / len(B)
    assert per_sample < 4.0, f"{per_sample:.1f} encoder evaluations per boundary sample"


def test_few_pairs_are_drawn_beyond_the_samples_kept(digits):
    """Every drawn pair is searched to the end, so spare pairs are wasted encoder work: with a linear encoder each
    pair reaches the boundary on its first evaluation, and the encoder sees few more rows than samples returned."""
    inputs, enc = _linear_encoder(digits)
    enc.eval()
    feats = enc(inputs).detach().numpy()
    rows = []

    def counting(x):
        rows.append(len(x))
        return enc(x)

    B = boundary_samples(digits.head, feats, n=100, seed=0, encoder=counting, inputs=inputs)
    assert len(B) == 100, f"{len(B)} samples instead of 100"
    assert sum(rows) <= 1.2 * len(B), f"{sum(rows)} encoder rows for {len(B)} samples (at most 120 expected)"
