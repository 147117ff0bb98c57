"""Saving a classifier head so the plugin can run it later without the user's code, and without pickle.

A head file (``.head.npz``) is a plain ``.npz``: one ``__meta__`` member holding UTF-8 JSON, and the head's tensors as
numeric arrays. Nothing in it is ever unpickled (``np.load(allow_pickle=False)``) and nothing in it names Python code:

* ``spec`` heads (``nn.Linear`` and ``nn.Sequential`` of standard layers): the JSON lists the layers (type names from
  a fixed allow-list, plain numbers as arguments); loading rebuilds them and copies the tensors in.
* ``graph`` heads (any other module): traced once with ``torch.export`` when logged, lowered to core ATen operators,
  and stored as a list of nodes (operator name, arguments). Loading checks every operator against an allow-list of
  pure tensor maths (no I/O, no allocation from sizes given in the file) and runs the nodes in order with
  :class:`GraphHead`. A tensor larger than :data:`MAX_ELEMENTS` stops the run.

Heads logged by version 0.1 (``.head.pt`` through ``torch.save``, ``.head.pt2`` through ``torch.export.save``) are
refused with a message saying to log the step again: both formats reach ``pickle`` when loaded, so a crafted file
could run code in TensorBoard.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from tensorboard_plugin_dvi import fsio

FORMAT = "dvi-head-v2"
META = "__meta__"
MAX_NODES = 5000
MAX_ELEMENTS = 1 << 26  # 64 Mi elements (256 MiB of float32) per intermediate tensor
MAX_JSON_DEPTH = 8
LEGACY_KINDS = ("export",)
LEGACY_MESSAGE = ("was saved by DVI 0.1 in a pickle-based format ({name}) that this version refuses to load, "
                  "because a crafted file of that kind can run code; log the step again with this version")

# Layer type -> (constructor from its recorded arguments, recorder of those arguments).
_LAYERS: dict[str, tuple[Callable[..., nn.Module], Callable[[Any], dict[str, Any]]]] = {
    "Linear": (
        lambda a: nn.Linear(int(a["in_features"]), int(a["out_features"]), bias=bool(a["bias"])),
        lambda m: {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None},
    ),
    "ReLU": (lambda a: nn.ReLU(), lambda m: {}),
    "GELU": (lambda a: nn.GELU(approximate=str(a["approximate"])), lambda m: {"approximate": m.approximate}),
    "SiLU": (lambda a: nn.SiLU(), lambda m: {}),
    "Tanh": (lambda a: nn.Tanh(), lambda m: {}),
    "Sigmoid": (lambda a: nn.Sigmoid(), lambda m: {}),
    "ELU": (lambda a: nn.ELU(alpha=float(a["alpha"])), lambda m: {"alpha": float(m.alpha)}),
    "LeakyReLU": (
        lambda a: nn.LeakyReLU(negative_slope=float(a["negative_slope"])),
        lambda m: {"negative_slope": float(m.negative_slope)},
    ),
    "Dropout": (lambda a: nn.Dropout(p=float(a["p"])), lambda m: {"p": float(m.p)}),
    "Identity": (lambda a: nn.Identity(), lambda m: {}),
    "Flatten": (
        lambda a: nn.Flatten(int(a["start_dim"]), int(a["end_dim"])),
        lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim},
    ),
    "BatchNorm1d": (
        lambda a: nn.BatchNorm1d(
            int(a["num_features"]), eps=float(a["eps"]), affine=bool(a["affine"]), track_running_stats=bool(a["track"])
        ),
        lambda m: {
            "num_features": m.num_features,
            "eps": float(m.eps),
            "affine": m.affine,
            "track": m.track_running_stats,
        },
    ),
    "LayerNorm": (
        lambda a: nn.LayerNorm([int(s) for s in a["shape"]], eps=float(a["eps"]),
                               elementwise_affine=bool(a["affine"]), bias=bool(a["bias"])),
        lambda m: {
            "shape": list(m.normalized_shape),
            "eps": float(m.eps),
            "affine": m.elementwise_affine,
            "bias": m.bias is not None,
        },
    ),
}

# Core ATen operators a graph head may use: pure tensor maths, shape views and reductions. Anything that reads or
# writes files, allocates from sizes written in the file (full, empty, arange...), or mutates its input is absent.
ALLOWED_OPS = frozenset({
    "abs", "add", "addmm", "alias", "amax", "amin", "any", "argmax", "argmin", "avg_pool1d", "bitwise_and",
    "bitwise_not", "bitwise_or", "bmm", "cat", "ceil", "clamp", "clamp_max", "clamp_min", "clone", "constant_pad_nd",
    "cos", "cumsum", "detach", "div", "elu", "eq", "erf", "exp", "expand", "expm1", "flatten", "floor", "ge", "gelu",
    "gt", "hardsigmoid", "hardswish", "hardtanh", "index_select", "le", "leaky_relu", "lift_fresh_copy", "log",
    "log1p", "log_softmax", "_log_softmax", "logical_and", "logical_not", "logical_or", "lt", "max", "maximum", "mean",
    "min", "minimum", "mish", "mm", "mul", "native_layer_norm", "_native_batch_norm_legit_no_training", "ne", "neg",
    "norm", "permute", "pow", "prod", "reciprocal", "relu", "round", "rsqrt", "scalar_tensor", "select", "sigmoid",
    "sign", "silu", "sin", "slice", "softmax", "_softmax", "softplus", "split", "split_with_sizes", "sqrt", "squeeze",
    "stack", "sub", "sum", "sym_size", "t", "tanh", "transpose", "unbind", "unsqueeze", "_unsafe_view", "var",
    "var_mean", "view", "where", "_to_copy", "zeros_like", "ones_like", "full_like", "linalg_vector_norm",
    "reshape", "contiguous", "matmul", "linear", "dropout", "layer_norm", "batch_norm", "_assert_tensor_metadata",
})
_PY_OPS: dict[str, Callable[..., Any]] = {
    "getitem": operator.getitem, "add": operator.add, "sub": operator.sub, "mul": operator.mul,
    "floordiv": operator.floordiv, "neg": operator.neg,
}
_DTYPES = {name: getattr(torch, name) for name in (
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")}


class HeadFormatError(ValueError):
    """A head file that is not a valid DVI head (or uses something outside the allow-lists)."""


# -- writing ----------------------------------------------------------------------------------------------------------


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


def serialize_head(head: nn.Module, example: torch.Tensor) -> tuple[bytes, str]:
    """Serialise ``head`` to ``.npz`` bytes; returns ``(data, kind)`` with kind ``"spec"`` or ``"graph"``.

    ``example`` is a small batch of features used by ``torch.export`` to trace a custom head. The head is saved in
    eval mode and its mode restored. Raises ``TypeError`` naming what to pass instead when the head can be neither
    described nor traced, or uses an operator outside the allow-list.
    """
    was_training = head.training
    head.eval()
    try:
        spec = head_spec(head)
        if spec is not None:
            module = head if isinstance(head, nn.Sequential) else nn.Sequential(head)
            return _pack({"kind": "spec", "spec": spec}, module.state_dict()), "spec"
        return _serialize_graph(head, example), "graph"
    finally:
        head.train(was_training)


def _pack(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> bytes:
    arrays = {META: np.frombuffer(json.dumps({"format": FORMAT, **meta}).encode("utf-8"), dtype=np.uint8)}
    for name, tensor in tensors.items():
        t = tensor.detach().cpu()
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16; float32 holds every bfloat16 value exactly
            t = t.float()
        arrays[name] = t.numpy()
    return fsio.npz_bytes(arrays)


def _serialize_graph(head: nn.Module, example: torch.Tensor) -> bytes:
    try:
        batch = {0: torch.export.Dim.DYNAMIC}  # any number of rows, not just the example's
        program = torch.export.export(head, (example.detach().cpu(),), dynamic_shapes=(batch,))
        program = program.run_decompositions()
        meta, tensors = _graph_to_json(program)
    except Exception as err:  # torch.export raises many unrelated types
        raise TypeError(
            f"The 'head' parameter of snapshot must be an nn.Linear, an nn.Sequential of standard layers "
            f"({', '.join(sorted(_LAYERS))}) or a module that torch.export can trace on CPU into plain tensor "
            f"operations. Got {type(head).__name__}, which could not be saved: {err}. "
            "Pass the classifier's final layer(s) (e.g. head=model.fc) instead."
        ) from err
    return _pack(meta, tensors)


def _graph_to_json(program: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The exported program as ``{"kind": "graph", "inputs": ..., "nodes": ...}`` plus its tensors by name."""
    values = {**program.state_dict, **program.constants}
    tensors: dict[str, torch.Tensor] = {}
    inputs: list[dict[str, Any]] = []
    for spec in program.graph_signature.input_specs:
        name = spec.arg.name
        if spec.kind.name == "USER_INPUT":
            inputs.append({"name": name, "tensor": None})
            continue
        key = f"t{len(tensors)}"
        tensors[key] = values[spec.target]
        inputs.append({"name": name, "tensor": key})
    nodes = []
    for node in program.graph.nodes:
        if node.op == "call_function":
            nodes.append({"name": node.name, "op": _op_name(node.target),
                          "args": _encode(node.args), "kwargs": _encode(node.kwargs)})
        elif node.op == "output":
            nodes.append({"name": "output", "op": "output", "args": _encode(node.args[0])})
    if sum(1 for i in inputs if i["tensor"] is None) != 1:
        raise ValueError("the head must take exactly one tensor argument (the features)")
    return {"kind": "graph", "inputs": inputs, "nodes": nodes}, tensors


