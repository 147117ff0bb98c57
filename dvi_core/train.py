"""Training loop of the visualization model, shared by both variants.

One loss, several weighted terms; a term with weight 0 is skipped entirely:
- ``umap``: parametric-UMAP cross-entropy on edges sampled in proportion to weight (faithful core);
- ``rec``: reconstruction MSE of decoder(encoder(x)), or of decoder(layout + jitter) in the default variant,
  which trains no encoder (its encoder places points against the layout: ``placement``);
- ``pred``: KL between head(x) and head(decoder(...)) (default variant; raises PPR);
- ``temporal``: sum ||theta_t - theta_{t-1}||^2, scaled by mean NPR, from the second step on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import losses
from .model import Decoder, Encoder


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (0 disables a term)."""

    umap: float = 1.0
    rec: float = 1.0
    pred: float = 0.0
    temporal: float = 0.3
    #: decode the layout target (plus jitter) instead of the encoder output: decouples the models
    decode_target: bool = False


@dataclass
class TrainData:
    """Everything the loop samples from, already on the target device."""

    X: torch.Tensor  # [V, D] samples then boundary samples
    logits: torch.Tensor  # [V, C] head(X)
    head_idx: torch.Tensor  # [E] edge heads
    tail_idx: torch.Tensor  # [E] edge tails
    edge_weight: torch.Tensor  # [E]
    target: torch.Tensor | None = None  # [V, 2] layout the decoder learns to invert
    target_scale: float = 1.0


def _lr_at(it: int, n_iter: int, lr: float) -> float:
    """Short linear warm-up then linear decay to 10 %."""
    warm = max(1, n_iter // 20)
    if it < warm:
        return lr * (it + 1) / warm
    return lr * (1.0 - 0.9 * (it - warm) / max(1, n_iter - warm))


def _batch_vertices(
    data: TrainData, enc: Encoder | None, w: LossWeights, batch: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Returns (umap loss, vertex ids, their 2-D codes or None without an encoder) for one batch."""
    dev = data.X.device
    if enc is None:
        return torch.zeros((), device=dev), torch.randint(data.X.shape[0], (batch,), generator=gen).to(dev), None
    if w.umap > 0:
        e = torch.multinomial(data.edge_weight.cpu(), batch, replacement=True, generator=gen).to(dev)
        h, t = data.head_idx[e], data.tail_idx[e]
        y = enc(data.X[torch.cat([h, t])])
        loss = losses.umap_cross_entropy(y[:batch], y[batch:], gen=gen) * w.umap
        return loss, torch.cat([h, t]), y
    v = torch.randint(data.X.shape[0], (batch,), generator=gen).to(dev)
    return torch.zeros((), device=dev), v, enc(data.X[v])


def _decoder_input(
    data: TrainData, v: torch.Tensor, y: torch.Tensor | None, w: LossWeights, gen: torch.Generator
) -> torch.Tensor:
    if y is not None and (not w.decode_target or data.target is None):
        return y
    if data.target is None:
        raise ValueError("training a decoder without an encoder needs a layout target")
    jitter = torch.randn(len(v), 2, generator=gen).to(v.device) * (0.02 * data.target_scale)
    return data.target[v] + jitter


def train_models(
    enc: Encoder | None,
    dec: Decoder,
    head: torch.nn.Module,
    data: TrainData,
    weights: LossWeights,
    *,
    n_iter: int,
    batch_size: int,
    learning_rate: float,
    prev_params: list[torch.Tensor] | None = None,
    npr_mean: float = 0.0,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Optimise ``enc`` (when given) and ``dec`` in place with Adam for ``n_iter`` iterations.

    Without an encoder (placement variant) only the decoder trains, on the layout target plus jitter.
    """
    gen = torch.Generator().manual_seed(int(seed))
    params = ([] if enc is None else list(enc.parameters())) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=learning_rate, foreach=True)
    for it in range(n_iter):
        for g in opt.param_groups:
            g["lr"] = _lr_at(it, n_iter, learning_rate)
        loss, v, y = _batch_vertices(data, enc, weights, batch_size, gen)
        if weights.rec > 0 or weights.pred > 0:
            x_hat = dec(_decoder_input(data, v, y, weights, gen))
            if weights.rec > 0:
                loss = loss + weights.rec * losses.reconstruction_mse(x_hat, data.X[v], dec.scale)
            if weights.pred > 0:
                loss = loss + weights.pred * losses.prediction_kl(head(x_hat), data.logits[v])
        if prev_params is not None and weights.temporal > 0:
            loss = loss + weights.temporal * npr_mean * losses.parameter_drift(params, prev_params)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None and it % 25 == 0:
            progress(it / n_iter)
