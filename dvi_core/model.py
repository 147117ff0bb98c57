"""Visualization model: an MLP encoder D -> 2 (faithful variant) and a decoder 2 -> D.

The default variant's encoder is ``placement.LayoutEncoder`` (non-parametric, same frame). All models
work in a fixed linear input space held as buffers: centred by the feature mean,
rotated onto ``P`` principal axes (``P = D`` with identity axes for the faithful variant) and divided
by one global scale. Why: the MLPs then see O(1) values whatever the scale of the user's
representations, and with ``P < D`` (default variant) every training step costs O(P) instead of
O(D) per hidden unit, which is what makes a step on 8k x 512-d take seconds on two CPU cores.
``state_dict`` plus a few ints fully describe the models (saved as plain arrays by ``persist``).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class _Frame(nn.Module):
    """Buffers of the fixed input frame: mean [D], axes [P, D] (orthonormal rows), scale []."""

    def __init__(self, n_features: int, n_components: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("axes", torch.eye(n_components, n_features))
        self.register_buffer("scale", torch.ones(()))

    def reduce(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates of representations ``x`` [*, D] in the frame, [*, P]."""
        return (x - self.mean) @ self.axes.T / self.scale

    def expand(self, z: torch.Tensor) -> torch.Tensor:
        """Representations [*, D] of frame coordinates [*, P]."""
        return z * self.scale @ self.axes + self.mean


