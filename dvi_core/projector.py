"""The public estimator: ``DVIProjector.fit_step`` builds one ``StepProjection`` per training step.

Pipeline of one step: boundary samples -> kNN -> fuzzy complex + boundary complex ->
(default variant) non-parametric layout warm-started from step t-1 -> encoder/decoder training
warm-started from step t-1 with the temporal term -> a new, immutable-by-convention ``StepProjection``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from . import boundary as _boundary
from . import graph, layout, persist
from .metrics import neighbor_preserving_rate
from .model import Decoder, Encoder, build_decoder, build_models, forget, memorize, refit_frame, set_frame
from .neighbors import cross_query, exact_query, features_digest, knn
from .placement import LayoutEncoder, continue_places
from .settle import settle
from .train import LossWeights, TrainData, train_models
from .validation import check_fit_inputs, check_head_classes, check_params, check_transform_inputs

VARIANTS = ("dvi", "faithful")


@dataclass(frozen=True)
class _Recipe:
    """Settings a variant derives from the projector's hyper-parameters and the step's position."""

    hidden: int
    n_layers: int
    n_components: int
    n_iter: int
    batch_size: int
    learning_rate: float
    layout_epochs: int
    layout_lr: float
    weights: LossWeights
    placement: bool = False  # kNN placement encoder (placement.LayoutEncoder) + decoder memory, vs an MLP encoder
    boundary_weight: float = 1.0  # scale of the boundary complexes' edge weights against the sample complex
    mobility_floor: float = 1.0  # warm layout: step scale of a sample that kept all its neighbours (change ramps up)
    frozen_below: float = 0.0  # warm layout: samples whose change is below this do not move at all
    mobility_power: float = 1.0  # warm layout: mobility = floor + (1 - floor) * change ** power
    mobility_power_max: float = 0.0  # > power: the power rises to this as the step's median change crosses ...
    steep_change: tuple[float, float] = (0.2, 0.4)  # ... this range (linearly between its ends)
    neighbors_share: float = 0.0  # warm layout: change = (1 - share) * own loss + share * its neighbours' mean loss
    memory_tau: float = 0.02  # decoder memory kernel width (squared, relative to 4 x the squared dot spacing)
    memory_samples_only: bool = False  # the decoder remembers the samples only, not the boundary points
    settle: bool = False  # move dots whose decoded class differs onto their class's region (settle.settle)
    boundary_epochs: int = 0  # > 0: lay out the samples alone, then only the boundary points for this many epochs


#: Steps with more samples than this use the cheaper layout schedule (``_layout_epochs``).
LONG_LAYOUT_MAX_N = 20_000


def _layout_epochs(n_samples: int, warm: bool) -> int:
    """Epochs of the default variant's layout: 400 cold / 160 warm up to ``LONG_LAYOUT_MAX_N`` samples, else 200/80."""
    if n_samples <= LONG_LAYOUT_MAX_N:
        return 160 if warm else 400
    return 80 if warm else 200


def warm_mobility(npr: np.ndarray, knn: np.ndarray, recipe: _Recipe) -> np.ndarray:
    """Per-sample step scale [N] of a warm layout, from each sample's neighbour-preserving rate ``npr`` [N] and its
    current kNN graph ``knn`` [N, k].

    A sample's change is its share of lost neighbours blended with its neighbours' mean share
    (``recipe.neighbors_share``); it does not move at all below ``recipe.frozen_below``, else its steps are scaled by
    ``floor + (1 - floor) * change ** power`` (``_power``: steeper for a step where most samples changed). Why: 2-D
    movement should follow high-dimensional change (the map moves where the model changed), while a sample whose
    neighbours move needs to move with them to keep its neighbourhood.
    """
    lost = 1.0 - np.asarray(npr, np.float64)
    share = recipe.neighbors_share
    change = lost if share == 0 else (1.0 - share) * lost + share * lost[knn].mean(1)
    floor = recipe.mobility_floor
    move = floor + (1.0 - floor) * change ** _power(recipe, change)
    move[change < recipe.frozen_below] = 0.0
    return move.astype(np.float32)


