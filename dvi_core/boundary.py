"""Boundary samples (DESIGN §4.1): points the head cannot decide between two classes.

Pairs (i, j) are drawn favouring samples whose top-1/top-2 logit gap is small, with j predicted as
i's runner-up class; the mixing weight of ``lam * a_i + (1 - lam) * a_j`` is bisected until the
normalised gap (top1 - top2) / (top1 - min) of the logits falls below ``GAP``. Mixing happens in
input space when an ``encoder`` and ``inputs`` are given, otherwise in representation space.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

#: A point counts as a boundary sample when its normalised top-2 gap is below this value.
GAP = 0.1
_MAX_HALVINGS = 8
_BATCH = 4096


def normalized_gap(logits: torch.Tensor) -> torch.Tensor:
    """(top1 - top2) / (top1 - min) per row, in [0, 1]; 0 means a tie between the two best classes.

    With two classes that ratio is always 1, so there the gap is the difference of the two softmax
    probabilities instead (also 0 at a tie, 1 when certain).
    """
    if logits.shape[1] == 2:
        p = torch.softmax(logits, 1)
        return (p[:, 0] - p[:, 1]).abs()
    top2 = torch.topk(logits, 2, dim=1).values
    span = (top2[:, 0] - logits.min(1).values).clamp_min(1e-12)
    return (top2[:, 0] - top2[:, 1]) / span


@torch.no_grad()
def _batched(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(X[s : s + _BATCH]) for s in range(0, X.shape[0], _BATCH)])


def _pick_pairs(
    logits: torch.Tensor, n_pairs: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (i, j): i favours small gaps, j is predicted as i's runner-up class (any other class if none)."""
    pred = logits.argmax(1)
    second = torch.topk(logits, 2, dim=1).indices[:, 1]
    gap = normalized_gap(logits)
    weight = 1.0 / (gap + 0.05)
    i = torch.multinomial(weight, n_pairs, replacement=True, generator=gen)
    classes = torch.unique(pred)
    members = {int(c): torch.nonzero(pred == c).ravel() for c in classes}
    j = torch.empty_like(i)
    for c in second[i].unique():
        sel = torch.nonzero(second[i] == c).ravel()
        pool = members.get(int(c))
        if pool is None:  # runner-up class is never predicted: use any sample of another class
            pool = torch.nonzero(pred != pred[i[sel[0]]]).ravel()
        pick = torch.randint(len(pool), (len(sel),), generator=gen)
        j[sel] = pool[pick]
    ok = pred[i] != pred[j]
    return i[ok], j[ok]


def _bisect(
    a: torch.Tensor, b: torch.Tensor, evaluate: Callable[[torch.Tensor], torch.Tensor],
    mix: Callable[[torch.Tensor], torch.Tensor], class_a: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bisect lam in [0, 1] (1 = pure a) keeping class_a on the upper side; returns (lam, gap)."""
    lo = torch.zeros(len(a))
    hi = torch.ones(len(a))
    lam = torch.full((len(a),), 0.5)
    gap = torch.ones(len(a))
    for _ in range(_MAX_HALVINGS):
        lam = (lo + hi) / 2
        logits = evaluate(mix(lam))
        gap = normalized_gap(logits)
        is_a = logits.argmax(1) == class_a
        hi = torch.where(is_a, lam, hi)
        lo = torch.where(is_a, lo, lam)
        if bool((gap < GAP).all()):
            break
    return lam, gap


def boundary_samples(
    head: torch.nn.Module,
    features: np.ndarray,
    *,
    n: int | None = None,
    seed: int = 0,
    encoder: torch.nn.Module | None = None,
    inputs: np.ndarray | torch.Tensor | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Return about ``n`` (default N // 10, at least 10) boundary samples' representations, float32 [M, D].

    Call twice with different seeds for an independent test set. With ``encoder`` and ``inputs``
    (``inputs[i]`` producing ``features[i]``) the mix happens in input space and ``encoder(mix)`` is returned.
    Raises ValueError when the head predicts a single class (no boundary exists between seen classes).
    """
    n = max(10, len(features) // 10) if n is None else int(n)
    head = head.to(device).eval()
    X = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
    logits = _batched(head, X).cpu()
    if logits.argmax(1).unique().numel() < 2:
        raise ValueError(
            "The 'head' parameter of boundary_samples must predict at least 2 distinct classes on "
            f"'features'. Got a single predicted class ({int(logits.argmax(1)[0])}) instead."
        )
    gen = torch.Generator().manual_seed(int(seed))
    out: list[torch.Tensor] = []
    have = 0
    for _ in range(4):
        i, j = _pick_pairs(logits, 2 * n, gen)
        if encoder is not None and inputs is not None:
            src = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
            enc = encoder.to(device).eval()
            a, b = src[i], src[j]

            def mix(lam: torch.Tensor, a=a, b=b, enc=enc) -> torch.Tensor:
                w = lam.view(-1, *([1] * (a.dim() - 1)))
                return _batched(enc, (w * a + (1 - w) * b).to(device)).cpu()
        else:
            a, b = X.cpu()[i], X.cpu()[j]

            def mix(lam: torch.Tensor, a=a, b=b) -> torch.Tensor:
                return lam[:, None] * a + (1 - lam[:, None]) * b

        def evaluate(feats: torch.Tensor) -> torch.Tensor:
            return _batched(head, feats.to(device)).cpu()

        lam, gap = _bisect(a, b, evaluate, mix, logits.argmax(1)[i])
        feats = mix(lam)[gap < GAP]
        out.append(feats)
        have += len(feats)
        if have >= n:
            break
    return torch.cat(out)[:n].numpy().astype(np.float32)
