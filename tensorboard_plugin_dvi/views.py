"""What each route answers, computed from a run's index, its stored arrays and its projection results.

No HTTP here: the plugin's handlers parse parameters, call these functions and respond. Loaded models, heads and
per-step arrays are kept in small in-memory LRU caches so that repeated requests (animation, hover) are fast.
Heavy work (landscapes, predictions) goes through :class:`flight.Flights`: identical concurrent requests share one
computation and at most two run at once. Results are read through the result index, never through the job queue.

Files that fail to load are never a server error: a step whose arrays or head are unreadable is marked broken
(:class:`BrokenStep`, 404, listed in ``runs``); a cached result that fails to load is discarded and recomputed
(:class:`NotReady`, 202).
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import os
import threading
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
from tensorboard import errors

from tensorboard_plugin_dvi import cache, flight, fsio, method, params, storage, trajectory, transfer
from tensorboard_plugin_dvi.catalog import RunIndex
from tensorboard_plugin_dvi.jobs import ProjectionService

MAX_ZOOM = 8
TILE_SIZES = (256, 512)
"""Overview sizes rendered ahead for each projected step (the tab's first request and its double-density one)."""
LANDSCAPE_PNG_LEVEL = 1
"""zlib level of landscape PNGs: a tile a user waits for encodes some 30% faster than at level 3, for about 18% more
bytes (some 26 KB for a 256 px tile of the demo)."""
PYRAMID_TILE_SIZE = 256
"""The size of the tiles the tab asks for (its ``TILE_SIZE`` in ``frontend/state/tiles.js``): rendered ahead."""


class LRU:
    """A thread-safe least-recently-used cache of computed values."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> Any:
        """The cached value of ``key``, or None (nothing is computed)."""
        with self._lock:
            return self._data.get(key)

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 for stability, returned as float32."""
    z = logits.astype(np.float64) - logits.max(1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


class ProjectionFailed(errors.PublicError):
    """Projecting the step failed on its data; the message says why (HTTP 422, no stack trace)."""

    http_code = 422


class BrokenStep(errors.PublicError):
    """A step whose files cannot be read (truncated, altered, holding objects): reported, never served (404)."""

    http_code = 404


class NotReady(Exception):
    """The step is not projected yet; carries the 202 body."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("status", "not ready"))
        self.body = body


class Views:
    """Route logic over the result index and a :class:`ProjectionService`."""

    def __init__(self, service: ProjectionService, *, autoproject: str = "on_demand",
                 on_broken: Callable[[RunIndex, int, str], None] | None = None, workers: int = 2) -> None:
        self.service = service
        self.results = service.index  # the read side: finished results, never through the job queue
        self.autoproject = autoproject
        self.on_broken = on_broken
        self.flights = flight.Flights(workers)
        service.pyramid = self.render_pyramid  # the worker renders tiles ahead through this, when it is idle
        self._light = LRU(256)  # per-step labels/pred/conf/split/ids/flags (small)
        self._models = LRU(16)  # StepProjection objects
        self._heads = LRU(16)
        self._pngs = LRU(64)
        self._digests = LRU(1024)  # open per-step digests (memory maps: pages are read on demand)

    # -- shared loading --------------------------------------------------------------------------------------------

    def step_record(self, index: RunIndex, step: int) -> dict[str, Any]:
        if step not in index.records:
            broken = {p.step: p.error for p in index.problems}
            why = f": {broken[step]}" if step in broken else ""
            raise errors.NotFoundError(f"Run {index.name!r} has no servable step {step}{why}.")
        return index.records[step]

    def _broken(self, index: RunIndex, step: int, err: Exception) -> BrokenStep:
        """Mark ``step`` broken (listed in ``runs`` from now on) and return the 404 to raise."""
        why = f"its files cannot be read: {err}"
        if self.on_broken is not None:
            self.on_broken(index, step, why)
        return BrokenStep(f"Step {step} of run {index.name!r} is broken: {why}.")

    def light(self, index: RunIndex, step: int) -> dict[str, np.ndarray]:
        """Labels, split, ids, predictions, confidences and flag sets of a step."""
        record = self.step_record(index, step)

        def make() -> dict[str, np.ndarray]:
            arrays = index.store.load_arrays(record, features=False)
            probs = softmax(arrays["logits"])
            return {"ids": arrays["ids"], "labels": arrays["labels"], "split": arrays["split"],
                    "pred": probs.argmax(1).astype(np.int32), "conf": probs.max(1),
                    **{k: v for k, v in arrays.items() if k.startswith("flag_")}}

        try:
            return self._light.get((index.directory, cache.result_name(record)), make)
        except storage.StepError as err:
            raise self._broken(index, step, err) from None

    def digest(self, index: RunIndex, step: int, need_region: bool = False, full: bool = False,
               build_missing: bool = True) -> trajectory.Digest | None:
        """The step's digest (see :mod:`trajectory`), built from its files when missing or outdated (unless
        ``build_missing`` is false); None for runs whose flags do not fit a digest (their routes read the arrays)."""
        record = self.step_record(index, step)
        try:
            return trajectory.digest_of(self, index, step, record, need_region, full, build_missing)
        except storage.StepError as err:
            raise self._broken(index, step, err) from None

    def ready_result(self, index: RunIndex, step: int) -> cache.StepResult:
        """The step's result, or :class:`NotReady` (after queueing it, unless projection is off)."""
        record = self.step_record(index, step)
        try:
            result = self.results.result(index.store, record, None, index.earlier_names(step))
        except storage.StepError as err:
            raise self._broken(index, step, err) from None
        if result is not None:
            return result
        status = self.service.status(index)
        failed = {f["step"]: f["error"] for f in status.get("failed", [])}
        if step in failed:  # not retried on every poll: POST project retries explicitly
            raise ProjectionFailed(f"Projection of step {step} failed: {failed[step]}")
        if self.autoproject != "off":
            self.service.request(index, [step], priority=True)  # the step the user looks at goes first
            status = self.service.status(index)
        state = "running" if status["running"] == step else ("queued" if step in status["queued"] else
                                                              status["state"])
        body = {"status": state, "step": step, "run": index.name,
                "progress": status["progress"] if status["running"] == step else 0.0, "queued": status["queued"]}
        notes = [r["why"] for r in status.get("recomputing", []) if r["step"] == step]
        if notes:
            body["recomputing"] = notes[0]
        raise NotReady(body)

    def model(self, index: RunIndex, step: int, result: cache.StepResult):
        """The step's visualization model; a model file that fails to load is discarded and recomputed (202)."""
        try:
            stamp = os.stat(result.model_path).st_mtime_ns  # a recomputed result reuses its name
            return self._models.get((result.model_path, stamp),
                                    lambda: method.load_model(result.model_path, device=self.service.device))
        except (OSError, ValueError) as err:
            self.results.discard(index.store, result, f"its model file cannot be read ({err})")
            return self.ready_result(index, step)  # raises NotReady after queueing the recomputation

    def head(self, index: RunIndex, step: int):
        record = self.step_record(index, step)
        try:
            return self._heads.get((index.directory, record["files"]["head"]["sha256"]),
                                   lambda: index.store.load_head(record).to(self.service.device))
        except storage.StepError as err:
            raise self._broken(index, step, err) from None

    # -- routes ----------------------------------------------------------------------------------------------------

    def projection(self, index: RunIndex, step: int, fmt: str,
                   base: int | None = None) -> tuple[bytes | dict[str, Any], str]:
        """The step's map: coordinates and per-sample facts, as JSON, the binary form, or the compact form
        (``fmt="compact"``: quantised coordinates and, given the ``base`` step the client holds, only what changed)."""
        result = self.ready_result(index, step)
        digest = self.digest(index, step, full=True)
        if digest is not None and digest.has_positions:
            return transfer.projection_answer(self, index, step, result, digest, fmt, base)
        light = self.light(index, step)
        if not np.array_equal(result.ids, light["ids"]):
            self.results.discard(index.store, result, "its sample ids do not match the step's data")
            self.ready_result(index, step)
        record = index.records[step]
        header = {"run": index.name, "step": step, "n": int(len(light["ids"])),
                  "bounds": [float(b) for b in result.bounds], "accuracy": record.get("accuracy", {}),
                  "flags": {k[5:]: light[k].tolist() for k in light if k.startswith("flag_")}}
        arrays = {"ids": light["ids"], "x": result.xy[:, 0], "y": result.xy[:, 1], "labels": light["labels"],
                  "pred": light["pred"], "conf": light["conf"], "split": light["split"]}
        return transfer.answer(header, arrays, int(record["n_classes"]), fmt, None)

    @staticmethod
    def require_head(index: RunIndex, what: str) -> None:
        """404 for routes that need the logged classifier head, on runs imported without one."""
        if index.source == "projector":
            from tensorboard_plugin_dvi.projector_import import NO_HEAD

            raise errors.NotFoundError(f"Run {index.name!r} {NO_HEAD.format(what=what)}.")

    def landscape(self, index: RunIndex, step: int, size: int, tile: tuple[int, int, int] = (0, 0, 0),
                  cached_only: bool = False) -> bytes:
        """PNG of the classification landscape: the step's whole map, or one tile (zoom z, column x, row y from the
        top) of it; rendered at a cached size bucket and resized when ``size`` is not one. ``cached_only``: only an
        image rendered already (in memory or on disk), else 404; nothing is rendered."""
        self.require_head(index, "landscape")
        if cached_only:
            result = self.ready_result(index, step)
            bucket = cache.size_bucket(size)
            path = self.results.results(index.store).landscape_path(index.records[step], bucket, result.bounds, tile)
            png = self._pngs.peek((path,)) or read_png(path)
            if png is None:
                raise errors.NotFoundError(f"Landscape tile {tile} of step {step} is not rendered yet (asked for with "
                                           "cached=1: only rendered images).")
        else:
            with self.service.on_demand():  # rendering ahead waits while a user's landscapes are answered
                result = self.ready_result(index, step)
                bucket = cache.size_bucket(size)
                png = self._landscape_png(index, step, result, bucket, tile)
        # the tab drew (or prefetched) this step: render its tile pyramid ahead; asked for its tiles: zooming, first
        self.service.want_pyramid(index, step, zooming=tile[0] > 0)
        return png if bucket == size else resize_png(png, size)

    def landscape_view(self, index: RunIndex, step: int, args: Any) -> bytes:
        """PNG of the landscape over a viewport's data box (``box``, ``width``, ``height``; see :func:`params.view`):
        what the tab draws first on a zoom whose tiles are not rendered yet, then replaces with the tiles. Rendered
        like the tile level of the same sharpness (:func:`view_cell`), so it is as exact; kept in memory only (the
        in-memory PNG cache), never written to disk."""
        self.require_head(index, "landscape")
        with self.service.on_demand():  # rendering ahead waits, as for tiles
            result = self.ready_result(index, step)
            box, width, height = params.view(args, tuple(float(b) for b in result.bounds))
            cell = view_cell(result.bounds, box, width, height)
            key = ("view", result.model_path, box, width, height)
            model, head = self.model(index, step, result), self.head(index, step)

            def render() -> bytes:
                pixels = method.render(model, head, box, width, int(index.records[step]["n_classes"]), cell=cell,
                                       height=height)
                return encode_png(pixels, compress_level=LANDSCAPE_PNG_LEVEL)

            png = self._pngs.get(key, lambda: self.flights.run(key, render))
        self.service.want_pyramid(index, step, zooming=True)  # zooming: this step's tiles are rendered first
        return png

    def warm(self, index: RunIndex, step: int) -> dict[str, Any]:
        """Load the step's model and head and build their fused evaluator (``landscape?...&warm=1``): the tab asks
        when it has drawn a step, so a zoom right after does not wait for them (some 0.1 s on the demo)."""
        self.require_head(index, "landscape")
        result = self.ready_result(index, step)
        method.warm(self.model(index, step, result), self.head(index, step))
        return {"run": index.name, "step": step, "warm": True}

    def _landscape_png(self, index: RunIndex, step: int, result: cache.StepResult, size: int,
                       tile: tuple[int, int, int]) -> bytes:
        path = self.results.results(index.store).landscape_path(index.records[step], size, result.bounds, tile)
        return self._pngs.get((path,), lambda: self._landscape_file(index, step, result, size, tile, path))

    def _landscape_file(self, index: RunIndex, step: int, result: cache.StepResult, size: int,
                        tile: tuple[int, int, int], path: str, stop: Callable[[], bool] | None = None) -> bytes:
        """The PNG cached at ``path``, rendered and written first when missing (one render per path at a time).

        ``stop``: a render ahead of need, abandoned (:class:`method.RenderStopped`) when it says so; a user's request
        that joined such a render and saw it stopped renders the tile itself."""

        def render() -> bytes:
            data = read_png(path)
            if data is not None:
                return data
            png = render_landscape(self.model(index, step, result), self.head(index, step), result.bounds,
                                   int(index.records[step]["n_classes"]), size, tile, stop)
            fsio.atomic_write(index.store.writable(path), png)
            return png

        try:
            return self.flights.run(("landscape", path), render)
        except method.RenderStopped:
            if stop is not None:
                raise
            return self.flights.run(("landscape", path), render)  # the render ahead we joined was stopped

    def prerender(self, index: RunIndex, step: int) -> None:
        """Render and cache the step's overview at the sizes the tab asks first (the job calls this)."""
        if index.source == "projector" or step not in index.records:
            return
        self.require_head(index, "landscape")
        result = self.ready_result(index, step)
        for size in TILE_SIZES:  # not through landscape(): no user asked, so no tile pyramid is queued
            self._landscape_png(index, step, result, cache.size_bucket(size), (0, 0, 0))

    def render_pyramid(self, index: RunIndex, step: int, should_stop: Callable[[], bool]) -> bool:
        """Render the step's tile pyramid ahead (levels 1..``prerender_depth`` at the tab's tile size, each level
        nearest the map's centre first) into the disk cache, one tile at a time; False when ``should_stop()`` said
        to yield before the last tile, True when every tile is cached (or the step has none to render)."""
        depth = self.service.settings.prerender_depth
        if index.source == "projector" or step not in index.records or depth <= 0:
            return True
        try:
            result = self.results.result(index.store, index.records[step], None, index.earlier_names(step))
        except storage.StepError:
            return True  # broken: the routes report it when asked
        if result is None:
            return True  # not projected (or re-logged meanwhile): queued again when the tab asks for it
        cache_of = self.results.results(index.store)
        for tile in pyramid_tiles(depth):
            path = cache_of.landscape_path(index.records[step], PYRAMID_TILE_SIZE, result.bounds, tile)
            if os.path.exists(path):
                continue
            if should_stop():
                return False
            try:
                self._landscape_file(index, step, result, PYRAMID_TILE_SIZE, tile, path, should_stop)
            except method.RenderStopped:
                return False  # stopped mid-tile: a user's request goes first; this tile is rendered again later
            except (NotReady, errors.PublicError):
                return True  # the model or head became unreadable: reported when a route asks
        return True

    def predict(self, index: RunIndex, step: int, points: list[list[float]]) -> dict[str, Any]:
        """Class probabilities at 2-D points (inverse projection, then the head)."""
        self.require_head(index, "predict (class probabilities at 2-D points)")
        result = self.ready_result(index, step)
        pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        n_classes = int(index.records[step]["n_classes"])
        if not len(pts):
            return {"run": index.name, "step": step, "probs": [], "pred": []}
        model, head = self.model(index, step, result), self.head(index, step)
        key = ("predict", result.model_path, hashlib.sha256(pts.tobytes()).hexdigest())
        probs = self.flights.run(key, lambda: method.predict(model, head, pts))
        if probs.shape[1] != n_classes:
            raise self._broken(index, step, ValueError(f"the head gives {probs.shape[1]} classes, not {n_classes}"))
        return {"run": index.name, "step": step, "probs": np.round(probs.astype(np.float64), 5).tolist(),
                "pred": probs.argmax(1).tolist()}

    def region_classes(self, index: RunIndex, step: int, result: cache.StepResult) -> np.ndarray | None:
        """The class of the landscape under each sample of a projected step (None for runs without a head), read
        from the step's digest (computed once, when the step is projected)."""
        if index.source == "projector":
            return None
        digest = self.digest(index, step, need_region=True, full=True)
        if digest is not None and digest.has_region and digest.meta["positions"]["result"] == result.name:
            return digest.column("region")
        key = ("region", result.model_path, result.name)
        return self.flights.run(key, lambda: self.region_classes_decoded(index, step, result))

    def region_classes_decoded(self, index: RunIndex, step: int, result: cache.StepResult) -> np.ndarray:
        """The region classes computed: every sample's position decoded and classified by the step's head."""
        model, head = self.model(index, step, result), self.head(index, step)
        return method.predict(model, head, result.xy).argmax(1).astype(np.int32)

    def metrics(self, index: RunIndex, step: int) -> dict[str, Any]:
        """The step's quality metrics (fractions; temporal is a correlation)."""
        result = self.ready_result(index, step)
        return {"run": index.name, "step": step, **result.metrics}

    def sample(self, index: RunIndex, sample_id: int) -> dict[str, Any]:
        """One sample across every step: label, split, flags, and per step its position, prediction, confidence.

        Each step's answer is one record of its digest (see :mod:`trajectory`), not the step's arrays."""
        return trajectory.sample_answer(self, index, sample_id)

    @staticmethod
    def _inputs(index: RunIndex) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            return index.store.load_inputs()
        except storage.StepError as err:
            raise BrokenStep(f"Run {index.name!r} has a broken inputs.npz: {err}.") from None

    def thumbnail(self, index: RunIndex, sample_id: int) -> bytes:
        """PNG of a sample's logged input."""
        inputs = self._inputs(index)
        if inputs is None:
            raise errors.NotFoundError(f"Run {index.name!r} logged no inputs, so it has no thumbnails.")
        ids, thumbs = inputs
        pos = np.flatnonzero(ids == sample_id)
        if not pos.size:
            raise errors.NotFoundError(f"Run {index.name!r} has no thumbnail for sample {sample_id}.")
        image = thumbs[int(pos[0])]
        return encode_png(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)


def pyramid_tiles(depth: int) -> list[tuple[int, int, int]]:
    """Tiles (z, x, y) of levels 1..``depth``, level by level, each level's nearest the map's centre first (where a
    zoom into the middle of the map lands), ties in row-major order."""
    out = []
    for z in range(1, depth + 1):
        n = 1 << z
        out += sorted(((z, x, y) for y in range(n) for x in range(n)),
                      key=lambda t: ((t[1] + 0.5 - n / 2) ** 2 + (t[2] + 0.5 - n / 2) ** 2, t[2], t[1]))
    return out


def render_landscape(model: Any, head: Any, bounds: tuple[float, float, float, float], n_classes: int, size: int,
                     tile: tuple[int, int, int] = (0, 0, 0), stop: Callable[[], bool] | None = None) -> bytes:
    """PNG of the landscape of tile (z, x, y) of the map's ``bounds`` (z = 0: the whole map) at ``size`` px.

    Zoomed tiles are rendered adaptively (cells of ``min(2**z, 8)`` pixels: exact near boundaries, interpolated in
    uniform cells), so a tile shows everything the overview does at no more than one overview pixel per cell.
    ``stop``: see :func:`method.render`."""
    cell = min(1 << tile[0], 8)
    pixels = method.render(model, head, tile_bounds(bounds, tile), size, n_classes, cell=cell, stop=stop)
    return encode_png(pixels, compress_level=LANDSCAPE_PNG_LEVEL)


def view_cell(bounds: tuple[float, ...], box: tuple[float, ...], width: int, height: int) -> int:
    """The adaptive cell of a viewport render: that of the tile level whose pixels are as dense as the viewport's
    (level z: ``min(2**z, 8)``, see :func:`render_landscape`), by the viewport's coarser axis; 1 (every pixel exact)
    at or below level 0's density."""
    density = min(width / (box[2] - box[0]), height / (box[3] - box[1]))
    ratio = density * (bounds[2] - bounds[0]) / PYRAMID_TILE_SIZE  # 2**z for a view exactly as dense as level z
    if not ratio >= 2:
        return 1
    return min(8, 1 << int(math.floor(math.log2(ratio) + 1e-9)))


def read_png(path: str) -> bytes | None:
    """A cached PNG's bytes, or None when it is missing or not a PNG (an interrupted write, say)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data if data.startswith(b"\x89PNG") else None


def prerender_step(store: storage.RunStore, results: cache.ResultCache, record: dict[str, Any],
                   depth: int, sizes: tuple[int, ...] = TILE_SIZES) -> int:
    """Render a projected step's overviews (``sizes``) and tile pyramid (levels 1..``depth``) into its cache, as
    the plugin's background job does, skipping those already there; the number rendered (0 when not projected).

    For offline use (``dvi-project``), without a running plugin: the PNGs land where the routes look for them."""
    result = results.load(record)
    if result is None:
        return 0
    wanted = [(cache.size_bucket(size), (0, 0, 0)) for size in sizes]
    wanted += [(PYRAMID_TILE_SIZE, tile) for tile in pyramid_tiles(depth)]
    paths = [(size, tile, results.landscape_path(record, size, result.bounds, tile)) for size, tile in wanted]
    todo = [(size, tile, path) for size, tile, path in paths if read_png(path) is None]
    if not todo:
        return 0
    model, head = method.load_model(result.model_path), store.load_head(record)
    for size, tile, path in todo:
        png = render_landscape(model, head, result.bounds, int(record["n_classes"]), size, tile)
        fsio.atomic_write(store.writable(path), png)
    return len(todo)


def tile_bounds(bounds: tuple[float, float, float, float], tile: tuple[int, int, int]) -> tuple[float, ...]:
    """The data box of tile (z, x, y): the map's square cut in 2^z x 2^z, column x from the left, row y from the
    top (largest y), like image rows and web-map tiles."""
    z, tx, ty = tile
    x0, y0, x1, y1 = bounds
    n = 1 << z
    w, h = (x1 - x0) / n, (y1 - y0) / n
    return (x0 + tx * w, y1 - (ty + 1) * h, x0 + (tx + 1) * w, y1 - ty * h)


def resize_png(png: bytes, size: int) -> bytes:
    """A PNG resized to ``size`` x ``size`` (for sizes between the cached buckets)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.resize((size, size), Image.Resampling.BILINEAR).save(out, format="PNG", compress_level=3)
        return out.getvalue()


def encode_png(pixels: np.ndarray, compress_level: int = 3) -> bytes:
    """PNG bytes of a uint8 image [H, W] or [H, W, 3]."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