def _op_name(target: Any) -> str:
    if isinstance(target, torch._ops.OpOverload):
        namespace, packet = target.namespace, target._schema.name.split("::")[-1]
        if namespace != "aten" or packet not in ALLOWED_OPS:
            raise ValueError(f"operator {namespace}.{packet} is not supported in a saved head")
        return f"aten.{packet}.{target._overloadname}"
    name = getattr(target, "__name__", "")
    if getattr(target, "__module__", None) in ("_operator", "operator") and name in _PY_OPS:
        return f"operator.{name}"
    raise ValueError(f"call to {target!r} is not supported in a saved head")


def _encode(value: Any) -> Any:
    """Node arguments as JSON: node references, numbers, strings, lists and dtypes."""
    if isinstance(value, torch.fx.Node):
        return {"node": value.name}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"kw": {str(k): _encode(v) for k, v in value.items()}}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": "cpu"}
    if isinstance(value, (torch.memory_format, torch.layout)):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not np.isfinite(value):
            return {"float": str(value)}
        return value
    raise ValueError(f"argument of type {type(value).__name__} is not supported in a saved head")


# -- reading ----------------------------------------------------------------------------------------------------------


def load_head(path: str, kind: str) -> nn.Module:
    """Load a head saved by :func:`serialize_head`, on CPU, in eval mode; :class:`HeadFormatError` if invalid."""
    if kind in LEGACY_KINDS or path.endswith((".pt", ".pt2")):
        raise HeadFormatError("this head " + LEGACY_MESSAGE.format(name=path.rsplit("/", 1)[-1]))
    try:
        arrays = fsio.read_npz(path, required=[META])
    except fsio.UnreadableFile as err:
        raise HeadFormatError(str(err)) from None
    meta = _parse_meta(arrays.pop(META))
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()}
    if meta.get("kind") != kind:
        raise HeadFormatError(f"head file says kind {meta.get('kind')!r} but its record says {kind!r}")
    if kind == "spec":
        module: nn.Module = build_from_spec(meta.get("spec"))
        try:
            module.load_state_dict(tensors)
        except (RuntimeError, KeyError) as err:
            raise HeadFormatError(f"head tensors do not fit its layers: {err}") from None
    elif kind == "graph":
        module = GraphHead(meta, tensors)
    else:
        raise HeadFormatError(f"unknown head kind {kind!r}; expected 'spec' or 'graph'")
    return module.eval()


