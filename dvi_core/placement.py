"""The default variant's encoder: places points against the step's fixed layout, as umap-learn's ``transform`` does.

Why not an MLP: a small MLP regressed onto the layout blurs it (NN preservation of new points fell to about 0.22
in the benchmark) and then its outputs land between classes, where the decoder gives another prediction. Here:

1. A point that is one of the step's references maps exactly to its layout position (so ``transform`` of the
   training samples is the layout itself).
2. Any other point starts at the membership-weighted mean of the layout positions of its k nearest references
   (k = ``MIN_PLACEMENT_NEIGHBORS``, or the projector's ``n_neighbors`` when larger; UMAP's smooth-kNN
   memberships over frame coordinates, without the local connectivity, i.e. the nearest reference is not given
   weight 1, as umap-learn's ``transform`` does) ...
3. ... and is refined for 100 epochs (learning rate 0.25, umap-learn's transform settings) of UMAP's attraction
   to those references and repulsion from other references, holding the layout fixed. Benchmark, epoch 0: the
   memberships test NN15 0.391 -> 0.398 (test boundary15 0.378 -> 0.372); the epochs (was 50 at 0.1) test
   boundary15 0.379 -> 0.394, NN15 unchanged. Deterministic: the negatives are one seeded draw shared by all
   points, and attraction uses expected rather than sampled edges, so a point's position does not depend on
   which other points are transformed with it.
4. A point whose position decodes to another class than its own (both judged by a linear surrogate of the head
   on frame coordinates, exact for a linear head restricted to the frame) moves the least way towards its nearest
   reference of its own class at which it decodes to its class; points within ``TIE_GAP`` of a tie stay. This is
   what keeps predictions through the round trip (PPR) for new points.
"""

from __future__ import annotations

import numpy as np
import torch

from .boundary import normalized_gap
from .graph import smooth_knn_memberships
from .losses import GRAD_CLIP, attraction_coeff, repulsion_coeff
from .model import Decoder, _Frame
from .neighbors import exact_query, features_digest
from .placement_cpu import refine

_CHUNK = 4096
_SPARE = 5  # candidates beyond k searched for each new point (re-ranked exactly)
_STEPS = 8  # fractions of the way to a same-class reference tried by _keep_prediction
#: Steps taken beyond the first that decodes to the point's class: the landscape pixel under the point (up to half a
#: pixel away) then shows its class too (benchmark: test landscape agreement +0.01 for 1, no cost in PPR).
EXTRA_STEPS = 1
#: Points whose head is this close to a tie (normalised top-2 gap) are on the boundary already and keep their
#: place. Benchmark, epochs 0-1 (method 0.5.0): 0.03 -> 0.01 test PPR 0.943 / 0.970 -> 0.963 / 0.976, test boundary15
#: -0.002; 0 (move every point) test boundary15 0.393 / 0.406 -> 0.365 / 0.362, below umap-learn's.
TIE_GAP = 0.01
#: A new point is placed against at least this many references (the projector's ``n_neighbors`` when larger).
#: The map's neighbourhoods of new points are judged among the new points, which are sparser than the references
#: (2,000 test vs 8,000 training samples in the benchmark): a wider set of references places them more the way
#: they sit among each other. Benchmark, epochs 1-9 (method 0.5.0 steps): 15 -> 40 test NN15 0.422 -> 0.429,
#: temporal test 0.261 -> 0.288, boundary15 test 0.397 -> 0.399, PPR test min 0.976 -> 0.975; 25: 0.426 / 0.275;
#: 30: 0.428 / 0.286; 60: 0.429 / 0.289 with boundary15 0.396. The search space is not what limits it: the same
#: placement over the full 256-d features or 32-d / 128-d PCA gave 0.428 at 40 too.
MIN_PLACEMENT_NEIGHBORS = 40
#: Continuity of new points between steps (``continue_places``): a new point keeps its previous place relative to
#: its nearest samples in proportion to how many of these ``CONTINUITY_NEIGHBORS`` it kept, from none at a share of
#: ``CONTINUITY_FROM`` up to all of it when it kept every one. Benchmark, epochs 1-9, two seeds (method 0.5.1
#: steps): temporal test 0.294 / 0.291 -> 0.306 / 0.304, test NN15 0.426 / 0.429 -> 0.424 / 0.427, test boundary15,
#: PPR and landscape agreement unchanged; from 0.9: 0.303 / 0.301; from 0.7, the share squared: 0.305, NN15 0.424.
CONTINUITY_NEIGHBORS = 40
CONTINUITY_FROM = 0.8


