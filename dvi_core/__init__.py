"""dvi_core — the DeepVisualInsight method: per-step parametric 2-D projection with an inverse.

Arrays and ``torch.nn.Module`` objects in, arrays out; no TensorBoard, no HTTP, no files except
``StepProjection.save``/``load``. One module per stage: ``neighbors`` (kNN), ``graph`` (fuzzy and
boundary complexes), ``boundary`` (boundary samples), ``layout`` (fast non-parametric UMAP layout),
``model`` (encoder/decoder), ``placement`` (the default variant's encoder), ``losses``, ``train``,
``projector`` (the estimator), ``landscape``, ``metrics``.

Public API::

    from dvi_core import DVIProjector, StepProjection

    proj = DVIProjector(n_neighbors=15, variant="dvi", device="cpu", seed=0)
    # keyword-only; also n_iter, layout_epochs, hidden, n_layers, batch_size (None = variant default),
    # lambda_temporal=0.3. Validated in fit_step (ValueError/TypeError, scikit-learn style messages).
    step = proj.fit_step(features, head, boundary=None, prev=None, prev_features=None, progress=None)
    #   features      float [N, D] representations of step t (N >= n_neighbors + 1, D >= 2, finite, not constant)
    #   head          nn.Module [*, D] -> logits [*, C]; must predict >= 2 classes on features
    #   boundary      [M, D] boundary-sample representations, or None to generate them (boundary.boundary_samples)
    #   prev          StepProjection of step t-1: warm start + temporal term (never mutated)
    #   prev_features [N, D] step t-1 features of the same samples; required with prev (for NPR)
    #   progress      callable(fraction in [0, 1])
    step.transform(X) -> float32 [N, 2];  step.inverse_transform(Y) -> float32 [M, D]
    step.transform(X, prev=step_t_1, prev_features=X_t_1, prev_embedding=Y_t_1)  # new points continue from
    #   where they were shown at step t-1, as far as their nearest samples did not change (default variant)
    step.embedding_ (float32 [N, 2]), step.bounds_ (x_min, y_min, x_max, y_max), step.npr_, step.n_features_in_
    step.save(path);  StepProjection.load(path, device="cpu")
    #   one plain .npz at exactly `path` (arrays + JSON, read with numpy.load(allow_pickle=False)); load raises
    #   ValueError ("... not a saved StepProjection of this version ...") for any other file

    dvi_core.landscape.render(step, head, *, resolution=256, bounds=None, n_classes=None) -> uint8 [R, R, 3]
    dvi_core.landscape.predict(step, head, points_2d) -> float32 [M, C] probabilities
    dvi_core.landscape.class_colors(n_classes) -> list of "#rrggbb"
    dvi_core.landscape.class_grid(step, head, *, resolution=256, bounds=None) -> (class [R, R], white [R, R])
    dvi_core.boundary.boundary_samples(head, features, *, n=None, seed=0, encoder=None, inputs=None,
                                       device="cpu") -> float32 [M, D]
    #   head / encoder: modules (eval mode, training mode restored) or any callables, e.g. model.features
    dvi_core.metrics.evaluate_step(step, head, train_features, *, test_features=None, boundary=None,
        test_boundary=None, prev=None, prev_train_features=None, prev_test_features=None, k=15,
        train_embedding=None, test_embedding=None,   # embeddings: the splits' transform, if already computed
        prev_train_embedding=None, prev_test_embedding=None,  # prev.transform of the previous features, if known
        bounds=None, resolution=256,                 # the landscape box the user is shown (default step.bounds_)
        max_samples=8000, seed=0)                    # larger splits: per-sample metrics over 2,000 of them; None: all
        -> {"train": {nn, boundary, ppr, ccr, temporal, trustworthiness, landscape_agreement, speckle},
            "test": {...}}
    and the metric functions nn_preservation, boundary_preservation, ppr, ccr, temporal_correlation,
    trustworthiness, neighbor_preserving_rate, landscape_agreement, speckle.

Variants: ``"dvi"`` (default) lays out the samples with a fast non-parametric UMAP optimiser (spectral init on
the first step, 400 epochs; afterwards 160 epochs warm-started from step t-1's layout, where a sample moves in
proportion to the share of its 15 neighbours it lost and one that kept 14 or 15 stays put, so the map moves
where the model changed; 200 / 80 epochs above 20,000 samples), then the boundary points alone against the fixed
samples (their edges would otherwise pull samples out of their neighbourhoods). Its encoder is non-parametric
(``placement.LayoutEncoder``): the step's samples and boundary points map exactly onto the layout; a new point
is placed as umap-learn's ``transform`` does (membership-weighted mean of its max(k, 40) nearest references, 64-d PCA
frame, then 100 deterministic epochs against the fixed layout) and, when its position would decode to another
class than its own, moved the least way (plus one step) towards its nearest reference of its class; given their
previous features and places, new points keep their previous place relative to their 40 nearest samples in
proportion to how many of them they kept (``placement.continue_places``). The decoder
is smooth: a small MLP in the same frame (trained from the layout plus jitter back to the features with
reconstruction + a prediction-preserving KL term + the temporal term) blended with a Gaussian kernel average of
the nearby samples' features (``model.KnnMemory``, width about the dot spacing, 16 neighbours), so the landscape
between dots is their neighbourhood's, without per-dot spikes or holes. Training dots that would then sit on
another class's colour (misclassified or ambiguous samples) are moved the least way onto their class's region
(``settle``), next to the boundary they crossed. The saved file grows with N (about N x (P + 2 + 1 + 2) floats
plus the kNN graph). ``"faithful"`` is the paper's recipe: parametric-UMAP cross-entropy on weight-sampled
complex edges + reconstruction + 0.3 * mean(NPR) * sum ||theta_t - theta_{t-1}||^2, warm-started from step t-1.

Metrics are fractions in [0, 1] (CCR: mean absolute confidence change, lower is better) except the
temporal correlation, a Spearman correlation in [-1, 1] (None on the first step).

D = 2 is allowed (the map is still learned, which is handy for toy data); D < 2 is rejected.
"""

from . import boundary, landscape, metrics
from .projector import DVIProjector, StepProjection

__version__ = "0.5.5"
"""Version of the method: part of the plugin's cache key, so results of another version are never served."""

__all__ = ["__version__", "DVIProjector", "StepProjection", "boundary", "landscape", "metrics"]
