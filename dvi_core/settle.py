"""Settling the layout onto its landscape: every training dot ends up on a pixel of its own predicted class.

Why: the decoder is smooth (a kernel blend of nearby samples plus an MLP), so the landscape at a dot is mostly
its neighbourhood's class. A sample the head classifies differently from its high-dimensional neighbours (a
misclassified or ambiguous sample, typically 2-4 % of them) sits inside another class's region of the layout and
would be drawn on the wrong colour. Giving each such dot a tiny island of its own class makes a speckled
landscape; instead, the dot moves the least way towards the nearest dot of its class that is already on its
colour, until the decoded class under it (and a little beyond, so the pixel under it agrees) is its own: it
ends up just across the decision boundary it crossed, which is where DVI means to show it. Test points get the
same treatment when they are placed (``placement.LayoutEncoder``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree

from .model import Decoder, memorize

_STEPS = 10  # fractions of the way towards the goal that are tried
_EXTRA = 1  # steps taken beyond the first one that decodes to the dot's class (a margin for the pixel under it)


def _decoded_classes(dec: Decoder, head: Callable[[torch.Tensor], torch.Tensor], Y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([head(dec(Y[s : s + 8192])).argmax(1) for s in range(0, len(Y), 8192)])


def _goals(Y: np.ndarray, pred: np.ndarray, good: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """For each bad dot, the position of the nearest (2-D) good dot of its own class (itself if none exists)."""
    goal = Y[bad].copy()
    for c in np.unique(pred[bad]):
        pool = np.nonzero(good & (pred == c))[0]
        if len(pool) == 0:
            continue
        rows = np.nonzero(pred[bad] == c)[0]
        _, j = cKDTree(Y[pool]).query(Y[bad][rows], k=1)
        goal[rows] = Y[pool[j]]
    return goal


def settle(
    Y: np.ndarray, X: torch.Tensor, pred: np.ndarray, dec: Decoder, head: Callable[[torch.Tensor], torch.Tensor],
    *, n_samples: int, n_rounds: int = 3,
) -> tuple[np.ndarray, int]:
    """Move the first ``n_samples`` rows of ``Y`` [V, 2] whose decoded class differs from ``pred`` [n_samples].

    ``X`` [V, D] are the features behind ``Y`` (samples, then boundary points, which never move); the decoder's
    memory is refreshed with ``memorize`` on the samples after every round (boundary points are not remembered:
    their tied features would punch white holes wherever the layout puts one inside a class's region).
    Returns (new float32 layout, number of dots moved).
    """
    Y = np.array(Y, dtype=np.float32)
    moved = np.zeros(n_samples, bool)
    t = (np.arange(1, _STEPS + 1, dtype=np.float32) / _STEPS)[None, :, None]
    for _ in range(n_rounds):
        memorize(dec, torch.as_tensor(Y[:n_samples], device=X.device), X[:n_samples])
        cls = _decoded_classes(dec, head, torch.as_tensor(Y[:n_samples], device=X.device)).cpu().numpy()
        bad = cls != pred
        if not bad.any():
            break
        idx = np.nonzero(bad)[0]
        start = Y[idx]
        goal = _goals(Y[:n_samples], pred, ~bad, idx)
        cands = start[:, None, :] + t * (goal - start)[:, None, :]  # [b, S, 2]
        got = _decoded_classes(dec, head, torch.as_tensor(cands.reshape(-1, 2), device=X.device))
        ok = got.cpu().numpy().reshape(len(idx), _STEPS) == pred[idx, None]
        ok[:, -1] = True  # the goal itself is a dot of the class on its colour
        first = np.minimum(ok.argmax(1) + _EXTRA, _STEPS - 1)
        Y[idx] = cands[np.arange(len(idx)), first]
        moved[idx] = True
    memorize(dec, torch.as_tensor(Y[:n_samples], device=X.device), X[:n_samples])
    return Y, int(moved.sum())
