"""Settling: a dot that decodes to another class moves onto its own class's region; the others stay."""

from __future__ import annotations

import numpy as np
import torch

from dvi_core.model import Decoder
from dvi_core.settle import settle


def _case() -> tuple[np.ndarray, torch.Tensor, np.ndarray, torch.nn.Linear]:
    """Two 2-D classes split at x = 0; one sample of class 0 laid out inside class 1's cluster."""
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal((-3, 0), 0.5, (100, 2)), rng.normal((3, 0), 0.5, (100, 2)), [[-0.5, 0.0]]])
    Y = feats * np.array([2.0, 1.0])  # the layout follows the features ...
    Y[-1] = (6.0, 0.1)  # ... except for the odd sample, placed among class 1
    head = torch.nn.Linear(2, 2)
    head.weight.data = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    head.bias.data.zero_()
    pred = head(torch.as_tensor(feats, dtype=torch.float32)).argmax(1).numpy()
    return Y.astype(np.float32), torch.as_tensor(feats, dtype=torch.float32), pred, head


def _decoder() -> Decoder:
    dec = Decoder(2, hidden=8, n_layers=1, n_components=2, tau=1.0)
    torch.nn.init.zeros_(dec.net[-1].weight)  # the prior says "the mean" everywhere: only the memory decides
    torch.nn.init.zeros_(dec.net[-1].bias)
    return dec.eval()


def test_the_odd_dot_moves_onto_its_class_and_the_others_stay():
    Y, X, pred, head = _case()
    dec = _decoder()
    out, moved = settle(Y, X, pred, dec, head, n_samples=len(Y))
    with torch.no_grad():
        before = head(dec(torch.as_tensor(Y[-1:]))).argmax(1).item()
        after = head(dec(torch.as_tensor(out))).argmax(1).numpy()
    assert before == 1, "the constructed case is wrong: the odd dot already decodes to its class"
    assert moved == 1, f"{moved} dots moved, expected only the odd one"
    np.testing.assert_array_equal(out[:-1], Y[:-1])
    assert (after == pred).all(), f"{int((after != pred).sum())} dots still decode to another class"
    assert out[-1, 0] < Y[-1, 0], f"the odd dot moved from {Y[-1]} to {out[-1]}, not towards class 0"


def test_boundary_rows_never_move():
    Y, X, pred, head = _case()
    out, _ = settle(Y, X, pred[:-1], _decoder(), head, n_samples=len(Y) - 1)  # last row: a boundary point
    np.testing.assert_array_equal(out[-1], Y[-1])
