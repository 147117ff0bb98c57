"""The fused landscape evaluator gives the plain path's logits (decode to features, then the head) up to float error.

``landscape.FusedHead`` folds the decoder's memory blend and frame expand into the head's first ``Linear`` layer;
these tests compare it with the plain path on a really fitted step, for heads as users log them (saved and reloaded
through ``heads``), for both blend orders, a decoder without memory, and heads it must leave to the plain path.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch
from torch import nn

from dvi_core import DVIProjector, landscape, model
from tensorboard_plugin_dvi import heads, method

torch.set_num_threads(1)
DATA = os.path.join(os.path.dirname(__file__), "..", "examples", "data", "mnist10k.npz")
D = 96


class TanhFirst(nn.Module):
    """A custom head (saved as a graph): its first operation is not a Linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(D, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.tanh(x / 4))


class LinearFirstGraph(nn.Module):
    """A custom head (saved as a graph) that does begin with a linear map, then divides by a temperature."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(D, 10)
        self.temperature = nn.Parameter(torch.tensor(0.8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) / self.temperature


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """400 real MNIST digits as PCA-96 features (so the decoder's frame, 64 axes, is narrower than D)."""
    with np.load(DATA) as data:
        images, labels = data["images"][:400], data["labels"][:400].astype(np.int64)
    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    Xc = X - X.mean(0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    return (Xc @ vt[:D].T).astype(np.float32), labels


def _train(head: nn.Module, X: np.ndarray, y: np.ndarray) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(head.parameters(), lr=0.02)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(120):
        loss = nn.functional.cross_entropy(head(Xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def step(digits):
    """A default-variant step fitted on the digits with a linear head (a real decoder with its k-NN memory)."""
    X, y = digits
    torch.manual_seed(0)
    head = _train(nn.Linear(D, 10), X, y)
    return DVIProjector(seed=0, n_iter=60, layout_epochs=60).fit_step(X, head)


def _saved(head: nn.Module, tmp_path, name: str) -> nn.Module:
    """``head`` as the plugin gets it: serialised as a user's run logs it, then loaded from the file."""
    data, kind = heads.serialize_head(head, torch.randn(4, D))
    path = tmp_path / f"{name}.head.npz"
    path.write_bytes(data)
    return heads.load_head(str(path), kind)


def _points(step, n: int = 3000) -> np.ndarray:
    """Points over the map and a margin around it, some exactly on the samples (where the memory dominates)."""
    rng = np.random.default_rng(1)
    x0, y0, x1, y1 = step.bounds_
    pad = 0.3 * (x1 - x0)
    box = rng.uniform([x0 - pad, y0 - pad], [x1 + pad, y1 + pad], (n, 2))
    return np.concatenate([box, step.embedding_[:300]]).astype(np.float32)


def _assert_same(want: torch.Tensor, got: torch.Tensor) -> None:
    assert got.shape == want.shape
    scale = float(want.abs().max())
    err = float((want - got).abs().max())
    assert err <= 1e-4 * max(scale, 1.0), f"fused logits differ from the plain path by {err} (scale {scale})"
    assert (want.argmax(1) == got.argmax(1)).float().mean() > 0.999


@pytest.fixture(scope="module")
def trained(digits) -> dict[str, nn.Module]:
    """Heads trained on the digits: one narrower and two wider than the decoder's frame."""
    X, y = digits
    torch.manual_seed(0)
    return {
        "linear": _train(nn.Linear(D, 10), X, y),  # narrower than the frame: values mapped into the head first
        "mlp": _train(nn.Sequential(nn.Linear(D, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10)), X, y),
        "mlp-bn": _train(nn.Sequential(nn.Linear(D, 32), nn.BatchNorm1d(32), nn.GELU(), nn.Linear(32, 10)), X, y),
    }


@pytest.mark.parametrize("name", ["linear", "mlp", "mlp-bn"])
def test_fused_equals_plain_for_saved_spec_heads(step, trained, tmp_path, name):
    head = _saved(trained[name], tmp_path, name)
    assert type(head) is nn.Sequential  # a spec head, as heads.load_head builds it
    fused = landscape.FusedHead.build(step, head)
    assert fused is not None, "a head starting with a Linear layer must be fused"
    width = head[0].out_features
    assert fused.blend_in_head == (width <= step.decoder.axes.shape[0])
    pts = _points(step)
    _assert_same(landscape.plain_logits(step, head, pts), fused.logits(pts))


def test_a_bare_linear_head_and_an_empty_batch(step, trained):
    head = trained["linear"]
    fused = landscape.FusedHead.build(step, head)
    assert fused is not None
    _assert_same(landscape.plain_logits(step, head, _points(step)), fused.logits(_points(step)))
    empty = fused.logits(np.zeros((0, 2), np.float32))
    assert empty.shape == (0, 10)


def test_a_decoder_without_memory_is_the_prior_alone(step, trained):
    bare = copy.deepcopy(step)
    model.forget(bare.decoder)
    head = trained["mlp"]
    fused = landscape.FusedHead.build(bare, head)
    assert fused is not None and fused.k == 0
    pts = _points(bare)
    _assert_same(landscape.plain_logits(bare, head, pts), fused.logits(pts))
    assert not torch.allclose(landscape.plain_logits(step, head, pts), fused.logits(pts), atol=1e-3), \
        "the memory made no difference: the comparison would not catch a blend left out"


def test_rendered_images_are_the_same(step, trained, tmp_path):
    head = _saved(trained["mlp"], tmp_path, "mlp")
    pts = landscape.grid_points(step.bounds_, 64)
    plain = landscape.colorize(landscape.plain_logits(step, head, pts), 10)
    for img in (landscape.render(step, head, resolution=64).reshape(-1, 3),
                method.render(step, head, step.bounds_, 64, 10).reshape(-1, 3)):
        off = np.abs(img.astype(int) - plain.astype(int)).max(1)
        assert (off > 2).mean() < 0.001, f"{(off > 2).mean():.4f} of the pixels differ"


@pytest.mark.parametrize("cls", [TanhFirst, LinearFirstGraph])
def test_graph_heads_use_the_plain_path(step, digits, tmp_path, cls):
    X, y = digits
    torch.manual_seed(0)
    head = _saved(_train(cls(), X, y), tmp_path, cls.__name__)
    assert isinstance(head, heads.GraphHead)
    assert landscape.FusedHead.build(step, head) is None
    pts = _points(step, 500)
    plain = landscape.plain_logits(step, head, pts)
    _assert_same(plain, method._logits(step, head, pts))  # the plugin's evaluator falls back, same numbers
    _assert_same(plain, landscape._logits(step, head, pts))


def test_heads_not_starting_with_linear_use_the_plain_path(step):
    head = nn.Sequential(nn.ReLU(), nn.Linear(D, 10)).eval()
    assert landscape.FusedHead.build(step, head) is None
    assert landscape.FusedHead.build(step, lambda t: t[:, :10]) is None  # any callable is a head to dvi_core


class _DriftedMemory(model.KnnMemory):
    """A memory whose blend is no longer the one FusedHead folds (as if the decoder's code had changed)."""

    def forward(self, q: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        return 1.5 * super().forward(q, prior)


def test_a_decoder_that_blends_otherwise_is_caught_by_the_probe(step, trained):
    drifted = copy.deepcopy(step)
    old = drifted.decoder.memory
    new = _DriftedMemory(old.keys.shape[1], old.values.shape[1], old.keys.shape[0], tau=float(old.tau))
    new.load_state_dict(old.state_dict())
    drifted.decoder.memory = new
    head = trained["linear"]
    assert landscape.FusedHead.build(drifted, head) is None
    pts = _points(drifted, 200)
    _assert_same(landscape.plain_logits(drifted, head, pts), landscape._logits(drifted, head, pts))


def test_adaptive_tiles_match_an_exact_render(step, trained, tmp_path):
    """The plugin's zoomed tiles (quadtree-adaptive, fused) against every pixel evaluated by the plain path."""
    head = _saved(trained["mlp"], tmp_path, "mlp")
    x0, y0, x1, y1 = step.bounds_
    w = (x1 - x0) / 4
    for tx, ty in ((1, 1), (2, 2), (0, 3)):
        box = (x0 + tx * w, y1 - (ty + 1) * w, x0 + (tx + 1) * w, y1 - ty * w)
        exact = landscape.colorize(landscape.plain_logits(step, head, landscape.grid_points(box, 128)), 10)
        tile = method.render(step, head, box, 128, 10, cell=4).reshape(-1, 3)
        off = np.abs(tile.astype(int) - exact.astype(int)).max(1)
        assert (off > 8).mean() < 0.005, f"{(off > 8).mean():.4f} of tile {tx},{ty} differs from the exact render"
        assert (off > 60).mean() < 0.001, "a class or boundary differs from the exact render"


def test_a_render_ahead_stops_when_told_and_is_unchanged_otherwise(step, trained):
    head = trained["mlp"]
    box = step.bounds_
    calls = []

    def stop_after(n: int):
        def stop() -> bool:
            calls.append(1)
            return len(calls) > n
        return stop

    with pytest.raises(method.RenderStopped):
        method.render(step, head, box, 128, 10, cell=4, stop=stop_after(2))
    assert len(calls) == 3, "stop() must be asked between chunks, and the render end at the first yes"
    never = method.render(step, head, box, 128, 10, cell=4, stop=lambda: False)
    assert np.array_equal(never, method.render(step, head, box, 128, 10, cell=4))


def test_a_deep_zoom_tile_is_exact_where_it_refines_only_along_the_boundaries(step, trained, monkeypatch):
    """Tiles of level 3 (cells of 8 px over a box an eighth of the map wide): their classes and white band are the
    exact render's, while the head is evaluated at under a fifth of their pixels (the band refined to single pixels
    follows the landscape's curvature, so it stays a few pixels wide however deep the zoom; measured 0.11-0.17 per
    tile, where a fixed band of gap, as before, evaluated 0.25-0.33 of these tiles)."""
    head = trained["linear"]
    x0, y0, x1, y1 = step.bounds_
    w = (x1 - x0) / 8
    evaluated = []
    plain_logits = method._logits

    def counted(*args, **kwargs):
        out = plain_logits(*args, **kwargs)
        evaluated.append(len(out))
        return out

    monkeypatch.setattr(method, "_logits", counted)
    shares = []
    for tx, ty in ((3, 3), (4, 4), (2, 5)):
        box = (x0 + tx * w, y1 - (ty + 1) * w, x0 + (tx + 1) * w, y1 - ty * w)
        pts = landscape.grid_points(box, 256)
        evaluated.clear()
        tile = method._adaptive_logits(step, head, pts, 256, 8)
        shares.append(sum(evaluated) / len(pts))
        exact = landscape.plain_logits(step, head, pts)
        drawn = [torch.where(gap < landscape.WHITE_MARGIN, -1, cls) for cls, gap in
                 (landscape.class_and_gap(tile), landscape.class_and_gap(exact))]
        assert (drawn[0] != drawn[1]).float().mean() <= 1e-4, f"tile {tx},{ty}: classes differ from the exact render"
    assert np.mean(shares) < 0.2, f"the head was evaluated at {np.round(shares, 2)} of the tiles' pixels"