class LayoutEncoder(_Frame):
    """Maps representations [*, D] to 2-D by kNN placement against stored references (module docstring).

    Buffers: ``keys`` [R, P] frame coordinates of the references, ``values`` [R, 2] their layout positions,
    ``classes`` [R] the head's predictions on them, ``logit_map`` [P + 1, C] least-squares linear surrogate of
    the head's logits on frame coordinates, ``spacing`` median distance of a reference to its nearest other one.
    """

    def __init__(
        self, n_features: int, n_components: int, n_ref: int = 0, n_logits: int = 0, n_neighbors: int = 15,
        n_epochs: int = 100, learning_rate: float = 0.25, n_negatives: int = 10,
    ) -> None:
        super().__init__(n_features, n_components)
        self.n_neighbors = n_neighbors
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.n_negatives = n_negatives
        self.register_buffer("keys", torch.zeros(n_ref, n_components))
        self.register_buffer("values", torch.zeros(n_ref, 2))
        self.register_buffer("classes", torch.zeros(n_ref, dtype=torch.int64))
        self.register_buffer("logit_map", torch.zeros(n_components + 1, n_logits))
        self.register_buffer("spacing", torch.zeros(()))

    @torch.no_grad()
    def store(self, X: torch.Tensor, Y: torch.Tensor, logits: torch.Tensor) -> None:
        """Remember references: features ``X`` [R, D] at layout positions ``Y`` [R, 2] with head ``logits``."""
        z = self.reduce(X)
        self.keys, self.values = z.contiguous().clone(), Y.to(z).contiguous().clone()
        self.classes = logits.argmax(1).to(z.device)
        Z1 = torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype, device=z.device)], 1)
        self.logit_map = torch.linalg.lstsq(Z1.cpu().double(), logits.cpu().double()).solution.to(z).contiguous()
        sub = z[:: max(1, len(z) // 2000)]
        _, d = exact_query(z, sub, 2, device=z.device)
        self.spacing = torch.as_tensor(float(np.median(d[:, 1])), dtype=z.dtype, device=z.device)

    def surrogate_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The head's logits approximated on frame coordinates [*, P] (``logit_map``)."""
        return z @ self.logit_map[:-1] + self.logit_map[-1]

    def surrogate_classes(self, z: torch.Tensor) -> torch.Tensor:
        """The head's predicted classes approximated on frame coordinates [*, P]."""
        return self.surrogate_logits(z).argmax(1)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, decoder: Decoder | None = None) -> torch.Tensor:
        z = self.reduce(x)
        return torch.cat([self._place(z[s : s + _CHUNK], decoder) for s in range(0, len(z), _CHUNK)])

    def _place(self, z: torch.Tensor, decoder: Decoder | None) -> torch.Tensor:
        k = min(max(self.n_neighbors, MIN_PLACEMENT_NEIGHBORS), self.keys.shape[0])
        # a few spare candidates, re-ranked by exact per-row distances: the matrix-product ranking can swap the k-th
        # and (k+1)-th reference depending on the batch, and a point's place must not depend on its batch
        kc = min(k + _SPARE, self.keys.shape[0])
        idx = torch.as_tensor(exact_query(self.keys, z, kc, device=z.device)[0], device=z.device)
        d = (z[:, None, :] - self.keys[idx]).norm(dim=2)  # exact distances of the candidates
        d, order = torch.sort(d, dim=1, stable=True)
        idx, d = idx.gather(1, order[:, :k]), d[:, :k]
        hit = d[:, 0] <= 1e-3 * self.spacing
        y = self.values[idx[:, 0]].clone()
        new = ~hit
        if new.any():
            w = torch.as_tensor(smooth_knn_memberships(d[new].cpu().numpy(), local_connectivity=False), device=z.device)
            start = (w[:, :, None] * self.values[idx[new]]).sum(1) / w.sum(1, keepdim=True)
            y[new] = self._refine(start, idx[new], w)
            if decoder is not None and self.logit_map.shape[1] > 0:
                y[new] = self._keep_prediction(z[new], y[new], idx[new], decoder)
        return y

    def _refine(self, y: torch.Tensor, nbr: torch.Tensor, w: torch.Tensor, compiled: bool = True) -> torch.Tensor:
        """UMAP's transform epochs against the fixed layout (expected attraction, shared seeded negatives).

        On the CPU in float32 one compiled loop (``placement_cpu.refine``, the same arithmetic; ``compiled=False``
        forces the torch loop, which runs on any device).
        """
        gen = torch.Generator().manual_seed(0)
        negs = torch.randint(self.keys.shape[0], (self.n_epochs, self.n_negatives), generator=gen).to(y.device)
        w = w / w.max(1, keepdim=True).values  # per point: its place must not depend on the others in its batch
        rep = (5.0 * w.sum(1, keepdim=True) / self.n_negatives)  # UMAP: 5 negatives per sampled edge
        pos = self.values[nbr]  # [Q, k, 2]
        alphas = [self.learning_rate * (1.0 - e / self.n_epochs) for e in range(self.n_epochs)]
        if compiled and y.device.type == "cpu" and y.dtype == pos.dtype == w.dtype == torch.float32:
            out = y.numpy().copy()
            by_axis = pos.transpose(1, 2).contiguous().numpy()  # [Q, 2, k]: x and y each contiguous (SIMD)
            negs_by_axis = self.values[negs].transpose(1, 2).contiguous().numpy()  # [E, 2, n]
            refine(out, by_axis, w.contiguous().numpy(), rep[:, 0].contiguous().numpy(), negs_by_axis,
                   np.array(alphas, np.float32))
            return torch.from_numpy(out)
        y = y.clone()
        for e, alpha in enumerate(alphas):
            diff = y[:, None, :] - pos
            coeff = attraction_coeff(diff.pow(2).sum(2, keepdim=True).clamp_min(1e-12))
            grad = ((coeff * diff).clamp(-GRAD_CLIP, GRAD_CLIP) * w[:, :, None]).sum(1)
            ndiff = y[:, None, :] - self.values[negs[e]][None]
            ncoeff = repulsion_coeff(ndiff.pow(2).sum(2, keepdim=True))
            grad += (ncoeff * ndiff).clamp(-GRAD_CLIP, GRAD_CLIP).mean(1) * rep
            y += alpha * grad
        return y

    def _keep_prediction(self, z: torch.Tensor, y: torch.Tensor, nbr: torch.Tensor, decoder: Decoder) -> torch.Tensor:
        """Move points whose decoded class differs from their own towards their nearest reference of their class.

        Each such point moves the least fraction (of ``_STEPS``, plus ``EXTRA_STEPS``) of the way to that
        reference at which its decoded class becomes its own (the whole way when none does): near the decision
        boundary, not onto a sample, so neighbourhoods and boundary distances change as little as possible.
        """
        logits = self.surrogate_logits(z)
        own = logits.argmax(1)
        tied = normalized_gap(logits) < TIE_GAP
        bad = ((self.surrogate_classes(decoder.frame(y)) != own) & ~tied).nonzero().flatten()
        if len(bad) == 0:
            return y
        goal = y[bad].clone()
        same = self.classes[nbr[bad]] == own[bad, None]  # [b, k]
        found = same.any(1)
        first = same.float().argmax(1)
        goal[found] = self.values[nbr[bad[found], first[found]]]
        for i in (~found).nonzero().flatten().tolist():  # none of its class among its k nearest: search that class
            cand = (self.classes == own[bad[i]]).nonzero().flatten()
            if len(cand):
                goal[i] = self.values[cand[(self.keys[cand] - z[bad[i]]).pow(2).sum(1).argmin()]]
        t = torch.arange(1, _STEPS + 1, dtype=y.dtype, device=y.device) / _STEPS  # [S]
        cands = y[bad, None, :] + t[None, :, None] * (goal - y[bad])[:, None, :]  # [b, S, 2]
        ok = self.surrogate_classes(decoder.frame(cands.reshape(-1, 2))).reshape(len(bad), _STEPS) == own[bad, None]
        ok[:, -1] = True
        y = y.clone()
        first = (ok.float().argmax(1) + EXTRA_STEPS).clamp_max(_STEPS - 1)
        y[bad] = cands[torch.arange(len(bad)), first]
        return y


def _nearest_samples(enc: LayoutEncoder, X: torch.Tensor, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices [N, k] of the ``CONTINUITY_NEIGHBORS`` nearest samples (the first ``n_samples`` references) of each
    point in ``enc``'s frame, and whether each point is one of ``enc``'s references (samples or boundary points).

    The last answer is kept on ``enc`` (keyed by the features' digest, ``n_samples`` and the references' stamp):
    the next step's ``continue_places`` asks the same of this step's encoder for the same points (their neighbours
    "before"), a search of a quarter of a warm step's placement time at 2,000 x 8,000.
    """
    key = (features_digest(X.cpu().numpy()), n_samples, tuple(enc.keys.shape),
           *((t.data_ptr(), t._version) for t in (enc.keys, enc.mean, enc.axes, enc.scale)))
    cached = getattr(enc, "_nearest_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    idx, hit = _search_nearest_samples(enc, X, n_samples)
    enc._nearest_cache = (key, idx, hit)
    return idx, hit


def _search_nearest_samples(enc: LayoutEncoder, X: torch.Tensor, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """``_nearest_samples`` without its cache."""
    z = enc.reduce(X)
    k = min(CONTINUITY_NEIGHBORS, n_samples)
    idx = np.asarray(exact_query(enc.keys[:n_samples], z, k, device=z.device)[0])
    first = [torch.as_tensor(idx[:, 0], device=z.device)]
    if enc.keys.shape[0] > n_samples:  # boundary points handed back map onto their layout positions too
        first.append(n_samples + torch.as_tensor(exact_query(enc.keys[n_samples:], z, 1, device=z.device)[0][:, 0],
                                                 device=z.device))
    # exact distances to the nearest candidates (the search's matrix-product distances are not exact at 0)
    d = torch.stack([(z - enc.keys[j]).norm(dim=1) for j in first], 1).amin(1)
    return idx, (d <= 1e-3 * enc.spacing).cpu().numpy()


def _kept_share(before: np.ndarray, now: np.ndarray, n: int) -> np.ndarray:
    """Per row, the share of ``now``'s indices (each row distinct values below ``n``) also in ``before``'s row."""
    off = np.arange(len(now), dtype=np.int64)[:, None] * n
    return np.isin(now + off, before + off).reshape(now.shape).mean(1)


@torch.no_grad()
def continue_places(
    enc: LayoutEncoder, decoder: Decoder, X: torch.Tensor, placed: torch.Tensor, layout: torch.Tensor,
    prev_enc: LayoutEncoder, prev_X: torch.Tensor, prev_layout: torch.Tensor, prev_Y: torch.Tensor,
) -> torch.Tensor:
    """New points [N, 2] that keep their previous place relative to their nearest samples when those did not change.

    ``placed`` are ``X``'s placements on this step's layout (the samples at ``layout`` [n, 2]); ``prev_X`` the same
    points' features at the previous step, whose samples (the same samples, in the same order) lay at
    ``prev_layout`` and which were shown at ``prev_Y``. Each point's nearest samples now and then (each in its
    step's frame) are compared: a point that kept a share s of them goes a weight w = (s - ``CONTINUITY_FROM``) /
    (1 - ``CONTINUITY_FROM``), clipped to [0, 1], of the way from its placement to its previous place moved by its
    nearest samples' mean displacement. Why: a placement is recomputed from scratch at every step, so a point whose
    neighbourhood did not change still moves with every small change of the references around it; the map is meant
    to move where the model changed. A point whose continued place decodes to another class than its own, and a
    point that is a reference itself, keeps its placement (predictions and the layout stay exact).
    """
    n = layout.shape[0]
    now, hit = _nearest_samples(enc, X, n)
    before, _ = _nearest_samples(prev_enc, prev_X, n)
    w = np.clip((_kept_share(before, now, n) - CONTINUITY_FROM) / (1.0 - CONTINUITY_FROM), 0.0, 1.0)
    w[hit] = 0.0
    if not (w > 0).any():
        return placed
    shift = (layout - prev_layout)[torch.as_tensor(now, device=layout.device)].mean(1)
    wt = torch.as_tensor(w, dtype=placed.dtype, device=placed.device)[:, None]
    y = wt * (prev_Y + shift) + (1.0 - wt) * placed
    own = enc.surrogate_classes(enc.reduce(X))
    wrong = enc.surrogate_classes(decoder.frame(y)) != own
    y[wrong] = placed[wrong]
    return y
