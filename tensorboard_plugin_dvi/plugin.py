"""The DVI TensorBoard plugin: thin HTTP handlers over the catalog, the views and the frontend files.

Every handler is declared with :func:`route`: it parses its parameters, calls the views (which know nothing of
HTTP) and returns ``(body, mime)``. :func:`route` does the rest in one place: the HTTP method check (405), JSON
errors with a 4xx code for TensorBoard's public errors, 202 for a step that is not projected yet, and an opaque 500
only for a bug (logged, never a stack trace to the client). See ``http_api.md`` for the routes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import mimetypes
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from tensorboard import context as tb_context
from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tensorboard_plugin_dvi import (
    cache,
    catalog,
    diagnosis,
    jobs,
    metadata,
    method,
    params,
    training_views,
    trajectory,
    views,
)

logger = logging.getLogger(__name__)

_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}
Answer = tuple[Any, str]  # (body: dict/list for JSON or bytes, mime type)


class MethodNotAllowed(errors.PublicError):
    """Wrong HTTP method for the route (405)."""

    http_code = 405


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


def route(method: str = "GET", expires: int = 0) -> Callable:
    """Wrap ``handler(self, request) -> (body, mime)`` into a WSGI app with the plugin's one error mapping."""

    def decorate(handler: Callable[[Any, wrappers.Request], Answer]) -> Callable:
        @wrappers.Request.application
        @functools.wraps(handler)
        def app(self, request: wrappers.Request) -> wrappers.Response:
            try:
                if request.method != method and not (method == "GET" and request.method == "HEAD"):
                    raise MethodNotAllowed(f"This route accepts {method} only, not {request.method[:10]}.")
                body, mime = handler(self, request)
            except views.NotReady as pending:
                return respond_json(request, pending.body, code=202)
            except errors.PublicError as err:
                return respond_json(request, {"error": str(err)}, code=err.http_code)
            except Exception:  # noqa: BLE001 - a bug: logged, never a stack trace to the client
                logger.exception("DVI plugin: internal error on %s", request.path)
                return respond_json(request, {"error": "Internal error in the DVI plugin; see the TensorBoard log."},
                                    code=500)
            if mime == "application/json" and not isinstance(body, bytes):  # bytes: JSON encoded already
                return respond_json(request, body)
            return http_util.Respond(request, body, mime, expires=expires)

        return app

    return decorate


