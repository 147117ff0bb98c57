"""Parameter and input checks with scikit-learn-style messages (raised by ``DVIProjector.fit_step``)."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .projector import DVIProjector, StepProjection

_FIT = "DVIProjector.fit_step"


def _bad_param(name: str, what: str, got: Any) -> ValueError:
    return ValueError(f"The '{name}' parameter of DVIProjector must be {what}. Got {got!r} instead.")


def check_params(p: DVIProjector) -> None:
    """Validate the hyper-parameters stored by ``DVIProjector.__init__``."""
    from .projector import VARIANTS

    def is_int(v: Any) -> bool:
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if not is_int(p.n_neighbors) or p.n_neighbors < 2:
        raise _bad_param("n_neighbors", "an int >= 2", p.n_neighbors)
    if p.variant not in VARIANTS:
        raise _bad_param("variant", f"one of {VARIANTS}", p.variant)
    if not is_int(p.seed):
        raise _bad_param("seed", "an int", p.seed)
    for name in ("n_iter", "layout_epochs", "hidden", "n_layers", "batch_size"):
        v = getattr(p, name)
        if v is not None and (not is_int(v) or v < 1):
            raise _bad_param(name, "None or an int >= 1", v)
    if not isinstance(p.lambda_temporal, numbers.Real) or p.lambda_temporal < 0:
        raise _bad_param("lambda_temporal", "a float >= 0", p.lambda_temporal)
    try:
        torch.device(p.device)
    except (RuntimeError, TypeError) as e:
        raise _bad_param("device", "a torch device string such as 'cpu' or 'cuda'", p.device) from e


def _features(name: str, X: Any, min_rows: int) -> np.ndarray:
    if not isinstance(X, np.ndarray):
        raise TypeError(
            f"The '{name}' parameter of {_FIT} must be a numpy array. Got {type(X).__name__} instead."
        )
    shape = X.shape
    ok = X.ndim == 2 and X.shape[0] >= min_rows and X.shape[1] >= 2 and np.issubdtype(X.dtype, np.number)
    finite = True
    if ok:
        X = X.astype(np.float32)
        finite = bool(np.isfinite(X).all())
    if not (ok and finite):
        raise ValueError(
            f"The '{name}' parameter of {_FIT} must be a finite float array of shape [N, D] with "
            f"N >= {min_rows} and D >= 2. Got shape {shape} instead." + ("" if finite else " (it contains NaN or inf)")
        )
    return np.ascontiguousarray(X)


def check_fit_inputs(
    p: DVIProjector, features: Any, boundary: Any, prev: StepProjection | None, prev_features: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate and convert ``fit_step``'s arrays; returns float32 (features, boundary, prev_features)."""
    from .projector import StepProjection

    X = _features("features", features, p.n_neighbors + 1)
    if float(np.ptp(X, axis=0).max()) == 0.0:
        raise ValueError(
            f"The 'features' parameter of {_FIT} must not be constant. Got {len(X)} identical rows instead."
        )
    B = None
    if boundary is not None:
        B = _features("boundary", boundary, 2)
        if B.shape[1] != X.shape[1]:
            raise ValueError(
                f"The 'boundary' parameter of {_FIT} must have D = {X.shape[1]} columns like 'features'. "
                f"Got shape {B.shape} instead."
            )
    if prev is None:
        return X, B, None
    if not isinstance(prev, StepProjection):
        raise TypeError(
            f"The 'prev' parameter of {_FIT} must be a StepProjection or None. Got {type(prev).__name__} instead."
        )
    if prev.n_features_in_ != X.shape[1]:
        raise ValueError(
            f"The 'features' parameter of {_FIT} must have D = {prev.n_features_in_} columns like the "
            f"previous step ('prev'). Got shape {X.shape} instead."
        )
    if prev_features is None:
        raise ValueError(f"The 'prev_features' parameter of {_FIT} is required when 'prev' is given. Got None instead.")
    Xp = _features("prev_features", prev_features, p.n_neighbors + 1)
    if Xp.shape != X.shape:
        raise ValueError(
            f"The 'prev_features' parameter of {_FIT} must have the same shape as 'features' {X.shape}. "
            f"Got shape {Xp.shape} instead."
        )
    return X, B, Xp


def check_head_classes(logits: torch.Tensor) -> None:
    """The head must predict at least two distinct classes on the step's features."""
    pred = logits.argmax(1)
    if logits.shape[1] < 2 or pred.unique().numel() < 2:
        raise ValueError(
            f"The 'head' parameter of {_FIT} must predict at least 2 distinct classes on 'features'. "
            f"Got a single predicted class ({int(pred[0])}) instead."
        )


def _rows(A: np.ndarray, width: int, name: str, n: int | None = None) -> np.ndarray:
    """``A`` as a contiguous float32 [n, width] array of finite values, else a ValueError naming the parameter."""
    A = np.ascontiguousarray(A, dtype=np.float32)  # views with negative strides cannot become tensors
    rows = "N" if n is None else str(n)
    if A.ndim != 2 or A.shape[1] != width or (n is not None and len(A) != n):
        raise ValueError(
            f"The '{name}' parameter of StepProjection.transform must have shape [{rows}, {width}]. "
            f"Got shape {A.shape} instead."
        )
    if not np.isfinite(A).all():
        raise ValueError(
            f"The '{name}' parameter of StepProjection.transform must be finite. "
            f"Got {int((~np.isfinite(A)).any(1).sum())} rows with NaN or inf instead; drop or fix them first."
        )
    return A


def check_transform_inputs(
    step: StepProjection, X: Any, prev: StepProjection | None, prev_features: Any, prev_embedding: Any,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Validate and convert ``StepProjection.transform``'s arrays, before any work: float32 (X, prev_features,
    prev_embedding), the last two None when no previous step is given."""
    given = [a is not None for a in (prev, prev_features, prev_embedding)]
    if any(given) and not all(given):
        raise ValueError("The 'prev', 'prev_features' and 'prev_embedding' parameters of StepProjection.transform "
                         "go together. Got only some of them instead; pass all three or none.")
    X = _rows(X, step.n_features_in_, "X")
    if prev is None:
        return X, None, None
    return (X, _rows(prev_features, prev.n_features_in_, "prev_features", len(X)),
            _rows(prev_embedding, 2, "prev_embedding", len(X)))
