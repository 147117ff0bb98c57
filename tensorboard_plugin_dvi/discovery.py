"""Where a run's files are, and whether DVI may read them: one answer for TensorBoard and for ``dvi-project``.

Symlink policy. TensorBoard itself follows symlinked run directories; DVI follows a symlink only while its target
stays inside the logdir (compared by real path). A run whose directory resolves outside the logdir is *skipped*:
listed with the reason, never read or written. Inside a run, a file or folder that resolves outside the logdir
(``plugins/dvi`` or ``inputs.npz`` as a symlink to elsewhere) is treated as missing when reading and refused when
writing, so its step is reported as broken with the reason. Nothing outside ``realpath(logdir)`` is ever opened.
"""

from __future__ import annotations

import dataclasses
import os

from tensorboard_plugin_dvi import fsio, metadata, projector_import

DVI = "dvi"
PROJECTOR = "projector"


@dataclasses.dataclass(frozen=True)
class RunLocation:
    """A run name resolved against the logdir."""

    name: str
    directory: str  # the run's real path ("" when skipped)
    kind: str | None  # "dvi", "projector" or None (no DVI data found on disk)
    skipped: str | None = None  # why the run is not read at all

    def to_json(self) -> dict[str, str | None]:
        """JSON form of a skipped run for the ``runs`` route."""
        return {"run": self.name, "reason": self.skipped}


def logdir_root(logdir: str) -> str:
    """The logdir's real path, the boundary nothing may cross."""
    return os.path.realpath(logdir or ".")


def locate(root: str, name: str) -> RunLocation:
    """Resolve run ``name`` (as TensorBoard names it, relative to the logdir) under ``root``; never raises."""
    if "\x00" in name or os.path.isabs(name):
        return RunLocation(name, "", None, "the run name is not a relative path")
    path = os.path.join(root, name) if name not in ("", ".") else root
    if not fsio.inside(root, path):
        return RunLocation(name, "", None, "the run directory resolves outside the logdir (a symlink?); DVI reads "
                                           "nothing outside the logdir")
    directory = os.path.realpath(path)
    assets = os.path.join(path, *metadata.ASSET_DIR)
    if os.path.lexists(assets) and not fsio.inside(root, assets):
        return RunLocation(name, "", None, "its plugins/dvi folder resolves outside the logdir (a symlink?); DVI "
                                           "reads nothing outside the logdir")
    if os.path.isdir(os.path.join(directory, *metadata.ASSET_DIR)) and not _only_imported(directory):
        return RunLocation(name, directory, DVI)
    if projector_import.has_config(directory):
        return RunLocation(name, directory, PROJECTOR)
    return RunLocation(name, directory, None)


def _only_imported(directory: str) -> bool:
    """Whether the DVI folder holds only converted Embedding Projector steps (the run is an imported one)."""
    folder = os.path.join(directory, *metadata.ASSET_DIR)
    try:
        names = [n for n in os.listdir(folder) if n not in ("cache", projector_import.IMPORT_SUBDIR)]
    except OSError:
        return False
    return not names and projector_import.has_config(directory)


def find_runs(logdir: str) -> list[RunLocation]:
    """Every run under ``logdir`` with DVI data (logged or importable), with names as TensorBoard gives them."""
    root = logdir_root(logdir)
    found: list[RunLocation] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in ("plugins", "cache"))
        for sub in subdirs:  # os.walk does not enter symlinked folders: say which ones lead outside
            link = os.path.join(directory, sub)
            if os.path.islink(link) and not fsio.inside(root, link):
                found.append(locate(root, os.path.relpath(link, root)))
        rel = os.path.relpath(directory, root)
        name = "." if rel == "." else rel
        has_dvi = os.path.isdir(os.path.join(directory, *metadata.ASSET_DIR))
        if has_dvi or projector_import.CONFIG_NAME in files:
            location = locate(root, name)
            if location.kind is not None or location.skipped:
                found.append(location)
    return found
