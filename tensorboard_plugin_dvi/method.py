"""The plugin's one gateway to ``dvi_core``: every use of the method by the TensorBoard side goes through here.

No HTTP and no threads here. :func:`project_step` takes a run's store, a step record and the previous step's result,
and returns the new result written to the cache (the job service and the offline CLI both call it); the rest loads
saved models and renders landscapes and predictions from them in bounded chunks, so a large request never holds more
than :data:`CHUNK` decoded points in memory at once.
"""

from __future__ import annotations

import collections
import threading
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

__all__ = ["CHUNK", "version", "project_step", "load_model", "render", "warm", "predict", "class_colors",
           "square_bounds", "boundary_samples"]


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


_FUSED_MAX = 8
_fused: collections.OrderedDict[tuple[int, int], tuple[StepProjection, torch.nn.Module, Any]] = \
    collections.OrderedDict()
_fused_lock = threading.Lock()


def _fused_head(model: StepProjection, head: torch.nn.Module) -> landscape.FusedHead | None:
    """The fused evaluator of ``head`` on ``model`` (None: use the plain path), built once per loaded pair.

    Loaded models and heads are never changed in place, so the pair's identity is a sound key; the entry holds both
    objects, so an id is never reused for another object while its entry lives."""
    key = (id(model), id(head))
    with _fused_lock:
        entry = _fused.get(key)
        if entry is not None and entry[0] is model and entry[1] is head:
            _fused.move_to_end(key)
            return entry[2]
    fused = landscape.FusedHead.build(model, head)
    with _fused_lock:
        _fused[key] = (model, head, fused)
        while len(_fused) > _FUSED_MAX:
            _fused.popitem(last=False)
    return fused


def warm(model: StepProjection, head: torch.nn.Module) -> None:
    """Build the fused evaluator of ``head`` on ``model`` now (cached), so the first render need not."""
    _fused_head(model, head)


class RenderStopped(Exception):
    """A render given ``stop`` was told to stop before it finished: nothing is returned (or cached)."""


STOP_CHUNK = 4096
"""Points evaluated between two ``stop()`` checks (some 10-30 ms on one core), when a render may be stopped."""


@torch.no_grad()
def _logits(model: StepProjection, head: torch.nn.Module, points: np.ndarray,
            stop: Callable[[], bool] | None = None) -> torch.Tensor:
    """Head logits at 2-D points, decoded :data:`CHUNK` points at a time.

    Heads that begin with a ``Linear`` layer go through ``landscape.FusedHead`` (the decoder's last linear maps
    folded into that layer: the same logits at about a third of the cost); others decode the full features.
    ``stop``: checked every :data:`STOP_CHUNK` points; :class:`RenderStopped` when it says so."""
    fused = _fused_head(model, head)
    chunk = CHUNK if stop is None else STOP_CHUNK
    device = next((p.device for p in head.parameters()), torch.device("cpu"))
    out = []
    for start in range(0, len(points), chunk):
        if stop is not None and stop():
            raise RenderStopped
        if fused is not None:
            out.append(fused.logits(points[start:start + chunk]).float())
            continue
        feats = model.inverse_transform(points[start:start + chunk])
        out.append(head(torch.from_numpy(feats).to(device)).float().cpu())
    return torch.cat(out) if out else torch.zeros((0, 0))


def render(model: StepProjection, head: torch.nn.Module, bounds: tuple[float, float, float, float], size: int,
           n_classes: int, cell: int = 1, stop: Callable[[], bool] | None = None,
           height: int | None = None) -> np.ndarray:
    """The landscape over ``bounds`` as uint8 [height, size, 3] (row 0 is the top, largest y; ``height``: ``size``
    unless given, for a rectangular view).

    ``cell > 1`` renders adaptively: the head is evaluated on a grid every ``cell`` pixels, and exactly at every
    pixel of a cell whose corners disagree in class or come near a decision boundary; inside the other cells the
    logits are interpolated bilinearly. A zoomed tile at level z with ``cell <= 2**z`` thus loses nothing the
    overview shows (its cells are no larger than one overview pixel) and is exact around every boundary.

    ``stop``: a render done ahead of need checks it every few thousand points and raises :class:`RenderStopped`
    when it says so (a user's request is waiting for the CPU).
    """
    rows = size if height is None else height
    pts = landscape.grid_points(bounds, size, rows)
    if cell <= 1 or min(size, rows) < 4 * cell:
        return landscape.colorize(_logits(model, head, pts, stop), n_classes).reshape(rows, size, 3)
    return landscape.colorize(_adaptive_logits(model, head, pts, (rows, size), cell, stop),
                              n_classes).reshape(rows, size, 3)


