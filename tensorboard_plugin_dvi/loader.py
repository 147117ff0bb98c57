"""The TensorBoard entry point: flags, sampling fix and lazy plugin construction."""

from __future__ import annotations

import argparse
from typing import Any

from tensorboard.plugins import base_plugin

from tensorboard_plugin_dvi import metadata


class DviLoader(base_plugin.TBLoader):
    """Registers ``--dvi_*`` flags, keeps every DVI step, and builds :class:`DviPlugin` (importing torch lazily)."""

    def define_flags(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group("DVI plugin")
        group.add_argument("--dvi_device", default="cpu", metavar="DEVICE",
                           help="torch device for training visualization models: cpu, cuda or cuda:N (default cpu).")
        group.add_argument("--dvi_threads", type=int, default=1, metavar="N",
                           help="CPU threads for training visualization models (default 1: the models are small, "
                                "and TensorBoard and your training job need the other cores).")
        group.add_argument("--dvi_resolution", type=int, default=256, metavar="PIX",
                           help="default landscape resolution in pixels, 16..1024 (default 256).")
        group.add_argument("--dvi_variant", default="dvi", choices=("dvi", "faithful"),
                           help="projection method: 'dvi' (default, improved) or 'faithful' (the paper's recipe).")
        group.add_argument("--dvi_autoproject", default="on_demand", choices=("on_demand", "all", "off"),
                           help="when to project: when the tab asks (default), every step as soon as it is logged, "
                                "or only on explicit request.")
        group.add_argument("--dvi_prerender_depth", type=int, default=None, metavar="N",
                           help="zoom levels of landscape tiles rendered ahead in the background for the steps the "
                                "tab shows, so zooming in draws at once: 0 (off) to 5 (default 3).")

    def fix_flags(self, flags: Any) -> None:
        """Keep every DVI index record: TensorBoard otherwise samples third-party plugins down to 10 or 100 steps."""
        samples = getattr(flags, "samples_per_plugin", None)
        if isinstance(samples, dict):
            samples.setdefault(metadata.PLUGIN_NAME, 0)
        resolution = getattr(flags, "dvi_resolution", 256)
        if not 16 <= resolution <= 1024:
            raise base_plugin.FlagsError(f"--dvi_resolution must be between 16 and 1024. Got {resolution}.")
        depth = getattr(flags, "dvi_prerender_depth", None)
        if depth is not None:
            from tensorboard_plugin_dvi.cache import MAX_PRERENDER_DEPTH  # imports torch: only when the flag is set

            if not 0 <= depth <= MAX_PRERENDER_DEPTH:
                raise base_plugin.FlagsError(
                    f"--dvi_prerender_depth must be between 0 and {MAX_PRERENDER_DEPTH}. Got {depth}.")

    def load(self, context: base_plugin.TBContext) -> base_plugin.TBPlugin:
        import torch

        from tensorboard_plugin_dvi.plugin import DviPlugin

        # Small models: one intra-op thread per call is far faster than threads that spin against TensorBoard's
        # request threads and the training job (a cold 256 px landscape: 0.4 s with 1 thread, 3.2 s with 2 on a
        # busy 2-core machine). Process-wide; TensorBoard itself does not use torch.
        torch.set_num_threads(max(1, int(getattr(context.flags, "dvi_threads", 1) or 1)))

        return DviPlugin(context, flags=context.flags)
