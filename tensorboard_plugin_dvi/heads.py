"""Saving a classifier head so the plugin can run it later without the user's code.

Two formats, chosen automatically:

* ``spec`` (``.pt``): for ``nn.Linear`` and ``nn.Sequential`` of standard layers. The file holds a JSON description
  of the layers (plain strings and numbers) and their tensors. Loading rebuilds the layers from the description and
  reads the file with ``torch.load(weights_only=True)``, so no user object is ever unpickled.
* ``export`` (``.pt2``): any other module, through ``torch.export``. Loading uses ``torch.export.load``, which
  deserialises a graph of ATen operators and weights, not Python objects.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

FORMAT = "dvi-head-v1"

# Layer type -> (constructor from its recorded arguments, recorder of those arguments).
_LAYERS: dict[str, tuple[Callable[..., nn.Module], Callable[[Any], dict[str, Any]]]] = {
    "Linear": (
        lambda a: nn.Linear(a["in_features"], a["out_features"], bias=a["bias"]),
        lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None},
    ),
    "ReLU": (lambda a: nn.ReLU(), lambda m: {}),
    "GELU": (lambda a: nn.GELU(approximate=a["approximate"]), lambda m: {"approximate": m.approximate}),
    "SiLU": (lambda a: nn.SiLU(), lambda m: {}),
    "Tanh": (lambda a: nn.Tanh(), lambda m: {}),
    "Sigmoid": (lambda a: nn.Sigmoid(), lambda m: {}),
    "ELU": (lambda a: nn.ELU(alpha=a["alpha"]), lambda m: {"alpha": float(m.alpha)}),
    "LeakyReLU": (
        lambda a: nn.LeakyReLU(negative_slope=a["negative_slope"]),
        lambda m: {"negative_slope": float(m.negative_slope)},
    ),
    "Dropout": (lambda a: nn.Dropout(p=a["p"]), lambda m: {"p": float(m.p)}),
    "Identity": (lambda a: nn.Identity(), lambda m: {}),
    "Flatten": (
        lambda a: nn.Flatten(a["start_dim"], a["end_dim"]),
        lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    ),
    "BatchNorm1d": (
        lambda a: nn.BatchNorm1d(
            a["num_features"], eps=a["eps"], affine=a["affine"], track_running_stats=a["track"]
        ),
        lambda m: {
            "num_features": m.num_features,
            "eps": float(m.eps),
            "affine": m.affine,
            "track": m.track_running_stats,
        },
    ),
    "LayerNorm": (
        lambda a: nn.LayerNorm(a["shape"], eps=a["eps"], elementwise_affine=a["affine"], bias=a["bias"]),
        lambda m: {
            "shape": list(m.normalized_shape),
            "eps": float(m.eps),
            "affine": m.elementwise_affine,
            "bias": m.bias is not None,
        },
    ),
}


def head_spec(head: nn.Module) -> list[dict[str, Any]] | None:
    """Describe ``head`` as a list of standard layers, or ``None`` when it is not made only of them."""
    layers = list(head) if type(head) is nn.Sequential else [head]
    spec = []
    for layer in layers:
        name = type(layer).__name__
        if name not in _LAYERS or type(layer) is not getattr(nn, name):
            return None
        spec.append({"type": name, "args": _LAYERS[name][1](layer)})
    return spec


def build_from_spec(spec: list[dict[str, Any]]) -> nn.Sequential:
    """Rebuild the layers described by :func:`head_spec` (weights uninitialised)."""
    layers = []
    for entry in spec:
        if entry.get("type") not in _LAYERS:
            raise ValueError(f"Unknown layer type {entry.get('type')!r} in a saved DVI head.")
        layers.append(_LAYERS[entry["type"]][0](entry["args"]))
    return nn.Sequential(*layers)


def serialize_head(head: nn.Module, example: torch.Tensor) -> tuple[bytes, str]:
    """Serialise ``head`` to bytes; returns ``(data, kind)`` with kind ``"spec"`` or ``"export"``.

    ``example`` is a small batch of features used by ``torch.export`` to trace a custom head.
    Raises ``TypeError`` naming what to pass instead when the head can be neither described nor exported.
    """
    was_training = head.training
    head.eval()
    try:
        return _serialize(head, example)
    finally:
        head.train(was_training)


def _serialize(head: nn.Module, example: torch.Tensor) -> tuple[bytes, str]:
    spec = head_spec(head)
    buffer = io.BytesIO()
    if spec is not None:
        module = head if isinstance(head, nn.Sequential) else nn.Sequential(head)
        state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        torch.save({"format": FORMAT, "spec": json.dumps(spec), "state": state}, buffer)
        return buffer.getvalue(), "spec"
    try:
        batch = {0: torch.export.Dim.DYNAMIC}  # any number of rows, not just the example's
        program = torch.export.export(head, (example.detach().cpu(),), dynamic_shapes=(batch,))
        torch.export.save(program, buffer)
    except Exception as err:  # torch.export raises many unrelated types
        raise TypeError(
            f"The 'head' parameter of snapshot must be an nn.Linear, an nn.Sequential of standard layers "
            f"({', '.join(sorted(_LAYERS))}) or a module that torch.export can trace on CPU. "
            f"Got {type(head).__name__}, which torch.export rejected: {err}. "
            "Pass the classifier's final layer(s) (e.g. head=model.fc) instead."
        ) from err
    return buffer.getvalue(), "export"


def load_head(path: str, kind: str) -> nn.Module:
    """Load a head saved by :func:`serialize_head`, on CPU, in eval mode, without unpickling user objects."""
    if kind == "spec":
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError(f"{path} is not a DVI head file (format {FORMAT}).")
        module = build_from_spec(json.loads(saved["spec"]))
        module.load_state_dict(saved["state"])
        return module.eval()
    if kind == "export":
        return torch.export.load(path).module()
    raise ValueError(f"Unknown head format {kind!r}; expected 'spec' or 'export'.")