class DviPlugin(base_plugin.TBPlugin):
    """Serves DVI runs, projections and the DVI tab."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext, *, flags: Any = None) -> None:
        self._context = context
        self._logdir = context.logdir or ""
        self._catalog = catalog.Catalog(context.data_provider, self._logdir)
        self._frontend = frontend_dir()
        self.flags = flags
        settings = cache.Settings(variant=getattr(flags, "dvi_variant", "dvi"),
                                  prerender_depth=_flag(flags, "dvi_prerender_depth", cache.PRERENDER_DEPTH))
        self.service = jobs.ProjectionService(settings, device=getattr(flags, "dvi_device", "cpu"),
                                              threads=int(getattr(flags, "dvi_threads", 1)),
                                              after_step=self._prerender)
        self._autoproject = getattr(flags, "dvi_autoproject", "on_demand")
        self.views = views.Views(self.service, autoproject=self._autoproject, on_broken=self._catalog.mark_broken)
        self.diagnosis = trajectory.diagnosis_over(self.views)
        self.training = training_views.TrainingViews(positions=trajectory.DigestPositions(self.views))
        self._default_size = int(getattr(flags, "dvi_resolution", 256))
        self._active_checked, self._active = float("-inf"), False
        self._closed = threading.Event()
        if self._autoproject == "all":  # project from TensorBoard's start, not from the first open tab
            threading.Thread(target=self._watch, name="dvi-autoproject", daemon=True).start()

    def close(self) -> None:
        """Stop the background worker and the watcher (tests; TensorBoard itself just exits)."""
        self._closed.set()
        self.service.close()

    def _watch(self, interval: float = 3.0) -> None:
        """With ``--dvi_autoproject all``: every few seconds, queue every run's unprojected steps (new ones too)."""
        ctx = tb_context.RequestContext()
        while not self._closed.wait(interval):
            try:
                for index in self._catalog.indexes(ctx, ""):
                    if index.source == "projector" and index.pending:
                        self._catalog.convert_in_background(index)
                    elif index.steps:
                        self.service.request(index, index.steps)
            except Exception:  # noqa: BLE001 - the data provider may not be up yet; try again next round
                logger.debug("DVI: autoproject watcher round failed", exc_info=True)

    def _prerender(self, index: catalog.RunIndex, step: int) -> None:
        """After the job projects a step: what the routes read of it (its digest with the region class under every
        sample, the run's dynamics folded up to it) and its landscape overview, so no first request computes them."""
        with contextlib.suppress(views.NotReady):  # re-logged meanwhile: its new data is projected next
            trajectory.after_projection(self.views, self.diagnosis, index, step)
            self.views.prerender(index, step)

    # -- TBPlugin --------------------------------------------------------------------------------------------------

    def get_plugin_apps(self) -> dict[str, Callable]:
        return {
            "/runs": self._serve_runs,
            "/projection": self._serve_projection,
            "/landscape": self._serve_landscape,
            "/predict": self._serve_predict,
            "/sample": self._serve_sample,
            "/thumbnail": self._serve_thumbnail,
            "/metrics": self._serve_metrics,
            "/project": self._serve_project,
            "/dynamics": self._serve_dynamics,
            "/suspects": self._serve_suspects,
            "/cube": self._serve_cube,
            "/stepstats": self._serve_stepstats,
            "/alarms": self._serve_alarms,
            "/layers": self._serve_layers,
            "/*": self._serve_static,
        }

    def is_active(self) -> bool:
        """Runs with DVI data activate the plugin by their tag; this only spots Embedding Projector logs.

        Called on every plugin listing, so it looks at most one directory level deep and caches for 30 s.
        """
        now = time.monotonic()
        if now - self._active_checked > 30:
            self._active_checked, self._active = now, _has_projector_config(self._logdir)
        return self._active

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="DVI")

    # -- helpers ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _request_context(request: wrappers.Request) -> tuple[Any, str]:
        return tb_context.from_environ(request.environ), plugin_util.experiment_id(request.environ)

    def _index(self, request: wrappers.Request) -> catalog.RunIndex:
        """The run named by the ``run`` parameter: only names the data provider lists are accepted (else 404)."""
        ctx, eid = self._request_context(request)
        return self._catalog.index(ctx, eid, params.required(request.args, "run"))

    def _index_step(self, request: wrappers.Request) -> tuple[catalog.RunIndex, int]:
        index = self._index(request)
        return index, params.integer(request.args, "step", lo=0)

    # -- runs ------------------------------------------------------------------------------------------------------

    @route()
    def _serve_runs(self, request: wrappers.Request) -> Answer:
        ctx, eid = self._request_context(request)
        return {"runs": self.runs_impl(ctx, eid),
                "skipped": [loc.to_json() for loc in self._catalog.skipped(ctx, eid)]}, "application/json"

    def runs_impl(self, ctx: Any, experiment_id: str) -> list[dict[str, Any]]:
        """Every DVI run (logged, or imported from the Embedding Projector) with its steps, sizes, classes and
        projection status. Cheap: imported runs are not converted here."""
        return [self._run_json(index) for index in self._catalog.indexes(ctx, experiment_id)]

    def _run_json(self, index: catalog.RunIndex) -> dict[str, Any]:
        latest = index.latest() or {}
        n_classes = int(latest.get("n_classes", 0))
        imported = index.source == "projector"
        if imported and index.pending:
            # convert in the background (not here: this route stays cheap); projection is queued only once every
            # listed step is converted, since each step is warm-started from the one before
            self._catalog.convert_in_background(index)
            status = self.service.status(index)
            if status["state"] == "ready":
                status["state"] = "not projected"
        else:
            status = self.status_impl(index)
        body = {
            "run": index.name,
            "steps": index.listed_steps,
            "n": latest.get("n"), "dim": latest.get("d"), "n_classes": n_classes,
            "classes": latest.get("classes", []),
            "colors": method.class_colors(n_classes),
            "has_head": bool(latest) and not imported, "has_inputs": bool(latest.get("has_inputs")),
            "flags": latest.get("flags", []),
            "source": index.source,
            "accuracy": {str(s): r.get("accuracy") for s, r in index.records.items()},
            "broken_steps": [p.to_json() for p in index.problems],
            "status": status,
        }
        if imported:
            body["projector"] = {"tag": index.tag, "pending": index.pending, "error": index.error}
        return body

    def status_impl(self, index: catalog.RunIndex) -> dict[str, Any]:
        """Projection status of a run; with ``--dvi_autoproject=all`` also queues its unprojected steps."""
        if self._autoproject == "all" and index.steps:
            self.service.request(index, index.steps)
        return self.service.status(index)

    # -- projection routes -----------------------------------------------------------------------------------------

    @route()
    def _serve_projection(self, request: wrappers.Request) -> Answer:
        index, step = self._index_step(request)
        fmt = params.choice(request.args, "format", ("json", "binary", "compact"), default="json")
        base = params.integer(request.args, "base", lo=0) if request.args.get("base") else None
        return self.views.projection(index, step, fmt, base)

    @route()
    def _serve_landscape(self, request: wrappers.Request) -> Answer:
        index, step = self._index_step(request)
        if params.choice(request.args, "warm", ("", "1"), default="") == "1":  # the tab drew the step
            return self.views.warm(index, step), "application/json"
        if request.args.get("box") is not None:  # a viewport's data box, at screen resolution
            return self.views.landscape_view(index, step, request.args), "image/png"
        size = params.integer(request.args, "size", default=self._default_size, lo=params.MIN_SIZE,
                              hi=params.MAX_SIZE)
        cached_only = params.choice(request.args, "cached", ("", "1"), default="") == "1"  # rendered ones only
        return self.views.landscape(index, step, size, params.tile(request.args, views.MAX_ZOOM), cached_only), \
            "image/png"

    @route(method="POST")
    def _serve_predict(self, request: wrappers.Request) -> Answer:
        index, step = self._index_step(request)
        return self.views.predict(index, step, params.points(params.json_body(request))), "application/json"

    @route()
    def _serve_metrics(self, request: wrappers.Request) -> Answer:
        index, step = self._index_step(request)
        return self.views.metrics(index, step), "application/json"

    @route()
    def _serve_sample(self, request: wrappers.Request) -> Answer:
        index = self._index(request)
        return self.views.sample(index, params.integer(request.args, "id", lo=0)), "application/json"

    @route(expires=3600)
    def _serve_thumbnail(self, request: wrappers.Request) -> Answer:
        index = self._index(request)
        return self.views.thumbnail(index, params.integer(request.args, "id", lo=0)), "image/png"

    @route(method="POST")
    def _serve_project(self, request: wrappers.Request) -> Answer:
        if request.headers.get("X-XSRF-Protected") != "1":
            raise errors.PermissionDeniedError("POST project requires the header 'X-XSRF-Protected: 1'.")
        body = params.json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("run"), str):
            raise errors.InvalidArgumentError("Parameter 'body' must be a JSON object with a string 'run'.")
        ctx, eid = self._request_context(request)
        index = self._catalog.index(ctx, eid, body["run"])
        steps = body.get("steps", index.steps)
        if not isinstance(steps, list) or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise errors.InvalidArgumentError("Parameter 'steps' must be a list of integer steps.")
        unknown = sorted(set(steps) - set(index.steps))
        if unknown:
            raise errors.NotFoundError(f"Run {index.name!r} has no servable steps {unknown[:10]}.")
        self.service.clear_failures(index, steps)
        raise views.NotReady({"queued": self.service.request(index, steps)})

    # -- training dynamics (no projection needed) ----------------------------------------------------------------

    @route()
    def _serve_dynamics(self, request: wrappers.Request) -> Answer:
        fmt = params.choice(request.args, "format", ("json", "csv", "binary"), default="json")
        return self.diagnosis.dynamics_encoded(self._index(request), fmt)

    @route()
    def _serve_suspects(self, request: wrappers.Request) -> Answer:
        k = params.integer(request.args, "k", default=100, lo=1, hi=diagnosis.MAX_K)
        fmt = params.choice(request.args, "format", ("json", "csv"), default="json")
        return self.diagnosis.suspects(self._index(request), k, fmt)

    @route()
    def _serve_cube(self, request: wrappers.Request) -> Answer:
        rows = params.integer(request.args, "rows", default=diagnosis.DEFAULT_ROWS, lo=1, hi=diagnosis.MAX_PIXELS)
        cols = params.integer(request.args, "cols", default=diagnosis.DEFAULT_COLS, lo=1, hi=diagnosis.MAX_PIXELS)
        split = params.choice(request.args, "split", ("all", "train", "test"), default="all")
        return self.diagnosis.cube(self._index(request), rows, cols, None if split == "all" else split)

    # -- step statistics, alarms and layer weights ------------------------------------------------------------------

    @route()
    def _serve_stepstats(self, request: wrappers.Request) -> Answer:
        fmt = params.choice(request.args, "format", ("json", "csv"), default="json")
        start = params.integer(request.args, "start", default=-1, lo=0) if request.args.get("start") else None
        end = params.integer(request.args, "end", default=-1, lo=0) if request.args.get("end") else None
        return self.training.stepstats(self._index(request), fmt, start, end)

    @route()
    def _serve_alarms(self, request: wrappers.Request) -> Answer:
        fmt = params.choice(request.args, "format", ("json", "csv"), default="json")
        return self.training.alarms(self._index(request), fmt)

    @route()
    def _serve_layers(self, request: wrappers.Request) -> Answer:
        fmt = params.choice(request.args, "format", ("json", "csv"), default="json")
        return self.training.layers(self._index(request), fmt)

    # -- static frontend files ------------------------------------------------------------------------------------

    @route()
    def _serve_static(self, request: wrappers.Request) -> Answer:
        prefix = f"/data/plugin/{metadata.PLUGIN_NAME}/"
        path = request.path
        return self.static_impl(path[path.index(prefix) + len(prefix):] if prefix in path else "")

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


def _flag(flags: Any, name: str, default: Any) -> Any:
    """A ``--dvi_*`` flag's value, or ``default`` when it was not given (None) or there are no flags."""
    value = getattr(flags, name, None)
    return default if value is None else value


def _has_projector_config(logdir: str) -> bool:
    """Whether the logdir or one of its direct subdirectories holds an Embedding Projector config."""
    name = "projector_config.pbtxt"
    try:
        if os.path.isfile(os.path.join(logdir, name)):
            return True
        with os.scandir(logdir) as entries:
            return any(e.is_dir() and os.path.isfile(os.path.join(e.path, name)) for e in entries)
    except OSError:
        return False

