"""Feature collection: one eval pass over a DataLoader that returns exactly what ``dvi.summary.snapshot`` takes.

Writing the snapshot's arrays by hand means an eval-mode, no-grad pass with a forward hook on the penultimate
layer, gathering labels, thumbnails and stable ids along the way. ``collect`` is that pass, so that logging a step is

    dvi.summary.snapshot(writer, step=epoch, head=model.fc, **dvi.collect(model, loader, layer="fc"))

Only the hooked features (float32, on the CPU), the labels, the ids and small uint8 thumbnails are kept from each
batch; batches, activations and the autograd graph are dropped as soon as the batch is done, so memory stays at
about ``N * (4 * D + thumbnail bytes)`` however large the inputs are.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, SequentialSampler

__all__ = ["collect", "thumbnails"]

Adapter = Callable[[Any], Sequence[Any]]
SPLITS = ("train", "test")


def collect(model: torch.nn.Module, loader: Iterable[Any] | Mapping[str, Iterable[Any]], layer: str | torch.nn.Module,
            *, capture: Literal["input", "output"] = "input", adapter: Adapter | None = None,
            inputs: Literal["thumbnails", "raw"] | None = "thumbnails", thumbnail_size: int = 64,
            split: Literal["train", "test"] | None = None, device: str | torch.device | None = None,
            progress: bool | None = None) -> dict[str, Any]:
    """Run ``model`` over ``loader`` once (eval mode, no grad) and return ``snapshot``'s keyword arguments.

    Args:
        model: the classifier; called as ``model(inputs)`` on each batch. Every submodule's train/eval mode is
            restored afterwards, so it can be called in the middle of training.
        loader: a ``DataLoader`` (or any iterable of batches) in a fixed order, or a mapping
            ``{"train": train_loader, "test": test_loader}``, which also fills ``split``.
        layer: the dotted name of a submodule (``"fc"``, ``"layer4.1"``) or the submodule itself.
        capture: ``"input"`` (default) keeps what the layer receives, so ``layer="fc"`` gives exactly the features
            that ``head=model.fc`` maps to logits; ``"output"`` keeps what it returns. Flattened to [N, D].
        adapter: turns one batch into ``(inputs, labels)`` or ``(inputs, labels, ids)``; needed for datasets that
            yield dicts or other tuples, e.g. ``adapter=lambda b: (b["image"], b["label"], b["index"])``. Without
            ids, samples are numbered 0..N-1 in loader order (which is why a shuffling loader is refused).
        inputs: ``"thumbnails"`` keeps uint8 thumbnails [N, h, w, c] (images in [0, 1] or uint8 as they are, any
            other range stretched per image); ``"raw"`` keeps the inputs as given (for ``snapshot``'s ``encoder=``,
            which needs real inputs); ``None`` keeps none (non-image models).
        thumbnail_size: the longest thumbnail side in pixels (larger images are averaged down).
        split: with a single loader, ``"train"`` or ``"test"`` adds a constant ``split`` entry.
        device: where the batches go; default the device of the model's first parameter.
        progress: a tqdm bar on stderr: ``None`` shows one on a terminal for passes longer than two seconds,
            ``True`` always, ``False`` never; without tqdm installed there is no bar.

    Returns:
        ``{"features", "labels", "inputs", "sample_ids"}`` (and ``"split"`` when known): ``features`` float32
        [N, D], ``labels`` int64 [N], ``sample_ids`` int64 [N], all numpy; ``inputs`` as asked, or absent.
    """
    loaders = _named_loaders(loader, split)
    module = _resolve_layer(model, layer)
    if capture not in ("input", "output"):
        raise ValueError(f"The 'capture' parameter of collect must be 'input' or 'output'. Got {capture!r} instead.")
    if inputs not in ("thumbnails", "raw", None):
        raise ValueError(f"The 'inputs' parameter of collect must be 'thumbnails', 'raw' or None. Got {inputs!r} "
                         "instead.")
    if not isinstance(thumbnail_size, int) or thumbnail_size < 1:
        raise ValueError(f"The 'thumbnail_size' parameter of collect must be an int >= 1. Got {thumbnail_size!r} "
                         "instead.")
    target = torch.device(device) if device is not None else _model_device(model)
    gathered = _Gatherer(inputs, thumbnail_size)
    with _eval_mode(model), _Hook(module, capture) as hook, torch.no_grad():
        for name, source in loaders:
            if adapter is None:  # ids can only come from the order: refuse a shuffling loader before the pass
                _check_fixed_order(source)
            for batch in _progress(source, name, progress):
                x, labels, ids = _unpack(adapter, batch)
                model(_to_device(x, target))
                gathered.add(hook.take(), x, labels, ids, name)
            gathered.end_loader(name, source)
    return gathered.result(split_known=split is not None or isinstance(loader, Mapping))


def _named_loaders(loader: Any, split: str | None) -> list[tuple[str | None, Iterable[Any]]]:
    """``[(split name or None, loader)]``: a mapping's loaders in train, test order, else the one loader."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"The 'split' parameter of collect must be 'train', 'test' or None. Got {split!r} instead.")
    if not isinstance(loader, Mapping):
        return [(split, loader)]
    if split is not None:
        raise ValueError("The 'split' parameter of collect must be None when 'loader' is a mapping of splits "
                         "(the mapping's keys give the split).")
    unknown = [key for key in loader if key not in SPLITS]
    if unknown or not loader:
        raise ValueError(f"The 'loader' parameter of collect, as a mapping, must have keys 'train' and/or 'test'. "
                         f"Got keys {sorted(map(str, loader))} instead.")
    return [(key, loader[key]) for key in SPLITS if key in loader]


def _resolve_layer(model: torch.nn.Module, layer: str | torch.nn.Module) -> torch.nn.Module:
    """The submodule named by a dotted ``layer`` path (or ``layer`` itself when it is one of the model's modules)."""
    if isinstance(layer, torch.nn.Module):
        if not any(layer is m for m in model.modules()):
            raise ValueError("The 'layer' parameter of collect is a module that is not part of 'model'.")
        return layer
    if not isinstance(layer, str):
        raise TypeError(f"The 'layer' parameter of collect must be a submodule name such as 'fc' or 'layer4.1', or "
                        f"the submodule itself. Got {type(layer).__name__} instead.")
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        close = difflib.get_close_matches(layer, names, n=3) or names[-5:]
        raise ValueError(f"The 'layer' parameter of collect names no submodule of the model: {layer!r}. "
                         f"Did you mean one of {close}?") from None


def _model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


class _eval_mode:  # noqa: N801 - used like a function in a with statement
    """Context: the model in eval mode, every submodule's own mode restored on exit (mixed modes included)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for module, training in self.modes:
            module.training = training


class _Hook:
    """A forward hook that keeps the layer's input or output of the last forward, on the CPU as float32 [B, D]."""

    def __init__(self, module: torch.nn.Module, capture: str) -> None:
        self.module, self.capture = module, capture
        self.seen: list[torch.Tensor] = []
        self.handle: Any = None

    def __enter__(self) -> _Hook:
        self.handle = self.module.register_forward_hook(self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()

    def _record(self, _module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        value = output if self.capture == "output" else (args[0] if args else None)
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"collect's hook expected the layer's {self.capture} to be a tensor. Got "
                            f"{type(value).__name__} instead (pass the layer whose {self.capture} is the "
                            "representation, or capture='input'/'output').")
        self.seen.append(value.detach())

    def take(self) -> torch.Tensor:
        """The batch's features [B, D] (float32, CPU); the layer must have run exactly once in the forward."""
        seen, self.seen = self.seen, []
        if len(seen) != 1:
            raise RuntimeError(f"collect's layer ran {len(seen)} times in one forward pass; it must run exactly "
                               "once (name a layer that the model calls once per batch).")
        value = seen[0]
        if value.ndim < 2:
            raise ValueError(f"collect's layer {self.capture} has shape {tuple(value.shape)}; it needs a batch "
                             "dimension and at least one feature dimension.")
        return value.flatten(1).float().cpu()


def _unpack(adapter: Adapter | None, batch: Any) -> tuple[Any, Any, Any]:
    """``(inputs, labels, ids or None)`` of one batch, through the adapter when there is one."""
    parts = adapter(batch) if adapter is not None else batch
    if isinstance(parts, (tuple, list)) and len(parts) in (2, 3) and (adapter is not None or len(parts) == 2):
        return parts[0], parts[1], parts[2] if len(parts) == 3 else None
    if adapter is not None:
        raise TypeError(f"collect's adapter must return (inputs, labels) or (inputs, labels, ids). Got "
                        f"{_describe(parts)} instead.")
    raise TypeError(f"collect expects batches of (inputs, labels). Got {_describe(parts)} instead: pass an "
                    "adapter, e.g. adapter=lambda batch: (batch['image'], batch['label']).")


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with keys {sorted(map(str, value))}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


def _to_device(value: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts, lists and tuples) moved to ``device``; anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    return value


def _as_int64(value: Any, what: str, n: int) -> np.ndarray:
    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.shape != (n,) or not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValueError(f"collect needs {n} integer {what} for a batch of {n} features. Got an array of shape "
                         f"{array.shape} and dtype {array.dtype} instead.")
    return array.astype(np.int64)


class _Gatherer:
    """Every loader's features, labels, ids, split and inputs, batch by batch (CPU chunks, concatenated once)."""

    def __init__(self, inputs: str | None, thumbnail_size: int) -> None:
        self.inputs, self.size = inputs, thumbnail_size
        self.chunks: dict[str, list[Any]] = {"features": [], "labels": [], "ids": [], "train": [], "inputs": []}
        self.count = 0  # samples so far: ids by order continue across loaders
        self.batches = 0  # batches of the current loader
        self.ids_given: bool | None = None  # whether the current loader's batches carry ids

    def add(self, features: torch.Tensor, x: Any, labels: Any, ids: Any, split: str | None) -> None:
        """Keep one batch's features, labels, ids (given, or numbered by order), split and inputs as asked."""
        n = features.shape[0]
        if self.ids_given is not None and self.ids_given != (ids is not None):
            raise ValueError("collect got ids for some batches and not for others; the adapter must return ids for "
                             "every batch or for none.")
        self.ids_given = ids is not None
        self.chunks["features"].append(features.numpy())
        self.chunks["labels"].append(_as_int64(labels, "labels", n))
        self.chunks["ids"].append(_as_int64(ids, "ids", n) if ids is not None
                                  else np.arange(self.count, self.count + n, dtype=np.int64))
        self.chunks["train"].append(np.full(n, split == "train"))
        if self.inputs == "thumbnails":
            self.chunks["inputs"].append(thumbnails(_image_batch(x, n), self.size))
        elif self.inputs == "raw":
            self.chunks["inputs"].append(x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(x))
        self.count, self.batches = self.count + n, self.batches + 1

    def end_loader(self, name: str | None, source: Any) -> None:
        """After a loader's pass: it yielded something, and ids numbered by its order are stable (a fixed order)."""
        if not self.batches:
            raise ValueError(f"collect's loader{f' {name!r}' if name else ''} yielded no batches.")
        if not self.ids_given:
            _check_fixed_order(source)
        self.batches, self.ids_given = 0, None

    def result(self, split_known: bool) -> dict[str, Any]:
        """``snapshot``'s keyword arguments: features, labels, inputs (as asked), sample_ids, split (when known)."""
        chunks = self.chunks
        out: dict[str, Any] = {"features": np.concatenate(chunks.pop("features")),
                               "labels": np.concatenate(chunks.pop("labels"))}
        if self.inputs == "thumbnails":
            out["inputs"] = np.concatenate(chunks.pop("inputs"))
        elif self.inputs == "raw":
            out["inputs"] = torch.cat(chunks.pop("inputs"))
        out["sample_ids"] = np.concatenate(chunks.pop("ids"))
        if split_known:
            out["split"] = np.concatenate(chunks.pop("train"))
        return out


def _check_fixed_order(source: Any) -> None:
    """Refuse a DataLoader that shuffles when ids come from the order: they would not be stable across steps."""
    if isinstance(source, DataLoader) and source.batch_sampler is not None and not isinstance(
            source.sampler, SequentialSampler):
        raise ValueError(f"collect numbers samples in loader order, but this DataLoader's sampler is "
                         f"{type(source.sampler).__name__}, so the ids would change from step to step. Use a "
                         "loader with shuffle=False, or return ids from an adapter: adapter=lambda b: (x, y, ids).")


def _image_batch(x: Any, n: int) -> torch.Tensor:
    """The batch's inputs as a tensor of images, or a clear error for inputs that are not images."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.shape[:1] != (n,) or x.ndim not in (3, 4):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"collect makes thumbnails from image batches [N,H,W], [N,C,H,W] or [N,H,W,C]. Got {shape} "
                         "instead: pass inputs=None for models whose inputs are not images.")
    return x


def thumbnails(images: torch.Tensor, size: int = 64) -> np.ndarray:
    """Images [N,H,W], [N,C,H,W] or [N,H,W,C] -> uint8 thumbnails [N, h, w, c] (c in {1, 3}, longest side <= size).

    uint8 images keep their values; a float image within [0, 1] is scaled by 255; any other image is stretched
    from its own minimum to its own maximum (normalised inputs), image by image so batching never changes a pixel.
    """
    x = images.detach().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[3] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"collect makes thumbnails from images with 1 or 3 channels. Got shape {tuple(images.shape)}"
                         " instead: pass inputs=None, or inputs='raw' to keep them as they are.")
    pixels = _to_255(x)
    height, width = pixels.shape[2:]
    if max(height, width) > size:
        scale = size / max(height, width)
        pixels = torch.nn.functional.interpolate(pixels, size=(max(1, round(height * scale)),
                                                               max(1, round(width * scale))), mode="area")
    return pixels.clamp_(0, 255).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _to_255(x: torch.Tensor) -> torch.Tensor:
    """Float pixels on a 0..255 scale (see ``thumbnails`` for the rule)."""
    if x.dtype == torch.uint8:
        return x.float()
    data = x.float()
    if not torch.isfinite(data).all():
        raise ValueError("collect cannot make thumbnails from inputs with NaN or inf values: pass inputs=None.")
    lo = data.amin(dim=(1, 2, 3), keepdim=True)
    hi = data.amax(dim=(1, 2, 3), keepdim=True)
    top, factor = (1.0, 255.0) if x.is_floating_point() else (255.0, 1.0)  # [0, 1] floats, [0, 255] integers
    in_range = (lo >= 0) & (hi <= top)
    return torch.where(in_range, data * factor, (data - lo) * (255.0 / (hi - lo).clamp_min(1e-12)))


def _progress(source: Iterable[Any], name: str | None, progress: bool | None) -> Iterable[Any]:
    """``source`` wrapped in a tqdm bar when asked and tqdm is installed; ``source`` itself otherwise."""
    if progress is False or (progress is None and not _interactive()):
        return source
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return source
    total = len(source) if hasattr(source, "__len__") else None
    desc = f"dvi.collect{f' ({name})' if name else ''}"
    return tqdm(source, total=total, desc=desc, unit="batch", leave=False, delay=0.0 if progress else 2.0)


def _interactive() -> bool:
    """True when stderr is a terminal (a bar in a log file or a CI log is only noise)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())
