"""Boundary samples: points the head cannot decide between two classes.

Pairs (i, j) are drawn favouring samples whose top-1/top-2 logit gap is small, with j predicted as
i's runner-up class; the mixing weight of ``lam * a_i + (1 - lam) * a_j`` is searched (regula falsi,
at most 8 evaluations) until the normalised gap (top1 - top2) / (top1 - min) of the logits falls below
``GAP``. Mixing happens in input space when an ``encoder`` and ``inputs`` are given, otherwise in representation space.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

#: A point counts as a boundary sample when its normalised top-2 gap is below this value.
GAP = 0.1
_MAX_HALVINGS = 8
_BATCH = 4096
#: Inputs go through the encoder in smaller chunks: a small CNN on one CPU thread ran 1.7x faster per sample in
#: chunks of 256 than of 4096 (cache-sized activations).
_INPUT_BATCH = 256
#: Pairs drawn per boundary sample still wanted (plus 8). Every pair is searched to the end, so pairs beyond the
#: ones kept are wasted work: on the demo CNN every one of 1,008 pairs (n = 800 at the former 5/4) reached the
#: boundary, and the 208 spare pairs were about a sixth of the encoder's work. The rare pair that fails is made up
#: for by the next round of draws.
OVERDRAW = 1.05


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


def device_of(fn: Callable[..., Any], default: str | torch.device = "cpu") -> torch.device:
    """Where a module's first parameter or buffer lives (``default`` for other callables and empty modules)."""
    if isinstance(fn, torch.nn.Module):
        for t in list(fn.parameters()) + list(fn.buffers()):
            return t.device
    return torch.device(default)


@torch.no_grad()
def _batched(fn: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, size: int = _BATCH) -> torch.Tensor:
    return torch.cat([fn(X[s : s + size]) for s in range(0, X.shape[0], size)])


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


