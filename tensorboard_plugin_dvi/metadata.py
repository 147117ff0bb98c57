"""Names and schema of the DVI plugin's data in TensorBoard event files.

One module owns the plugin name, the summary tag and the schema version so that the writer (``summary``), the
reader (``storage``) and the HTTP plugin agree without importing each other.
"""

from __future__ import annotations

import json

from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "dvi"
"""Plugin name: TensorBoard's ``plugin_data.plugin_name`` and the URL prefix ``/data/plugin/dvi/``."""

TAG = "dvi/snapshot"
"""The one summary tag that carries DVI's per-step index records."""

LAYERS_TAG = "dvi/layers"
"""The summary tag of per-layer weight statistics records (``dvi.layers.log_layers``)."""

SCHEMA_VERSION = 1
"""Version of the index record and of the files under ``<run>/plugins/dvi/``."""

ASSET_DIR = ("plugins", PLUGIN_NAME)
"""Where a run's DVI files live, relative to the run directory (TensorBoard's plugin-asset convention)."""


def create_summary_metadata() -> summary_pb2.SummaryMetadata:
    """Metadata for an index record: a tensor summary owned by the ``dvi`` plugin.

    ``plugin_data.content`` is kept by TensorBoard once per tag, so it holds only the schema version; per-step facts
    go in the tensor value itself.
    """
    return summary_pb2.SummaryMetadata(
        summary_description="DVI snapshot index record (JSON)",
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps({"version": SCHEMA_VERSION}).encode("utf-8"),
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )
