"""DVI for TensorBoard: time-travelling maps of a classifier's representations and decision boundaries.

Write with ``dvi.summary.snapshot(writer, step=..., features=..., labels=..., head=...)``; view in TensorBoard's
"DVI" tab.
"""

from tensorboard_plugin_dvi import summary

__version__ = "0.1.0"
__all__ = ["summary", "__version__"]
