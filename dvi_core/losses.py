"""Losses of the visualization model as small pure torch functions named after their math."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: UMAP's curve 1 / (1 + a d^(2b)) for min_dist = 0.1, spread = 1.
A, B = 1.577, 0.895
_EPS = 1e-4


def umap_similarity(d2: torch.Tensor, a: float = A, b: float = B) -> torch.Tensor:
    """Low-dimensional membership q = 1 / (1 + a * (d^2)^b)."""
    return 1.0 / (1.0 + a * d2.clamp_min(1e-12).pow(b))


#: UMAP clips each gradient term at this magnitude.
GRAD_CLIP = 4.0


def attraction_coeff(d2: torch.Tensor) -> torch.Tensor:
    """UMAP's attractive gradient factor -2ab d^(2b-2) / (1 + a d^2b) at squared distances ``d2`` (> 0)."""
    d2b = d2.pow(B)  # one fractional power: d^(2b-2) = d2b / d2
    return (-2 * A * B) * d2b / d2 / (1 + A * d2b)


def repulsion_coeff(d2: torch.Tensor) -> torch.Tensor:
    """UMAP's repulsive gradient factor 2b / ((0.001 + d^2) (1 + a d^2b)) at squared distances ``d2``."""
    return (2 * B) / ((0.001 + d2) * (1 + A * d2.pow(B)))


def umap_cross_entropy(
    y_head: torch.Tensor, y_tail: torch.Tensor, n_negatives: int = 5, gen: torch.Generator | None = None
) -> torch.Tensor:
    """Parametric-UMAP cross-entropy: -log q on positive edges, -log(1 - q) on negatives from the batch.

    Negatives pair each head with ``n_negatives`` random tails of the same batch; probabilities are
    clipped at 1e-4 as in the paper's code.
    """
    pos = umap_similarity((y_head - y_tail).pow(2).sum(1))
    n = y_head.shape[0]
    perm = torch.randint(n, (n * n_negatives,), generator=gen, device="cpu").to(y_head.device)
    neg_head = y_head.repeat(n_negatives, 1)
    neg = umap_similarity((neg_head - y_tail[perm]).pow(2).sum(1))
    attract = -torch.log(pos.clamp(_EPS, 1.0)).mean()
    repel = -torch.log((1.0 - neg).clamp(_EPS, 1.0)).mean() * n_negatives
    return attract + repel


def reconstruction_mse(x_hat: torch.Tensor, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the decoded representations, in units of the features' global std."""
    return ((x_hat - x) / scale).pow(2).mean()


def prediction_kl(logits_hat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) || softmax(logits_hat)): keeps the head's prediction through the round trip."""
    p = F.softmax(logits, 1)
    return (p * (F.log_softmax(logits, 1) - F.log_softmax(logits_hat, 1))).sum(1).mean()


def parameter_drift(params: list[torch.Tensor], prev: list[torch.Tensor]) -> torch.Tensor:
    """Sum of squared parameter changes since the previous step, sum ||theta_t - theta_{t-1}||^2."""
    return torch.stack([(p - q).pow(2).sum() for p, q in zip(params, prev, strict=True)]).sum()
