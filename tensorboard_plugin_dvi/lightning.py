"""PyTorch Lightning: ``DVICallback`` logs one DVI snapshot every ``every_n_epochs`` training epochs.

    from tensorboard_plugin_dvi.lightning import DVICallback
    trainer = Trainer(callbacks=[DVICallback(val_loader, layer="fc")])

An optional extra (``pip install "tensorboard-plugin-dvi[lightning]"``): this module is the only one that imports
Lightning, and ``import tensorboard_plugin_dvi`` does not import it. At the end of a training epoch the callback runs
``collect`` over its loader (eval mode, no grad, the module's modes restored) and ``snapshot`` into the run directory
of the trainer's ``TensorBoardLogger``, so the DVI tab lists the step beside the run's scalars.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import torch

from tensorboard_plugin_dvi import summary
from tensorboard_plugin_dvi.collect import Adapter, collect

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
    from lightning.pytorch.loggers import TensorBoardLogger
except ImportError as err:  # the optional extra is missing
    raise ImportError("tensorboard_plugin_dvi.lightning needs PyTorch Lightning: "
                      "pip install \"tensorboard-plugin-dvi[lightning]\" (or pip install lightning)") from err

__all__ = ["DVICallback"]


class DVICallback(Callback):
    """Log ``dvi.summary.snapshot`` of ``loader``'s samples every ``every_n_epochs`` epochs of ``Trainer.fit``.

    Args:
        loader: the samples to map: a DataLoader in a fixed order, or ``{"train": ..., "test": ...}`` (which also
            records the split); see ``collect``.
        layer: dotted name of the layer whose input (``capture="input"``, the default) is the representation, e.g.
            ``"fc"`` for a model whose ``fc`` maps penultimate features to logits.
        every_n_epochs: log after epochs ``n-1, 2n-1, ...`` (0-based), i.e. every n-th epoch.
        head: the module mapping features to logits: a dotted submodule name, the module itself, or ``None`` for
            the captured ``layer`` itself (right when ``layer`` is the whole head, such as a final ``nn.Linear``).
        step: ``"epoch"`` (default) or ``"global_step"``, the number each snapshot is logged under.
        log_dir: the run directory; default the trainer's ``TensorBoardLogger`` directory, else ``trainer.log_dir``.
        encoder: a model method's name (``"features"``) or a callable from inputs to features, for input-space
            boundary samples; it makes ``collect`` keep raw inputs instead of thumbnails.
        class_names, flags: passed to ``snapshot``.
        capture, adapter, inputs, progress: passed to ``collect``.
    """

    def __init__(self, loader: Iterable[Any] | Mapping[str, Iterable[Any]], layer: str, *, every_n_epochs: int = 1,
                 head: str | torch.nn.Module | None = None, step: Literal["epoch", "global_step"] = "epoch",
                 log_dir: str | None = None, encoder: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
                 class_names: list[str] | None = None, flags: dict[str, Any] | None = None,
                 capture: Literal["input", "output"] = "input", adapter: Adapter | None = None,
                 inputs: Literal["thumbnails", "raw"] | None = "thumbnails", progress: bool | None = None) -> None:
        super().__init__()
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise ValueError(f"The 'every_n_epochs' parameter of DVICallback must be an int >= 1. Got "
                             f"{every_n_epochs!r} instead.")
        if step not in ("epoch", "global_step"):
            raise ValueError(f"The 'step' parameter of DVICallback must be 'epoch' or 'global_step'. Got {step!r} "
                             "instead.")
        if head is None and capture != "input":
            raise ValueError("DVICallback needs head=... when capture='output' (the head then cannot be the "
                             "captured layer itself).")
        self.loader, self.layer, self.every_n_epochs = loader, layer, every_n_epochs
        self.head, self.step, self.log_dir, self.encoder = head, step, log_dir, encoder
        self.snapshot_args = {"class_names": class_names, "flags": flags}
        self.collect_args = {"capture": capture, "adapter": adapter, "progress": progress,
                             "inputs": "raw" if encoder is not None else inputs}
        self.logged_steps: list[int] = []
        self._run_dir: str | None = None

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Collect and snapshot after every ``every_n_epochs``-th epoch, on the global-zero process only."""
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        step = trainer.current_epoch if self.step == "epoch" else trainer.global_step
        self._run_dir = self._resolve_run_dir(trainer)
        arrays = collect(pl_module, self.loader, layer=self.layer, **self.collect_args)
        summary.snapshot(self._run_dir, step=step, head=self._resolve_head(pl_module),
                         encoder=self._resolve_encoder(pl_module), **arrays, **self.snapshot_args)
        self.logged_steps.append(step)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Close DVI's event file for the run, so everything is flushed when ``fit`` returns."""
        if self._run_dir is not None:
            summary.close(self._run_dir)

    def _resolve_run_dir(self, trainer: Trainer) -> str:
        """``log_dir``, else the first ``TensorBoardLogger``'s version directory, else ``trainer.log_dir``."""
        if self.log_dir is not None:
            return os.fspath(self.log_dir)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                return logger.log_dir
        if trainer.log_dir is None:
            raise ValueError("DVICallback found no run directory: give the Trainer a TensorBoardLogger, or pass "
                             "log_dir=... to DVICallback.")
        return trainer.log_dir

    def _resolve_head(self, pl_module: LightningModule) -> torch.nn.Module:
        if isinstance(self.head, torch.nn.Module):
            return self.head
        return pl_module.get_submodule(self.layer if self.head is None else self.head)

    def _resolve_encoder(self, pl_module: LightningModule) -> Callable[[torch.Tensor], torch.Tensor] | None:
        if isinstance(self.encoder, str):
            encoder = getattr(pl_module, self.encoder, None)
            if not callable(encoder):
                raise ValueError(f"The 'encoder' parameter of DVICallback names {self.encoder!r}, which is not a "
                                 "method or submodule of the LightningModule.")
            return encoder
        return self.encoder
