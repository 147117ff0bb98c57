"""DVI for TensorBoard: time-travelling maps of a classifier's representations and decision boundaries.

Write with ``dvi.summary.snapshot(writer, step=..., features=..., labels=..., head=...)``; view in TensorBoard's
"DVI" tab.
"""

from tensorboard_plugin_dvi import dynamics, layers, summary
from tensorboard_plugin_dvi.collect import collect

__version__ = "0.2.0"
__all__ = ["collect", "dynamics", "layers", "summary", "__version__"]