MARGIN_FLOOR = 0.005
"""A cell is interpolated only when its corners are at least this far (in normalized gap) from the white band's edge,
on the same side of it ..."""

CURVATURE_SAFETY = 0.5
"""... and farther than this times the gap's largest second difference at its corners (``|d2/dx2| + |d2/dy2|`` on
the grid of the current level): bilinear interpolation errs by about an eighth of that inside a cell, so the margin
covers four times the error. The margin thus follows the landscape's shape at the scale being refined: in a zoomed
tile, where the gap changes little from one pixel to the next, the band refined to single pixels around the white
band's edge is a few pixels wide instead of a fixed stretch of gap (which there spans tens of pixels)."""


def _edge_margin(gap: np.ndarray) -> np.ndarray:
    """Per cell of the knot grid ``gap`` [n, n]: how far from the white band's edge its corners must be to be
    interpolated (:data:`MARGIN_FLOOR` plus :data:`CURVATURE_SAFETY` times the largest second difference at its
    corners; at the grid's edge the one-sided first difference stands in, which is larger near an edge)."""
    p = np.pad(gap, 1, mode="edge")
    bend = np.abs(p[1:-1, :-2] - 2 * gap + p[1:-1, 2:]) + np.abs(p[:-2, 1:-1] - 2 * gap + p[2:, 1:-1])
    corners = np.maximum(np.maximum(bend[:-1, :-1], bend[1:, :-1]), np.maximum(bend[:-1, 1:], bend[1:, 1:]))
    return MARGIN_FLOOR + CURVATURE_SAFETY * corners


def _knots(length: int, step: int) -> np.ndarray:
    """Pixel rows (or columns) of one level's cell corners: every ``step`` pixels, and the last pixel."""
    return np.unique(np.r_[np.arange(0, length, step), length - 1])


