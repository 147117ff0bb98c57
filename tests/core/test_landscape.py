"""The landscape image agrees with predict() and follows the documented orientation and colours."""

from __future__ import annotations

import re

import numpy as np

from dvi_core import landscape


def test_class_colors_distinct_and_tab10_first():
    cols = landscape.class_colors(30)
    assert cols[:2] == ["#1f77b4", "#ff7f0e"]
    assert len(set(cols)) == 30, "class colours repeat"
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in cols)


def test_colours_match_predict_at_pixel_centres(digits, fitted):
    R = 48
    img = landscape.render(fitted, digits.head, resolution=R)
    assert img.shape == (R, R, 3) and img.dtype == np.uint8
    pts = landscape.grid_points(fitted.bounds_, R)
    prob = landscape.predict(fitted, digits.head, pts)
    assert prob.shape == (R * R, 10) and np.allclose(prob.sum(1), 1, atol=1e-5)
    table = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in landscape.class_colors(10)], float)
    pix = img.reshape(-1, 3).astype(float)
    coloured = (pix < 250).any(1)
    # a coloured pixel lies on the segment white -> class colour of the predicted class
    dirs = 255.0 - table
    t = ((255.0 - pix[coloured]) @ dirs.T) / (dirs * dirs).sum(1)
    resid = np.linalg.norm((255.0 - pix[coloured])[:, None] - t[:, :, None] * dirs[None], axis=2)
    best = resid.argmin(1)
    agree = (best == prob[coloured].argmax(1)).mean()
    assert coloured.mean() > 0.3, f"only {coloured.mean():.2f} of the pixels are coloured"
    assert agree > 0.98, f"pixel colour agrees with predict() on {agree:.3f} of coloured pixels"


def test_orientation_row0_is_ymax(digits, fitted):
    x0, y0, x1, y1 = fitted.bounds_
    pts = landscape.grid_points(fitted.bounds_, 4)
    assert pts[0, 0] < pts[3, 0] and pts[0, 1] > pts[12, 1], "row 0 must be y_max and column 0 x_min"
    assert x0 < pts[0, 0] < x1 and y0 < pts[0, 1] < y1


def test_boundaries_are_white(digits, fitted):
    img = landscape.render(fitted, digits.head, resolution=32, bounds=fitted.bounds_)
    import torch

    logits = torch.log(torch.from_numpy(landscape.predict(fitted, digits.head,
                                                          landscape.grid_points(fitted.bounds_, 32))))
    from dvi_core.boundary import normalized_gap

    white = normalized_gap(logits).numpy() < landscape.WHITE_MARGIN
    pix = img.reshape(-1, 3)
    assert (pix[white] == 255).all(), "a low-margin pixel is not white"


def test_class_and_gap_are_argmax_and_the_normalized_gap():
    """The column-at-a-time pass gives the very numbers of argmax and normalized_gap, ties included."""
    import torch

    from dvi_core.boundary import normalized_gap

    gen = torch.Generator().manual_seed(0)
    for classes in (2, 3, 10, 25):
        logits = torch.randn(5000, classes, generator=gen)
        logits[:50, 1] = logits[:50, 0]  # a tie for the best class: the first one wins, as argmax says
        logits[50:60] = 0.0  # all equal
        cls, gap = landscape.class_and_gap(logits)
        assert torch.equal(cls, logits.argmax(1)), classes
        assert torch.equal(gap, normalized_gap(logits)), classes