def _margin(logits: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
    """logit of ``cls`` minus the best other logit, per row: >= 0 where ``cls`` wins, 0 on its boundary."""
    rows = torch.arange(len(cls))
    own = logits[rows, cls]
    other = logits.clone()
    other[rows, cls] = -torch.inf
    return own - other.max(1).values


def _root_find(
    embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], evaluate: Callable[[torch.Tensor], torch.Tensor],
    class_a: torch.Tensor, g_a: torch.Tensor, g_b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Find lam in (0, 1) where the pair's mix sits on class_a's boundary; returns (features [P, D], ok [P]).

    ``embed(rows, lam)`` gives the representations of the mixes of pairs ``rows``; ``g_a``/``g_b`` are
    ``_margin`` at lam = 1 (pure a, >= 0) and lam = 0 (pure b, < 0). Regula falsi with the Illinois
    correction on that margin (continuous in lam): about 2-3 evaluations per pair instead of bisection's
    5-8, and only pairs not yet on the boundary are evaluated again (what makes input-space samples cheap).
    """
    n = len(class_a)
    lo, hi = torch.zeros(n), torch.ones(n)
    f_lo, f_hi = g_b.clone().float(), g_a.clone().float()
    side = torch.zeros(n, dtype=torch.int8)
    ok = torch.zeros(n, dtype=torch.bool)
    out: torch.Tensor | None = None
    todo = torch.arange(n)
    for _ in range(_MAX_HALVINGS):
        if len(todo) == 0:
            break
        a, h, fl, fh = lo[todo], hi[todo], f_lo[todo], f_hi[todo]
        lam = h - fh * (h - a) / (fh - fl).clamp_min(1e-12)
        lam = torch.minimum(torch.maximum(lam, a + 0.01 * (h - a)), h - 0.01 * (h - a))
        feats = embed(todo, lam)
        logits = evaluate(feats)
        done = normalized_gap(logits) < GAP
        if out is None:
            out = feats.new_zeros(n, *feats.shape[1:])
        out[todo[done]] = feats[done]
        ok[todo[done]] = True
        g = _margin(logits, class_a[todo])
        is_a = g >= 0
        new_side = torch.where(is_a, 1, -1).to(torch.int8)
        repeat = new_side == side[todo]
        hi[todo], f_hi[todo] = torch.where(is_a, lam, h), torch.where(is_a, g, torch.where(repeat, fh / 2, fh))
        lo[todo], f_lo[todo] = torch.where(is_a, a, lam), torch.where(is_a, torch.where(repeat, fl / 2, fl), g)
        side[todo] = new_side
        todo = todo[~done]
    if out is None:
        return torch.zeros(0), ok
    return out, ok


@contextmanager
def eval_mode(fn: Callable[..., Any], device: str | torch.device | None = None) -> Iterator[Callable[..., Any]]:
    """``fn`` ready for inference: a module moved to ``device`` in eval mode (training mode restored after).

    Any other callable (a model's ``features`` method, a lambda) is used as it is. Shared by the metrics and
    the landscape, which take heads as callables too.
    """
    if not isinstance(fn, torch.nn.Module):
        yield fn
        return
    was_training = fn.training
    if device is not None:
        fn = fn.to(device)
    fn.eval()
    try:
        yield fn
    finally:
        fn.train(was_training)


def boundary_samples(
    head: Callable[[torch.Tensor], torch.Tensor],
    features: np.ndarray,
    *,
    n: int | None = None,
    seed: int = 0,
    encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    inputs: np.ndarray | torch.Tensor | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Return about ``n`` (default N // 10, at least 10) boundary samples' representations, float32 [M, D].

    Call twice with different seeds for an independent test set. With ``encoder`` and ``inputs``
    (``inputs[i]`` producing ``features[i]``) the mix happens in input space and ``encoder(mix)`` is returned.
    ``head`` and ``encoder`` may be modules (moved to ``device``, run in eval mode, their training mode
    restored afterwards) or any callables on tensors. Raises ValueError when the head predicts a single class
    (no boundary exists between seen classes).
    """
    n = max(10, len(features) // 10) if n is None else int(n)
    with eval_mode(head, device) as h:
        if encoder is not None and inputs is not None:
            with eval_mode(encoder, device) as enc:
                return _samples(h, features, n, seed, enc, inputs, device)
        return _samples(h, features, n, seed, None, None, device)


def _samples(
    head: Callable[[torch.Tensor], torch.Tensor], features: np.ndarray, n: int, seed: int,
    encoder: Callable[[torch.Tensor], torch.Tensor] | None, inputs: np.ndarray | torch.Tensor | None, device: str,
) -> np.ndarray:
    X = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
    logits = _batched(head, X).cpu()
    if logits.argmax(1).unique().numel() < 2:
        raise ValueError(
            "The 'head' parameter of boundary_samples must predict at least 2 distinct classes on "
            f"'features'. Got a single predicted class ({int(logits.argmax(1)[0])}) instead."
        )
    gen = torch.Generator().manual_seed(int(seed))
    pred = logits.argmax(1)
    src = None
    if encoder is not None:  # mixes are made on the CPU and sent to ``device`` one batch at a time
        src = inputs.detach().cpu().float() if isinstance(inputs, torch.Tensor) else \
            torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    out: list[torch.Tensor] = []
    have = 0
    for _ in range(4):
        i, j = _pick_pairs(logits, int((n - have) * OVERDRAW) + 8, gen)
        if src is not None:
            def embed(rows: torch.Tensor, lam: torch.Tensor, i=i, j=j) -> torch.Tensor:
                a, b = src[i[rows]], src[j[rows]]
                w = lam.view(-1, *([1] * (a.dim() - 1)))
                return _batched(encoder, (w * a + (1 - w) * b).to(device), _INPUT_BATCH).cpu()
        else:
            Xc = X.cpu()

            def embed(rows: torch.Tensor, lam: torch.Tensor, i=i, j=j, Xc=Xc) -> torch.Tensor:
                return lam[:, None] * Xc[i[rows]] + (1 - lam[:, None]) * Xc[j[rows]]

        def evaluate(feats: torch.Tensor) -> torch.Tensor:
            return _batched(head, feats.to(device)).cpu()

        cls = pred[i]
        feats, ok = _root_find(embed, evaluate, cls, _margin(logits[i], cls), _margin(logits[j], cls))
        out.append(feats[ok])
        have += int(ok.sum())
        if have >= n:
            break
    return torch.cat(out)[:n].numpy().astype(np.float32)