def _parse_meta(raw: np.ndarray) -> dict[str, Any]:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise HeadFormatError("head file's __meta__ is not UTF-8 bytes")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise HeadFormatError(f"head file's __meta__ is not valid JSON: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise HeadFormatError(f"not a DVI head file (format {FORMAT})")
    return meta


def build_from_spec(spec: Any) -> nn.Sequential:
    """Rebuild the layers described by :func:`head_spec` (weights uninitialised)."""
    if not isinstance(spec, list) or not spec or len(spec) > 256:
        raise HeadFormatError("a saved head's layer list must be a non-empty list of at most 256 layers")
    layers = []
    for entry in spec:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind not in _LAYERS or not isinstance(entry.get("args"), dict):
            raise HeadFormatError(f"Unknown layer type {kind!r} in a saved DVI head.")
        try:
            layers.append(_LAYERS[kind][0](entry["args"]))
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise HeadFormatError(f"bad arguments for layer {kind} in a saved DVI head: {err}") from None
    return nn.Sequential(*layers)


class GraphHead(nn.Module):
    """Runs a saved graph of allow-listed ATen operators; its tensors are frozen parameters."""

    def __init__(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        inputs, nodes = meta.get("inputs"), meta.get("nodes")
        if not isinstance(inputs, list) or not isinstance(nodes, list) or not 0 < len(nodes) <= MAX_NODES:
            raise HeadFormatError(f"a graph head needs an input list and 1..{MAX_NODES} nodes")
        self._weights = nn.ParameterDict()
        self._inputs: list[tuple[str, str | None]] = []
        for item in inputs:
            name, key = (item.get("name"), item.get("tensor")) if isinstance(item, dict) else (None, None)
            if not isinstance(name, str) or (key is not None and key not in tensors):
                raise HeadFormatError(f"bad graph input {str(item)[:80]}")
            if key is not None and key not in self._weights:
                self._weights[key] = nn.Parameter(tensors[key], requires_grad=False)
            self._inputs.append((name, key))
        if sum(1 for _, key in self._inputs if key is None) != 1:
            raise HeadFormatError("a graph head must take exactly one features input")
        self._nodes = [self._check_node(node, i, len(nodes)) for i, node in enumerate(nodes)]
        _check_references(self._inputs, self._nodes)

    @staticmethod
    def _check_node(node: Any, i: int, count: int) -> tuple[str, Callable[..., Any] | None, Any, Any]:
        if not isinstance(node, dict) or not isinstance(node.get("name"), str) or not isinstance(node.get("op"), str):
            raise HeadFormatError(f"graph node {i} is malformed")
        _check_depth(node.get("args"), 0)
        _check_depth(node.get("kwargs"), 0)
        if node["op"] == "output":
            if i != count - 1:
                raise HeadFormatError("the output node must come last")
            return node["name"], None, node.get("args"), None
        kwargs = node.get("kwargs") or {"kw": {}}
        if not isinstance(kwargs, dict) or not isinstance(kwargs.get("kw"), dict):
            raise HeadFormatError(f"graph node {node['name']!r} has malformed keyword arguments")
        return node["name"], resolve_op(node["op"]), node.get("args") or [], kwargs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, Any] = {}
        for name, key in self._inputs:
            env[name] = x if key is None else self._weights[key]
        for name, fn, args, kwargs in self._nodes:
            if fn is None:
                out = _decode(args, env)
                return out[0] if isinstance(out, (list, tuple)) and len(out) == 1 else out
            value = fn(*_decode(args, env), **_decode(kwargs, env))
            _check_size(name, value)
            env[name] = value
        raise HeadFormatError("graph head has no output node")


def resolve_op(name: str) -> Callable[..., Any]:
    """The callable for an allow-listed operator name (``aten.<op>.<overload>`` or ``operator.<fn>``)."""
    parts = name.split(".")
    if len(parts) == 2 and parts[0] == "operator" and parts[1] in _PY_OPS:
        return _PY_OPS[parts[1]]
    if len(parts) != 3 or parts[0] != "aten" or parts[1] not in ALLOWED_OPS:
        raise HeadFormatError(f"operator {name[:80]!r} is not allowed in a saved head")
    packet = getattr(torch.ops.aten, parts[1], None)
    if packet is None or parts[2] not in packet.overloads():
        raise HeadFormatError(f"operator {name[:80]!r} does not exist in this torch version")
    return getattr(packet, parts[2])


def _check_depth(value: Any, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise HeadFormatError("graph node arguments are nested too deeply")
    if isinstance(value, list):
        for v in value:
            _check_depth(v, depth + 1)
    elif isinstance(value, dict):
        for v in value.values():
            _check_depth(v, depth + 1)


def _check_references(inputs: list[tuple[str, str | None]], nodes: list[tuple]) -> None:
    """Every node argument refers to an input or an earlier node (so evaluation order is the list order)."""
    known = {name for name, _ in inputs}

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, dict):
            if "node" in value and value["node"] not in known:
                raise HeadFormatError(f"graph refers to {str(value['node'])[:40]!r} before defining it")
            for v in value.values():
                walk(v)

    for name, _fn, args, kwargs in nodes:
        walk(args)
        walk(kwargs)
        known.add(name)
    if nodes[-1][1] is not None:
        raise HeadFormatError("a graph head must end with its output node")


def _decode(value: Any, env: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_decode(v, env) for v in value]
    if isinstance(value, dict):
        if "node" in value:
            return env[value["node"]]
        if "kw" in value:
            return {str(k): _decode(v, env) for k, v in value["kw"].items()}
        if "dtype" in value:
            if value["dtype"] not in _DTYPES:
                raise HeadFormatError(f"dtype {str(value['dtype'])[:20]!r} is not allowed in a saved head")
            return _DTYPES[value["dtype"]]
        if "device" in value:
            return None  # the tensors' own device (the head may have been moved to a GPU)
        if "float" in value:
            return float(str(value["float"])[:8])
        raise HeadFormatError("unknown argument encoding in a saved head")
    return value


def _check_size(name: str, value: Any) -> None:
    tensors = value if isinstance(value, (list, tuple)) else [value]
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.numel() > MAX_ELEMENTS:
            raise HeadFormatError(f"graph node {name!r} made a tensor of {t.numel()} elements "
                                  f"(more than {MAX_ELEMENTS}); the saved head is not a plain classifier head")

