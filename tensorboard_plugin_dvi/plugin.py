"""The DVI TensorBoard plugin: thin HTTP handlers over the catalog, the projection service and the frontend files.

Every handler parses its parameters, calls an ``*_impl`` method that knows nothing of HTTP, and answers through
``http_util.Respond``. Errors become JSON ``{"error": message}`` with a 4xx code; unexpected failures are logged
and answered with a generic 500, never a stack trace. See ``http_api.md`` for the routes.
"""

from __future__ import annotations

import functools
import json
import logging
import mimetypes
import os
from collections.abc import Callable
from typing import Any

from tensorboard import context as tb_context
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tensorboard_plugin_dvi import catalog, metadata

logger = logging.getLogger(__name__)

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}


def frontend_dir() -> str:
    """Folder holding the tab's files: inside the installed package, else the source checkout's ``frontend/``."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "frontend"), os.path.join(os.path.dirname(here), "frontend")):
        if os.path.isfile(os.path.join(candidate, "index.js")):
            return candidate
    return os.path.join(here, "frontend")


def respond_json(request: wrappers.Request, body: Any, code: int = 200) -> wrappers.Response:
    """JSON response via TensorBoard's ``Respond`` (no-cache, nosniff, gzip)."""
    return http_util.Respond(request, json.dumps(body, allow_nan=False), "application/json", code=code)


def json_errors(handler: Callable) -> Callable:
    """Turn TensorBoard's public errors into JSON 4xx answers and anything else into an opaque 500."""

    @functools.wraps(handler)
    def wrapper(self, request: wrappers.Request) -> wrappers.Response:
        try:
            return handler(self, request)
        except errors.PublicError as err:
            return respond_json(request, {"error": str(err)}, code=err.http_code)
        except Exception:  # noqa: BLE001 - never leak a stack trace to the client
            logger.exception("DVI plugin: internal error on %s", request.path)
            return respond_json(request, {"error": "Internal error in the DVI plugin; see the TensorBoard log."},
                                code=500)

    return wrapper


class DviPlugin(base_plugin.TBPlugin):
    """Serves DVI runs, projections and the DVI tab."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext, *, flags: Any = None) -> None:
        self._context = context
        self._logdir = context.logdir or ""
        self._catalog = catalog.Catalog(context.data_provider, self._logdir)
        self._frontend = frontend_dir()
        self.flags = flags

    # -- TBPlugin --------------------------------------------------------------------------------------------------

    def get_plugin_apps(self) -> dict[str, Callable]:
        return {"/runs": self._serve_runs, "/*": self._serve_static}

    def is_active(self) -> bool:
        return False  # data tagged plugin_name="dvi" activates the plugin; this hook stays cheap

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="DVI")

    # -- helpers ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _request_context(request: wrappers.Request) -> tuple[Any, str]:
        return tb_context.from_environ(request.environ), plugin_util.experiment_id(request.environ)

    # -- runs ------------------------------------------------------------------------------------------------------

    @wrappers.Request.application
    @json_errors
    def _serve_runs(self, request: wrappers.Request) -> wrappers.Response:
        ctx, eid = self._request_context(request)
        return respond_json(request, {"runs": self.runs_impl(ctx, eid)})

    def runs_impl(self, ctx: Any, experiment_id: str) -> list[dict[str, Any]]:
        """Every DVI run with its steps, sizes, classes and projection status."""
        return [self._run_json(self._catalog.index(ctx, experiment_id, run))
                for run in self._catalog.run_names(ctx, experiment_id)]

    def _run_json(self, index: catalog.RunIndex) -> dict[str, Any]:
        latest = index.latest() or {}
        n_classes = int(latest.get("n_classes", 0))
        return {
            "run": index.name,
            "steps": index.steps,
            "n": latest.get("n"), "dim": latest.get("d"), "n_classes": n_classes,
            "classes": latest.get("classes", []),
            "colors": _class_colors(n_classes),
            "has_head": bool(latest), "has_inputs": bool(latest.get("has_inputs")),
            "flags": latest.get("flags", []),
            "source": "dvi",
            "accuracy": {str(s): r.get("accuracy") for s, r in index.records.items()},
            "broken_steps": [p.to_json() for p in index.problems],
            "status": self.status_impl(index),
        }

    def status_impl(self, index: catalog.RunIndex) -> dict[str, Any]:
        """Projection status of a run (overridden once the projection service is attached)."""
        return {"state": "not projected", "ready": [], "queued": [], "running": None, "progress": 0.0,
                "error": None}

    # -- static frontend files ------------------------------------------------------------------------------------

    @wrappers.Request.application
    @json_errors
    def _serve_static(self, request: wrappers.Request) -> wrappers.Response:
        prefix = f"/data/plugin/{metadata.PLUGIN_NAME}/"
        path = request.path
        rel = path[path.index(prefix) + len(prefix):] if prefix in path else ""
        body, mime = self.static_impl(rel)
        return http_util.Respond(request, body, mime)

    def static_impl(self, rel: str) -> tuple[bytes, str]:
        """Bytes and MIME type of a frontend file; NotFoundError for anything else."""
        ext = os.path.splitext(rel)[1]
        if ext not in _STATIC_TYPES or "\x00" in rel:
            raise errors.NotFoundError(f"No such DVI route or file: {rel!r}.")
        root = os.path.realpath(self._frontend)
        path = os.path.realpath(os.path.join(root, rel))
        if os.path.commonpath([root, path]) != root:
            raise errors.NotFoundError(f"No such DVI route or file: {rel!r}.")
        try:
            with open(path, "rb") as handle:
                return handle.read(), _STATIC_TYPES.get(ext) or mimetypes.guess_type(path)[0] or "text/plain"
        except OSError:
            raise errors.NotFoundError(f"No such DVI route or file: {rel!r}.") from None


def _class_colors(n_classes: int) -> list[str]:
    from dvi_core.landscape import class_colors

    return class_colors(n_classes) if n_classes else []