class KnnMemory(nn.Module):
    """Values remembered at reference points, blended with a prior (kernel regression with a prior).

    out(q) = (sum_j w_j v_j + w_p prior(q)) / (sum_j w_j + w_p) over the ``K`` nearest references,
    w_j = exp(-d_j^2 / (tau h^2)) and the prior acting as a pseudo-reference at squared distance h^2
    (h^2: 4 x the median squared spacing of the references). Exactly v_j at a reference, the prior
    (the MLP) alone far from all references; a small ``tau`` follows the nearest reference closely.
    Lets the decoder's small MLP carry the global shape while the layout positions of the step's own
    samples (and points near them) decode exactly to their frame-projected features. Keys are low-dimensional
    (the 2-D layout), searched with a k-d tree.
    """

    K = 16

    def __init__(self, n_in: int, n_out: int, n_ref: int = 0, tau: float = 0.25) -> None:
        super().__init__()
        self.register_buffer("tau", torch.tensor(float(tau)))
        self.register_buffer("keys", torch.zeros(n_ref, n_in))
        self.register_buffer("values", torch.zeros(n_ref, n_out))
        self.register_buffer("h2", torch.ones(()))

    def _tree(self) -> cKDTree:
        """A k-d tree of the keys (low-dimensional: ~100x faster than a dense search), built once per set of keys:
        :meth:`store` and :meth:`clear` drop it, and a changed buffer (moved, or loaded in place) has a new stamp."""
        stamp = (self.keys.data_ptr(), self.keys._version, tuple(self.keys.shape))
        if getattr(self, "_tree_stamp", None) != stamp:
            self._tree_cache, self._tree_stamp = cKDTree(self.keys.detach().cpu().numpy()), stamp
        return self._tree_cache

    def lookup(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices [M, K] of the nearest references, blend weights [M, K + 1]) at queries ``q`` [M, n_in]; the
        weights' last column is the prior's. Requires at least one reference."""
        k = min(self.K, self.keys.shape[0])
        dist, ind = self._tree().query(q.detach().cpu().numpy(), k=k)
        d2 = torch.as_tensor(dist, dtype=q.dtype, device=q.device).reshape(len(q), k).pow(2)
        idx = torch.as_tensor(ind, device=q.device).reshape(len(q), k)
        d2 = torch.cat([d2, self.h2.to(q.dtype).expand(len(q), 1)], 1)  # last column: the prior
        return idx, torch.softmax(-d2 / (self.tau * self.h2), 1)

    def forward(self, q: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        if self.keys.shape[0] == 0:
            return prior
        out = []
        for s in range(0, q.shape[0], 2048):
            idx, w = self.lookup(q[s : s + 2048])
            vals = torch.cat([self.values[idx], prior[s : s + 2048, None]], 1)
            out.append((w[:, :, None] * vals).sum(1))
        return torch.cat(out)

    @torch.no_grad()
    def store(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Remember ``values`` at ``keys``; h^2 = 4 x the median squared distance to the nearest other key."""
        self._tree_stamp = None
        self.keys, self.values = keys.contiguous().clone(), values.contiguous().clone()
        pts = keys.detach().cpu().numpy()
        d, _ = cKDTree(pts).query(pts[:: max(1, len(pts) // 2000)], k=2)  # low-dimensional keys: a k-d tree
        self.h2 = torch.as_tensor(4 * max(float(np.median(d[:, 1] ** 2)), 1e-12), dtype=keys.dtype, device=keys.device)

    def clear(self) -> None:
        """Forget all references."""
        self._tree_stamp = None
        self.keys = self.keys.new_zeros(0, self.keys.shape[1])
        self.values = self.values.new_zeros(0, self.values.shape[1])


class Encoder(_Frame):
    """Maps representations [*, D] to 2-D coordinates [*, 2]: an MLP on frame coordinates (faithful variant)."""

    def __init__(self, n_features: int, hidden: int, n_layers: int, n_components: int) -> None:
        super().__init__(n_features, n_components)
        self.net = _mlp([n_components] + [hidden] * n_layers + [2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.reduce(x))


class Decoder(_Frame):
    """Maps 2-D coordinates [*, 2] back to representations [*, D] (the inverse projection)."""

    def __init__(self, n_features: int, hidden: int, n_layers: int, n_components: int, n_ref: int = 0,
                 tau: float = 0.25) -> None:
        super().__init__(n_features, n_components)
        self.net = _mlp([2] + [hidden] * n_layers + [n_components])
        self.memory = KnnMemory(2, n_components, n_ref, tau=tau)

    def frame(self, y: torch.Tensor) -> torch.Tensor:
        """Frame coordinates [*, P] decoded from 2-D points (before mapping back to D)."""
        return self.memory(y, self.net(y))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.expand(self.frame(y))


@torch.no_grad()
def memorize(dec: Decoder, Y: torch.Tensor, X: torch.Tensor) -> None:
    """Make dec(Y) == the frame projection of X exactly, via the decoder's memory."""
    dec.memory.store(Y, dec.reduce(X))


def forget(dec: Decoder) -> None:
    """Clear the decoder's memory (before training a warm-started copy)."""
    dec.memory.clear()


def build_decoder(n_features: int, hidden: int, n_layers: int, n_components: int, n_ref: int = 0) -> Decoder:
    """A fresh decoder with the given width, depth, frame size and memory size."""
    return Decoder(n_features, hidden, n_layers, n_components, n_ref)


def build_models(
    n_features: int, hidden: int, n_layers: int, n_components: int | None = None
) -> tuple[Encoder, Decoder]:
    """A fresh MLP encoder/decoder pair (faithful variant) with the given width, depth and frame size (default D)."""
    p = n_components or n_features
    return Encoder(n_features, hidden, n_layers, p), Decoder(n_features, hidden, n_layers, p)


def set_frame(models: tuple[_Frame, ...], X: torch.Tensor, n_components: int) -> None:
    """Fit the frame on ``X``: mean, top principal axes (identity when P = D) and global std."""
    mean = X.mean(0)
    Xc = X - mean
    if n_components < X.shape[1]:
        # the top eigenvectors of the (float64) scatter matrix: the SVD's right singular vectors up to sign, at a
        # third of its time on a warm step's 8,800 x 256 features
        sub = Xc[:: max(1, len(X) // 10000)].double()
        _, vecs = torch.linalg.eigh(sub.T @ sub)
        axes = vecs.flip(1)[:, :n_components].T.to(X.dtype).contiguous()
    else:
        axes = torch.eye(X.shape[1], dtype=X.dtype, device=X.device)
    scale = (Xc @ axes.T).pow(2).mean().sqrt().clamp_min(1e-12)
    for m in models:
        m.mean.copy_(mean)
        m.axes.copy_(axes)
        m.scale.copy_(scale)


@torch.no_grad()
def refit_frame(models: tuple[_Frame, ...], X: torch.Tensor) -> None:
    """Move warm-started models onto the frame of new features ``X`` keeping their functions close.

    The first layer of an ``Encoder`` and the last layer of a ``Decoder`` absorb the change of mean, axes and
    scale (exactly where the old and new principal subspaces agree), so step t starts from step t-1's map.
    """
    ref = models[0]
    old_mean, old_axes, old_scale = ref.mean.clone(), ref.axes.clone(), ref.scale.clone()
    set_frame(models, X, ref.axes.shape[0])
    rot = old_axes @ ref.axes.T  # [P_old, P_new]
    for m in models:
        if isinstance(m, Encoder):
            first = m.net[0]
            first.bias += first.weight @ (old_axes @ (m.mean - old_mean)) / old_scale
            first.weight.copy_(first.weight @ rot * (m.scale / old_scale))
        elif isinstance(m, Decoder):
            last = m.net[-1]
            back = rot.T * (old_scale / m.scale)  # [P_new, P_old]
            last.weight.copy_(back @ last.weight)
            last.bias.copy_(back @ last.bias + m.axes @ (old_mean - m.mean) / m.scale)
