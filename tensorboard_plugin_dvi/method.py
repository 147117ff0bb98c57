"""The plugin's one gateway to ``dvi_core``: every use of the method by the TensorBoard side goes through here.

No HTTP and no threads here. :func:`project_step` takes a run's store, a step record and the previous step's result,
and returns the new result written to the cache (the job service and the offline CLI both call it); the rest loads
saved models and renders landscapes and predictions from them in bounded chunks, so a large request never holds more
than :data:`CHUNK` decoded points in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import dvi_core
from dvi_core import DVIProjector, StepProjection, boundary, landscape, metrics
from dvi_core.projector import square_bounds
from tensorboard_plugin_dvi import cache, storage

CHUNK = 16384
"""Points decoded per batch when rendering or predicting (16k x 512 float32 features = 32 MiB)."""

__all__ = ["CHUNK", "version", "project_step", "load_model", "render", "predict", "class_colors", "square_bounds",
           "boundary_samples"]


def version() -> str:
    """The method's version: part of every cache key, so results of another version are never served."""
    return dvi_core.__version__


def load_model(path: str, device: str = "cpu") -> StepProjection:
    """A saved visualization model (pickle-free file); ``ValueError`` when it cannot be read."""
    return StepProjection.load(path, device=device)


def class_colors(n_classes: int) -> list[str]:
    """``"#rrggbb"`` per class index, the landscape's own colours."""
    return landscape.class_colors(n_classes) if n_classes else []


def boundary_samples(head: torch.nn.Module, features: np.ndarray, **kwargs: Any) -> np.ndarray:
    """DVI boundary samples (see ``dvi_core.boundary.boundary_samples``)."""
    return boundary.boundary_samples(head, features, **kwargs)


@torch.no_grad()
def _logits(model: StepProjection, head: torch.nn.Module, points: np.ndarray) -> torch.Tensor:
    """Head logits at 2-D points, decoded :data:`CHUNK` points at a time."""
    device = next((p.device for p in head.parameters()), torch.device("cpu"))
    out = []
    for start in range(0, len(points), CHUNK):
        feats = model.inverse_transform(points[start:start + CHUNK])
        out.append(head(torch.from_numpy(feats).to(device)).float().cpu())
    return torch.cat(out) if out else torch.zeros((0, 0))


def render(model: StepProjection, head: torch.nn.Module, bounds: tuple[float, float, float, float], size: int,
           n_classes: int, cell: int = 1) -> np.ndarray:
    """The landscape over ``bounds`` as uint8 [size, size, 3] (row 0 is the top, largest y).

    ``cell > 1`` renders adaptively: the head is evaluated on a grid every ``cell`` pixels, and exactly at every
    pixel of a cell whose corners disagree in class or come near a decision boundary; inside the other cells the
    logits are interpolated bilinearly. A zoomed tile at level z with ``cell <= 2**z`` thus loses nothing the
    overview shows (its cells are no larger than one overview pixel) and is exact around every boundary.
    """
    pts = landscape.grid_points(bounds, size)
    if cell <= 1 or size < 4 * cell:
        return landscape.colorize(_logits(model, head, pts), n_classes).reshape(size, size, 3)
    return landscape.colorize(_adaptive_logits(model, head, pts, size, cell), n_classes).reshape(size, size, 3)


SAFE_MARGIN = landscape.WHITE_MARGIN + 0.05
"""A cell is interpolated only when all its corners are this far from a tie (clear of the white band)."""


def _adaptive_logits(model: StepProjection, head: torch.nn.Module, pts: np.ndarray, size: int,
                     cell: int) -> torch.Tensor:
    """Logits at every pixel: exact where class or boundary may change inside a cell, interpolated elsewhere."""
    knots = np.unique(np.r_[np.arange(0, size, cell), size - 1])  # pixel rows/columns evaluated exactly
    grid = pts.reshape(size, size, 2)
    coarse = _logits(model, head, grid[np.ix_(knots, knots)].reshape(-1, 2)).reshape(len(knots), len(knots), -1)
    cls = coarse.argmax(2).numpy()
    safe = (boundary.normalized_gap(coarse.reshape(-1, coarse.shape[2])) >= SAFE_MARGIN).reshape(cls.shape).numpy()
    uniform = ((cls[:-1, :-1] == cls[1:, :-1]) & (cls[:-1, :-1] == cls[:-1, 1:]) & (cls[:-1, :-1] == cls[1:, 1:])
               & safe[:-1, :-1] & safe[1:, :-1] & safe[:-1, 1:] & safe[1:, 1:])
    pos = np.arange(size)
    k = np.clip(np.searchsorted(knots, pos, side="right") - 1, 0, len(knots) - 2)  # the cell of each pixel
    t = torch.from_numpy(((pos - knots[k]) / (knots[k + 1] - knots[k])).astype(np.float32))
    ki = torch.from_numpy(k)
    ty, tx = t[:, None, None], t[None, :, None]
    top = coarse[ki][:, ki] * (1 - tx) + coarse[ki][:, ki + 1] * tx
    bottom = coarse[ki + 1][:, ki] * (1 - tx) + coarse[ki + 1][:, ki + 1] * tx
    out = (top * (1 - ty) + bottom * ty).reshape(size * size, -1)
    exact = ~torch.from_numpy(uniform)[ki][:, ki].reshape(-1).numpy()
    if exact.any():
        out[torch.from_numpy(exact)] = _logits(model, head, pts[exact])
    return out