def _adaptive_logits(model: StepProjection, head: torch.nn.Module, pts: np.ndarray, shape: int | tuple[int, int],
                     cell: int, stop: Callable[[], bool] | None = None) -> torch.Tensor:
    """Logits at every pixel of a ``shape`` = (height, width) image (an int: a square one): exact where class or
    boundary may change inside a cell, interpolated elsewhere.

    Refined as a quadtree: the pixel grid is evaluated every ``cell`` pixels; a cell whose four corners share a class
    and lie on the same side of the white band's edge, clear of it by a margin that grows with the gap's curvature
    there (:func:`_edge_margin`), is interpolated bilinearly from them; any other cell is halved and its new corners
    evaluated, down to single pixels (all exact). A boundary crossing a cell thus costs the pixels along it rather
    than the whole cell, and no interpolated cell is ever larger than ``cell``."""
    height, width = (shape, shape) if isinstance(shape, int) else shape
    grid = pts.reshape(height, width, 2)
    have = np.zeros((height, width), bool)  # pixels evaluated exactly
    out: torch.Tensor | None = None
    region: np.ndarray | None = None  # cells of the current level still to decide (None: all of them)
    prev: tuple[np.ndarray, np.ndarray] | None = None
    step = cell
    while True:
        ky, kx = _knots(height, step), _knots(width, step)  # pixel rows/columns of this level's corners
        ny, nx = len(ky), len(kx)
        if region is None:
            region = np.ones((ny - 1, nx - 1), bool)
        else:  # a cell of this level lies in the region when its parent cell (one level up) was not uniform
            assert prev is not None
            py = np.searchsorted(prev[0], ky[:-1], side="right") - 1
            px = np.searchsorted(prev[1], kx[:-1], side="right") - 1
            region = region[np.ix_(py, px)]
        corner = np.zeros((ny, nx), bool)
        for di in (0, 1):
            for dj in (0, 1):
                corner[di:ny - 1 + di, dj:nx - 1 + dj] |= region
        rows, cols = np.nonzero(corner & ~have[np.ix_(ky, kx)])
        todo = np.c_[ky[rows], kx[cols]]
        if len(todo):
            values = _logits(model, head, grid[todo[:, 0], todo[:, 1]], stop)
            if out is None:
                out = torch.empty((height, width, values.shape[1]), dtype=values.dtype)
            out[torch.from_numpy(todo[:, 0]), torch.from_numpy(todo[:, 1])] = values
            have[todo[:, 0], todo[:, 1]] = True
        if step == 1 or not region.any():
            break
        assert out is not None
        coarse = out[torch.from_numpy(ky)][:, torch.from_numpy(kx)]  # [ny, nx, C]; corners of region cells exact
        cls, gap = (a.reshape(ny, nx).numpy() for a in landscape.class_and_gap(coarse.reshape(ny * nx, -1)))
        margin = _edge_margin(gap)
        low = np.minimum(np.minimum(gap[:-1, :-1], gap[1:, :-1]), np.minimum(gap[:-1, 1:], gap[1:, 1:]))
        high = np.maximum(np.maximum(gap[:-1, :-1], gap[1:, :-1]), np.maximum(gap[:-1, 1:], gap[1:, 1:]))
        same = (cls[:-1, :-1] == cls[1:, :-1]) & (cls[:-1, :-1] == cls[:-1, 1:]) & (cls[:-1, :-1] == cls[1:, 1:])
        uniform = region & ((same & (low >= landscape.WHITE_MARGIN + margin))
                            | (high < landscape.WHITE_MARGIN - margin))
        if uniform.any():
            cy, cx = _cell_of(ky, height), _cell_of(kx, width)
            _fill_bilinear(out, coarse, (ky, kx), (cy, cx), np.nonzero(uniform[np.ix_(cy, cx)] & ~have))
        region = region & ~uniform
        if not region.any():
            break
        prev, step = (ky, kx), max(1, step // 2)
    assert out is not None
    return out.reshape(height * width, -1)


def _cell_of(knots: np.ndarray, size: int) -> np.ndarray:
    """The knot interval (cell index along one axis) of each of ``size`` pixel rows or columns."""
    return np.clip(np.searchsorted(knots, np.arange(size), side="right") - 1, 0, len(knots) - 2)


def _fill_bilinear(out: torch.Tensor, coarse: torch.Tensor, knots: tuple[np.ndarray, np.ndarray],
                   cell_of: tuple[np.ndarray, np.ndarray], pixels: tuple[np.ndarray, np.ndarray]) -> None:
    """Write into ``out`` [height, width, C], at ``pixels`` (rows, columns), the bilinear interpolation of the four
    corners of each pixel's cell (``cell_of`` per axis, :func:`_cell_of`) of the knot grid ``coarse`` [ny, nx, C]
    (``knots``: its pixel rows and columns). Corners are gathered by flat row index (``index_select``: several times
    faster than indexing the grid with a pair of index tensors)."""
    ys, xs = pixels
    if not len(ys):
        return
    height, width = out.shape[0], out.shape[1]
    (ky, kx), (cy, cx) = knots, cell_of
    nx = len(kx)
    fy = ((np.arange(height) - ky[cy]) / (ky[cy + 1] - ky[cy])).astype(np.float32)
    fx = ((np.arange(width) - kx[cx]) / (kx[cx + 1] - kx[cx])).astype(np.float32)
    ty, tx = torch.from_numpy(fy[ys])[:, None], torch.from_numpy(fx[xs])[:, None]
    flat = coarse.reshape(len(ky) * nx, -1)
    corner = torch.from_numpy(cy[ys] * nx + cx[xs])  # each pixel's cell's top-left knot
    top = flat.index_select(0, corner) * (1 - tx) + flat.index_select(0, corner + 1) * tx
    bottom = flat.index_select(0, corner + nx) * (1 - tx) + flat.index_select(0, corner + nx + 1) * tx
    out.view(height * width, -1).index_copy_(0, torch.from_numpy(ys * width + xs), top * (1 - ty) + bottom * ty)


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
    feats = data.features.astype(np.float32, copy=False)
    feats_train = feats[train]  # one copy, shared by the steps below
    prev, prev_feats, prev_result = None, None, None
    if prev_record is not None:
        prev_result = results.load(prev_record)
        if prev_result is not None:
            try:
                prev = StepProjection.load(prev_result.model_path, device=device)
            except (ValueError, OSError):
                # unreadable, or deleted meanwhile by a request thread that found it damaged: start cold, not fail
                prev = None
            prev_feats = _aligned_prev(store.load_step(prev_record), data)
            if prev_feats is None:
                prev = None
    b_train, b_test = data.boundary, data.boundary_test
    if b_train is None:  # no input-space boundary samples logged: make them in representation space
        b_train, b_test = (boundary.boundary_samples(head, feats_train, seed=settings.seed + i, device=device)
                           for i in (0, 1))
    projector = DVIProjector(n_neighbors=settings.n_neighbors, variant=settings.variant, device=device,
                             seed=settings.seed)
    fitted = projector.fit_step(
        feats_train, head, boundary=b_train, prev=prev,
        prev_features=None if prev_feats is None else prev_feats[train], progress=progress,
    )
    test = ~train
    xy = np.empty((len(feats), 2), np.float32)
    xy[train] = fitted.embedding_  # the layout itself (what transform gives them, without the search)
    # step t-1's positions of these samples: what prev.transform of their previous features gives, stored
    prev_xy = None if prev is None else _aligned_prev_xy(prev_result, data.ids)
    if test.any() and prev is not None and prev_feats is not None and prev_xy is not None:
        # held-out samples continue from where the tab showed them at step t-1, as far as their neighbours stayed
        xy[test] = fitted.transform(feats[test], prev=prev, prev_features=prev_feats[test],
                                    prev_embedding=prev_xy[test])
    elif test.any():
        xy[test] = fitted.transform(feats[test])
    has_test = test.sum() > settings.n_neighbors
    scores = metrics.evaluate_step(
        fitted, head, feats_train, test_features=feats[test] if has_test else None,
        boundary=b_train, test_boundary=b_test, prev=prev,
        boundary_embedding=fitted.boundary_embedding_,  # b_train's layout: what transform(b_train) gives
        prev_train_features=None if prev_feats is None else prev_feats[train],
        prev_test_features=None if prev_feats is None or not has_test else prev_feats[test],
        k=settings.n_neighbors, train_embedding=xy[train], test_embedding=xy[test],
        prev_train_embedding=None if prev_xy is None else prev_xy[train],
        prev_test_embedding=None if prev_xy is None or not has_test else prev_xy[test],
        bounds=cache.map_bounds(xy),  # landscape agreement over the box the tab shows
    )
    return results.save(record, prev_record, data.ids, xy, _finite(scores), fitted.save)


def _aligned_prev_xy(prev_result: cache.StepResult | None, ids: np.ndarray) -> np.ndarray | None:
    """Step t-1's stored positions of ``ids`` in that order, or None when a sample is missing there."""
    if prev_result is None:
        return None
    if np.array_equal(prev_result.ids, ids):
        return prev_result.xy
    order = {int(i): k for k, i in enumerate(prev_result.ids)}
    if not all(int(i) in order for i in ids):
        return None
    return prev_result.xy[[order[int(i)] for i in ids]]


def _finite(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Metrics as plain floats, with NaN turned into None (JSON has no NaN)."""
    return {split: {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in values.items()}
            for split, values in scores.items()}