def _power(recipe: _Recipe, change: np.ndarray) -> float:
    """The mobility's power for a step with these per-sample changes: ``recipe.mobility_power``, rising to
    ``recipe.mobility_power_max`` as the median change crosses ``recipe.steep_change``.

    Why: where most neighbourhoods change (a first epoch, or every epoch of noisy-label training), a squared change
    still moves most samples most of the way and movement stops ranking with change; a steeper power keeps the
    ranking. Where few change, a steeper power would leave the samples that changed a little behind their
    neighbourhoods (NN preservation falls).
    """
    top = recipe.mobility_power_max
    if top <= recipe.mobility_power or len(change) == 0:
        return recipe.mobility_power
    lo, hi = recipe.steep_change
    f = min(1.0, max(0.0, (float(np.median(change)) - lo) / (hi - lo)))
    return recipe.mobility_power + f * (top - recipe.mobility_power)


def _recipe(p: DVIProjector, n_features: int, warm: bool, n_samples: int = 0) -> _Recipe:
    if p.variant == "faithful":
        return _Recipe(
            hidden=p.hidden or max(64, n_features // 2), n_layers=p.n_layers or 4, n_components=n_features,
            n_iter=p.n_iter or (200 if warm else 400), batch_size=p.batch_size or 500,
            learning_rate=1e-3, layout_epochs=0, layout_lr=0.0,
            weights=LossWeights(umap=1.0, rec=1.0, pred=0.0, temporal=p.lambda_temporal),
        )
    return _Recipe(
        hidden=p.hidden or 128, n_layers=p.n_layers or 2, n_components=min(n_features, 64),
        # benchmark, epochs 1-3: the decoder's MLP only fills the map away from the samples (the memory decides near
        # them), so 100/40 iterations (was 200/100) cost nothing measurable and save a fifth of a warm step; 20 warm
        # (method 0.5.3, epochs 1-9, two seeds) neither: every metric within the seeds' spread, 0.13 s less a step
        # (10 warm: speckle max 0.16 % -> 0.22 %)
        n_iter=p.n_iter or (20 if warm else 100), batch_size=p.batch_size or 1024, placement=True,
        # the samples are laid out on their own graph, then only the boundary points move against them: boundary
        # points pulling on samples cost 0.045 of NN15 train at epoch 0 (0.320 vs 0.365 for the samples alone);
        # with them placed afterwards (100 epochs) NN15 train 0.354, boundary15 train 0.456 (joint: 0.491)
        # (warm steps 60: the boundary points start near their samples again; epochs 1-9, two seeds: boundary15
        # train 0.449 / 0.449 -> 0.446 / 0.444, test 0.397 / 0.397 -> 0.399 / 0.396, 0.08 s less a step)
        boundary_weight=1.0, boundary_epochs=60 if warm else 100,
        # warm layout (epochs 1-3): a sample moves in proportion to the share of its neighbours it lost, one that kept
        # 14 of 15 does not move at all, at full learning rate: temporal train 0.14 / 0.10 / 0.08 -> 0.26 / 0.44 /
        # 0.61, test 0.24 / 0.12 / 0.12 -> 0.30 / 0.27 / 0.24, NN15 about the same. (Mobility (1 - NPR)^2: temporal
        # train e1 0.33 -> 0.64 but NN15 train -0.02 to -0.05 and test temporal lower from e2 on.)
        # Method 0.5.4 (epochs 1-9, two seeds, test points continued): a sample's change is half its own loss and half
        # its current neighbours' mean loss (a sample whose neighbours move can follow them), and its mobility is
        # that change squared (small changes move little, so movement ranks with change): NN15 train 0.355 / 0.358 ->
        # 0.366 / 0.366, temporal test 0.304 / 0.306 -> 0.314 / 0.311, temporal train at epoch 1 0.305 / 0.327 ->
        # 0.348 / 0.332 (mean over epochs 0.678 / 0.681 -> 0.564 / 0.564), NN15 test 0.426 / 0.430 -> 0.427 / 0.427,
        # boundary15 test 0.399 / 0.403 -> 0.397 / 0.397. Squared alone: temporal train e1 0.387 but NN15 test 0.420;
        # the share 0.6-0.7: NN15 test 0.427-0.428, temporal train mean 0.51-0.45; power 1.5: e1 0.308.
        # Method 0.5.5: the power rises from 2 to 3 as the step's median change goes from 0.2 to 0.4 (the benchmark
        # CNN's epoch 1 has 0.44, its later epochs 0.09-0.22; every epoch of the noisy-label MLP cross-check
        # 0.40-0.46). Cross-check, epochs 1-5: temporal train / test 0.303 / 0.320 -> 0.397 / 0.389 (1-2/5 -> 5/5
        # epochs at or above AlignedUMAP), NN15 and boundary15 unchanged; CNN, two seeds: NN15 test 0.427 / 0.425 ->
        # 0.420 / 0.422, boundary15 test 0.397 / 0.395 -> 0.393 / 0.393, temporal train at epoch 1 0.342 / 0.334 ->
        # 0.423 / 0.420, temporal test 0.308 / 0.312 -> 0.315 / 0.319. A fixed power 3: NN15 train below umap-learn's at
        # 3 of 9 CNN epochs.
        mobility_floor=0.0, mobility_power=2.0, frozen_below=0.1, neighbors_share=0.5, mobility_power_max=3.0,
        # epoch 3: a smooth memory (tau 0.02 -> 1.0-1.5) of the samples only, then settling the dots that decode
        # to another class: speckle 1.0 % -> 0.0 %, landscape agreement train 0.94 -> 0.998, test 0.86 -> 0.97;
        # NN15 train -0.004
        memory_tau=1.0, memory_samples_only=True, settle=True,
        # layout epochs, cold / warm (epochs 0-3, samples laid out alone): 200 / 80 -> 400 / 160: NN15 train 0.354 ->
        # 0.368 (e0), test 0.391 -> 0.410 (e0) and about +0.02 on e1-e3, test PPR e1 0.967 -> 0.971; 240 warm epochs
        # no better (temporal train e1 0.32 -> 0.30). Above 20,000 samples the cheaper 200 / 80 (umap-learn itself
        # drops from 500 to 200 epochs above 10,000 samples), so large steps cost what they did.
        learning_rate=2e-3, layout_lr=1.0,
        layout_epochs=p.layout_epochs or _layout_epochs(n_samples, warm),
        weights=LossWeights(umap=0.0, rec=0.2, pred=1.0, temporal=p.lambda_temporal,
                            decode_target=True),
    )


class StepProjection:
    """A fitted step: encoder (``transform``), decoder (``inverse_transform``) and the training layout.

    Attributes: ``embedding_`` float32 [N, 2] (the step's features projected), ``bounds_``
    (x_min, y_min, x_max, y_max) square box around ``embedding_`` plus a 10 % margin,
    ``n_features_in_``, ``npr_`` (mean neighbour-preserving rate w.r.t. step t-1, or None),
    ``knn_`` int32 [N, k] the step's kNN graph and ``features_digest_`` a digest of the features it was fit on
    (the next step reuses the graph for its NPR instead of recomputing it).
    """

    def __init__(
        self, encoder: Encoder | LayoutEncoder, decoder: Decoder, embedding: np.ndarray, config: dict[str, Any],
        *, device: str = "cpu", npr: float | None = None, knn: np.ndarray | None = None, digest: str = "",
    ) -> None:
        self.encoder = encoder.to(device).eval()
        self.decoder = decoder.to(device).eval()
        self.embedding_ = np.asarray(embedding, dtype=np.float32)
        self.config_ = dict(config)
        self.device = device
        self.npr_ = npr
        self.knn_ = knn
        self.features_digest_ = digest
        self.n_features_in_ = int(config["n_features"])
        self.bounds_ = square_bounds(self.embedding_)

    @property
    def boundary_embedding_(self) -> np.ndarray | None:
        """Layout positions float32 [M, 2] of the M boundary points the step was fit with, in their order (what
        ``transform`` maps them to: they are references of the placement encoder); None for the MLP encoder."""
        if not isinstance(self.encoder, LayoutEncoder):
            return None
        return self.encoder.values[len(self.embedding_) :].cpu().numpy()

    def knn_of(self, X: np.ndarray, k: int) -> np.ndarray:
        """k-nearest-neighbour indices [N, k] of ``X``: the stored graph when ``X`` is what this step was fit on."""
        if self.knn_ is not None and self.knn_.shape == (len(X), k) and self.features_digest_ == features_digest(X):
            return self.knn_
        return knn(np.asarray(X, np.float32), k, seed=int(self.config_.get("seed", 0)), device=self.device)[0]

    @torch.no_grad()
    def transform(
        self, X: np.ndarray, *, prev: StepProjection | None = None, prev_features: np.ndarray | None = None,
        prev_embedding: np.ndarray | None = None,
    ) -> np.ndarray:
        """Project representations [N, D] to float32 [N, 2].

        With ``prev`` (the step this one was fitted after), ``prev_features`` (the same N points' features at that
        step) and ``prev_embedding`` (where they were shown then, [N, 2]), new points keep their previous place
        relative to their nearest samples as far as those did not change (``placement.continue_places``): the map
        moves where the model changed. Applies to the default variant when both steps hold the same samples;
        otherwise, and without these arguments, the points are placed afresh.
        """
        X, Xp, Yp = check_transform_inputs(self, X, prev, prev_features, prev_embedding)
        if isinstance(self.encoder, LayoutEncoder):
            Y = _apply(lambda t: self.encoder(t, self.decoder), X, self.device, 2)
        else:
            Y = _apply(self.encoder, X, self.device, 2)
        if prev is None or Xp is None or Yp is None:
            return Y
        if not (isinstance(self.encoder, LayoutEncoder) and isinstance(prev.encoder, LayoutEncoder)
                and len(prev.embedding_) == len(self.embedding_) and len(X)):
            return Y
        dev = self.device
        out = continue_places(
            self.encoder, self.decoder, torch.from_numpy(X).to(dev), torch.from_numpy(Y).to(dev),
            torch.from_numpy(self.embedding_).to(dev), prev.encoder.to(dev), torch.from_numpy(Xp).to(dev),
            torch.from_numpy(prev.embedding_).to(dev), torch.from_numpy(Yp).to(dev))
        return out.cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def inverse_transform(self, Y: np.ndarray) -> np.ndarray:
        """Map 2-D points [M, 2] back to representations, float32 [M, D]."""
        Y = np.ascontiguousarray(Y, dtype=np.float32)
        if Y.ndim != 2 or Y.shape[1] != 2:
            raise ValueError(
                "The 'Y' parameter of StepProjection.inverse_transform must have shape [M, 2]. "
                f"Got shape {Y.shape} instead."
            )
        if not np.isfinite(Y).all():
            raise ValueError("The 'Y' parameter of StepProjection.inverse_transform must be finite. "
                             "Got NaN or inf instead.")
        return _apply(self.decoder, Y, self.device, self.n_features_in_)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write one plain ``.npz`` file at exactly ``path`` (arrays + JSON; no pickle, see ``persist``).

        The decoder's memory values equal the placement encoder's keys (both are the references' frame
        coordinates): stored once, which keeps the file about 40 % smaller.
        """
        meta = {"config": self.config_, "npr": self.npr_, "digest": self.features_digest_}
        persist.write(path, self.encoder, self.decoder, self.embedding_, self.knn_, meta)

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu") -> StepProjection:
        """Read a file written by ``save`` with ``numpy.load(allow_pickle=False)``.

        Raises ValueError ("... is not a saved StepProjection of this version ...; project the step again")
        for anything else: another format or version, a truncated or garbage file, object arrays.
        """
        enc, dec, emb, knn_, meta = persist.read(path, _models_of)
        npr = meta.get("npr")
        return cls(enc, dec, emb, meta["config"], device=device, npr=None if npr is None else float(npr),
                   knn=knn_, digest=str(meta.get("digest", "")))


def _models_of(cfg: dict[str, Any]) -> tuple[Encoder | LayoutEncoder, Decoder]:
    """Empty models shaped as ``cfg`` says, to load a state dict into."""
    if cfg["encoder"] == "placement":
        enc = LayoutEncoder(cfg["n_features"], cfg["n_components"], cfg["n_ref_encoder"], cfg["n_logits"],
                            cfg["n_neighbors"])
        return enc, build_decoder(cfg["n_features"], cfg["hidden"], cfg["n_layers"], cfg["n_components"], cfg["n_ref"])
    return build_models(cfg["n_features"], cfg["hidden"], cfg["n_layers"], cfg["n_components"])


@torch.no_grad()
def _apply(model: Callable[[torch.Tensor], torch.Tensor], X: np.ndarray, device: str, width: int) -> np.ndarray:
    out = [model(torch.from_numpy(X[s : s + 8192]).to(device)).cpu() for s in range(0, len(X), 8192)]
    if not out:
        return np.zeros((0, width), np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def square_bounds(Y: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """Square box centred on the points' bounding box, side = largest extent * (1 + 2 * margin)."""
    lo, hi = Y.min(0), Y.max(0)
    c = (lo + hi) / 2
    half = max(float((hi - lo).max()), 1e-6) * (0.5 + margin)
    return (float(c[0] - half), float(c[1] - half), float(c[0] + half), float(c[1] + half))


class DVIProjector:
    """DeepVisualInsight projector: fits one ``StepProjection`` per step, step t from step t-1.

    Hyper-parameters are keyword-only and validated in ``fit_step``. ``variant="dvi"`` (default)
    lays out samples and boundary points with a warm-started non-parametric UMAP optimiser, places new
    points against that layout (``placement.LayoutEncoder``) and trains a decoder with a
    prediction-preserving term; ``variant="faithful"`` is the paper's recipe (parametric UMAP CE +
    reconstruction + temporal). ``None`` means "the variant's default" for the size-related settings.
    """

    def __init__(
        self, *, n_neighbors: int = 15, variant: str = "dvi", device: str = "cpu", seed: int = 0,
        n_iter: int | None = None, layout_epochs: int | None = None, hidden: int | None = None,
        n_layers: int | None = None, batch_size: int | None = None, lambda_temporal: float = 0.3,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.variant = variant
        self.device = device
        self.seed = seed
        self.n_iter = n_iter
        self.layout_epochs = layout_epochs
        self.hidden = hidden
        self.n_layers = n_layers
        self.batch_size = batch_size
        self.lambda_temporal = lambda_temporal

    def fit_step(
        self,
        features: np.ndarray,
        head: torch.nn.Module,
        boundary: np.ndarray | None = None,
        prev: StepProjection | None = None,
        prev_features: np.ndarray | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> StepProjection:
        """Fit the projection of one step and return a new ``StepProjection`` (``prev`` is not modified)."""
        check_params(self)
        X, B, Xp = check_fit_inputs(self, features, boundary, prev, prev_features)
        report = progress or (lambda f: None)
        torch.manual_seed(self.seed)
        head_c = copy.deepcopy(head).to(self.device).eval().requires_grad_(False)
        logits = _head_logits(head_c, X, self.device)
        check_head_classes(logits)
        if B is None:
            B = _boundary.boundary_samples(head_c, X, seed=self.seed, device=self.device)
        if len(B) < 2:
            raise ValueError(
                f"The 'boundary' parameter of DVIProjector.fit_step must hold at least 2 boundary samples. "
                f"Got {len(B)} (none could be generated for this head) instead."
            )
        report(0.05)
        recipe = _recipe(self, X.shape[1], warm=prev is not None, n_samples=len(X))
        edges, idx_xb, graph_x, knn_x, sample_edges = self._complex(X, B, recipe.boundary_weight)
        npr_i = self._npr(knn_x, Xp, prev) if Xp is not None and prev is not None else None
        npr = None if npr_i is None else float(npr_i.mean())
        report(0.15)
        target = None
        if recipe.layout_epochs > 0:
            mobility = None if npr_i is None else warm_mobility(npr_i, knn_x, recipe)
            target = self._layout(X, B, idx_xb, edges, sample_edges, graph_x, prev, mobility, recipe, report)
        enc, dec = self._init_models(X, prev, recipe)
        trained = (dec,) if enc is None else (enc, dec)
        prev_params = None
        if prev is not None:
            prev_params = [p.detach().clone() for m in trained for p in m.parameters()]
        data = self._train_data(X, B, head_c, logits, edges, target)
        train_models(
            enc, dec, head_c, data, recipe.weights, n_iter=recipe.n_iter, batch_size=recipe.batch_size,
            learning_rate=recipe.learning_rate, prev_params=prev_params, npr_mean=npr or 0.0,
            seed=self.seed, progress=lambda f: report(0.4 + 0.6 * f),
        )
        config = {"n_features": int(X.shape[1]), "hidden": recipe.hidden, "n_layers": recipe.n_layers,
                  "n_components": recipe.n_components, "encoder": "placement" if recipe.placement else "mlp",
                  "variant": self.variant, "n_neighbors": int(self.n_neighbors), "seed": int(self.seed)}
        dec.eval()
        if recipe.placement and data.target is not None:
            dec.memory.tau.fill_(recipe.memory_tau)
            if recipe.settle:
                settled, _ = settle(data.target.cpu().numpy(), data.X, logits.argmax(1).cpu().numpy(), dec, head_c,
                                    n_samples=len(X))
                data.target = torch.as_tensor(settled, device=self.device)
            enc = self._placement_encoder(dec, data, X)
            if not recipe.settle:  # settle leaves the samples remembered at their final places
                n_mem = len(X) if recipe.memory_samples_only else len(data.X)
                memorize(dec, data.target[:n_mem], data.X[:n_mem])
            config.update(n_ref=int(dec.memory.keys.shape[0]), n_ref_encoder=int(enc.keys.shape[0]),
                          n_logits=int(enc.logit_map.shape[1]))
            emb = data.target[: len(X)].cpu().numpy()
        else:
            emb = _apply(enc.eval(), X, self.device, 2)
        report(1.0)
        return StepProjection(enc, dec, emb, config, device=self.device, npr=npr, knn=knn_x.astype(np.int32),
                              digest=features_digest(X))

    def _placement_encoder(self, dec: Decoder, data: TrainData, X: np.ndarray) -> LayoutEncoder:
        """The kNN placement encoder over the step's samples and boundary points, in the decoder's frame.

        (Searching the full features instead, as umap-learn's transform does, measured worse on the benchmark:
        test NN15 0.403 -> 0.397, test PPR 0.975 -> 0.940 at epoch 3; again at epoch 0 with method 0.5.0: 0.391 ->
        0.376 and 0.947 -> 0.863. References without the boundary points: test boundary15 0.378 -> 0.325.)
        """
        enc = LayoutEncoder(X.shape[1], dec.axes.shape[0], n_neighbors=self.n_neighbors).to(self.device)
        for name in ("mean", "axes", "scale"):
            getattr(enc, name).copy_(getattr(dec, name))
        enc.store(data.X, data.target, data.logits)
        return enc.eval()

    def _complex(
        self, X: np.ndarray, B: np.ndarray, boundary_weight: float = 1.0
    ) -> tuple[graph.Edges, np.ndarray, sp.csr_matrix, np.ndarray, graph.Edges]:
        """Edges of all complexes; boundary points' nearest samples; the sample complex; kNN of X; its edges alone."""
        k, n = self.n_neighbors, len(X)
        kb = min(k, len(B) - 1)
        idx, dist = knn(X, k, seed=self.seed, device=self.device)
        G = graph.fuzzy_simplicial_set(idx, dist)
        # each sample's nearest boundary points and each boundary point's nearest samples: one pass over the
        # |X| x |B| distances (the costly search at 60,000 x 6,000 x 512)
        (bi, bd), (idx_xb, _) = cross_query(X, B, kb, k, device=self.device)
        extra = [graph.boundary_complex(bi, bd, n) * boundary_weight]
        if kb >= 2:
            ii, dd = exact_query(B, B, kb, exclude_self=True, device=self.device)
            Gb = graph.fuzzy_simplicial_set(ii, dd).tocoo()
            extra.append(type(Gb)((Gb.data * boundary_weight, (Gb.row + n, Gb.col + n))))
        edges = graph.complex_edges(G, extra, n + len(B), n_epochs=200)
        return edges, idx_xb, G, idx, graph.complex_edges(G, [], n, n_epochs=200)

    def _npr(self, knn_now: np.ndarray, Xp: np.ndarray, prev: StepProjection) -> np.ndarray:
        """Per-sample neighbour-preserving rates; step t-1's graph comes from ``prev`` when it was fit on ``Xp``."""
        return neighbor_preserving_rate(prev.knn_of(Xp, self.n_neighbors), knn_now)

    def _layout(
        self, X: np.ndarray, B: np.ndarray, idx_xb: np.ndarray, edges: graph.Edges, sample_edges: graph.Edges,
        graph_x: sp.csr_matrix, prev: StepProjection | None, move: np.ndarray | None, recipe: _Recipe,
        report: Callable[[float], None],
    ) -> np.ndarray:
        """Non-parametric layout of samples + boundary points, warm-started from step t-1.

        With ``recipe.boundary_epochs`` the samples are laid out on their own complex first (``sample_edges``) and
        the boundary points, started at the mean of their nearest samples, then move alone against them: the
        boundary points' edges no longer pull the samples out of their neighbourhoods.
        """
        mobility = None
        if prev is not None and move is not None and len(prev.embedding_) == len(X):
            init = prev.embedding_.copy()
            mobility = np.concatenate([move, np.ones(len(B))]).astype(np.float32)
        elif prev is not None:
            init = prev.transform(X)
        else:
            init = layout.spectral_init(graph_x, seed=self.seed)
            if init is None:
                init = layout.pca_init(X)
        rng = np.random.default_rng(self.seed)
        if recipe.boundary_epochs > 0:
            Ys = layout.optimize_layout(
                sample_edges, init, n_epochs=recipe.layout_epochs, learning_rate=recipe.layout_lr, seed=self.seed,
                device=self.device, progress=lambda f: report(0.15 + 0.2 * f),
                mobility=None if mobility is None else mobility[: len(X)])
            init_b = Ys[idx_xb].mean(1) + rng.normal(0, 1e-3 * Ys.std(), (len(B), 2)).astype(np.float32)
            only_b = np.concatenate([np.zeros(len(X)), np.ones(len(B))]).astype(np.float32)
            return layout.optimize_layout(
                edges, np.concatenate([Ys, init_b]), n_epochs=recipe.boundary_epochs, learning_rate=recipe.layout_lr,
                seed=self.seed + 1, device=self.device, mobility=only_b)
        init_b = init[idx_xb].mean(1) + rng.normal(0, 1e-3 * init.std(), (len(B), 2)).astype(np.float32)
        return layout.optimize_layout(
            edges, np.concatenate([init, init_b]), n_epochs=recipe.layout_epochs,
            learning_rate=recipe.layout_lr, seed=self.seed, device=self.device,
            progress=lambda f: report(0.15 + 0.25 * f), mobility=mobility,
        )

    def _init_models(
        self, X: np.ndarray, prev: StepProjection | None, recipe: _Recipe
    ) -> tuple[Encoder | None, Decoder]:
        """Models to train: (None, decoder) for the placement variant, (encoder, decoder) otherwise.

        Warm-started from ``prev`` (moved onto this step's frame) when its architecture matches.
        """
        arch = (recipe.hidden, recipe.n_layers, recipe.n_components)
        kind = "placement" if recipe.placement else "mlp"
        Xt = torch.as_tensor(X, device=self.device)
        if prev is not None and (*arch, kind) == tuple(prev.config_[k] for k in (
                "hidden", "n_layers", "n_components", "encoder")):
            dec = copy.deepcopy(prev.decoder)
            forget(dec)
            enc = None if recipe.placement else copy.deepcopy(prev.encoder)
            refit_frame((dec,) if enc is None else (enc, dec), Xt)
        elif recipe.placement:
            enc, dec = None, build_decoder(X.shape[1], *arch)
            set_frame((dec,), Xt, recipe.n_components)
        else:
            enc, dec = build_models(X.shape[1], *arch)
            set_frame((enc, dec), Xt, recipe.n_components)
        if enc is not None:
            enc = enc.to(self.device).train()
        return enc, dec.to(self.device).train()

    def _train_data(
        self, X: np.ndarray, B: np.ndarray, head: torch.nn.Module, logits: torch.Tensor,
        edges: graph.Edges, target: np.ndarray | None,
    ) -> TrainData:
        dev = self.device
        XB = torch.as_tensor(np.concatenate([X, B]), device=dev)
        lg = torch.cat([logits, _head_logits(head, B, dev)])
        tgt = None if target is None else torch.as_tensor(target, device=dev)
        return TrainData(
            X=XB, logits=lg, head_idx=torch.as_tensor(edges.head, device=dev),
            tail_idx=torch.as_tensor(edges.tail, device=dev),
            edge_weight=torch.as_tensor(edges.weight, device=dev), target=tgt,
            target_scale=1.0 if target is None else float(target.std() + 1e-12),
        )


@torch.no_grad()
def _head_logits(head: torch.nn.Module, X: np.ndarray, device: str) -> torch.Tensor:
    t = torch.as_tensor(X, device=device)
    return torch.cat([head(t[s : s + 8192]) for s in range(0, len(t), 8192)])