def predict(model: StepProjection, head: torch.nn.Module, points: np.ndarray) -> np.ndarray:
    """Class probabilities float32 [M, C] that head(decoder(point)) gives at 2-D points [M, 2]."""
    return torch.softmax(_logits(model, head, points), 1).numpy().astype(np.float32)


def _aligned_prev(prev_data: storage.StepData | None, data: storage.StepData) -> np.ndarray | None:
    """Previous step's features of the same samples in the same order, or None when the sample sets differ."""
    if prev_data is None or prev_data.features.shape[1] != data.features.shape[1]:
        return None
    if np.array_equal(prev_data.ids, data.ids):
        return prev_data.features.astype(np.float32)
    order = {int(i): k for k, i in enumerate(prev_data.ids)}
    if not all(int(i) in order for i in data.ids):
        return None
    return prev_data.features[[order[int(i)] for i in data.ids]].astype(np.float32)


def project_step(store: storage.RunStore, results: cache.ResultCache, record: dict[str, Any],
                 prev_record: dict[str, Any] | None, *, device: str = "cpu",
                 progress: Callable[[float], None] | None = None) -> cache.StepResult:
    """Fit the visualization model of ``record``'s step (warm-started from ``prev_record``'s), cache and return it.

    Raises :class:`storage.StepError` when the step's files cannot be trusted, ``ValueError`` when the method
    rejects the data (e.g. a single class); the caller reports either in the run's status.
    """
    settings = results.settings
    data = store.load_step(record)
    head = store.load_head(record).to(device)
    train = data.split.astype(bool)
    if train.sum() <= settings.n_neighbors:
        train = np.ones_like(train)  # too few training samples: fit on everything rather than fail
    feats = data.features.astype(np.float32)
    prev, prev_feats = None, None
    if prev_record is not None:
        prev_result = results.load(prev_record)
        if prev_result is not None:
            try:
                prev = StepProjection.load(prev_result.model_path, device=device)
            except ValueError:
                prev = None  # an unreadable previous model: this step starts cold rather than fails
            prev_feats = _aligned_prev(store.load_step(prev_record), data)
            if prev_feats is None:
                prev = None
    b_train, b_test = data.boundary, data.boundary_test
    if b_train is None:  # no input-space boundary samples logged: make them in representation space
        b_train, b_test = (boundary.boundary_samples(head, feats[train], seed=settings.seed + i, device=device)
                           for i in (0, 1))
    projector = DVIProjector(n_neighbors=settings.n_neighbors, variant=settings.variant, device=device,
                             seed=settings.seed)
    fitted = projector.fit_step(
        feats[train], head, boundary=b_train, prev=prev,
        prev_features=None if prev_feats is None else prev_feats[train], progress=progress,
    )
    test = ~train
    xy = np.empty((len(feats), 2), np.float32)
    xy[train] = fitted.embedding_  # the layout itself (what transform gives them, without the search)
    if test.any():
        xy[test] = fitted.transform(feats[test])
    scores = metrics.evaluate_step(
        fitted, head, feats[train], test_features=feats[test] if test.sum() > settings.n_neighbors else None,
        boundary=b_train, test_boundary=b_test, prev=prev,
        prev_train_features=None if prev_feats is None else prev_feats[train],
        prev_test_features=None if prev_feats is None or test.sum() <= settings.n_neighbors else prev_feats[test],
        k=settings.n_neighbors, train_embedding=xy[train], test_embedding=xy[test],
        bounds=cache.map_bounds(xy),  # landscape agreement over the box the tab shows
    )
    return results.save(record, prev_record, data.ids, xy, _finite(scores), fitted.save)


def _finite(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Metrics as plain floats, with NaN turned into None (JSON has no NaN)."""
    return {split: {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in values.items()}
            for split, values in scores.items()}
