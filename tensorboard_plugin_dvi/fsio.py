"""Files in a logdir that a stranger may have written: one atomic writer, safe readers, confinement, clean-up.

Everything the plugin reads or writes goes through this module, so that three promises hold in one place:

* **Atomic writes.** A file is written to a temporary name in its final folder, flushed to disk (``fsync``) and
  renamed into place: a reader sees the old file or the new one, never half of one. The result follows the umask
  (as TensorBoard's own event files do), so a colleague's TensorBoard can read it.
* **No pickle.** Arrays are read with ``np.load(allow_pickle=False)`` and must be plain numbers; anything else
  (object arrays, a truncated zip, a missing member) raises :class:`UnreadableFile` with the reason.
* **Confinement.** :func:`confined` resolves symlinks and refuses any path whose real location is outside the
  logdir's real location.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

TEMP_PREFIX = ".tmp-"
"""Prefix of the temporary files of :func:`atomic_write` (hidden; never matched by the readers' patterns)."""

STALE_TEMP_SECONDS = 15 * 60
"""A temporary file older than this was left by a killed writer (a live write takes seconds)."""


class UnreadableFile(Exception):
    """A file that exists but cannot be trusted: truncated, not what its name says, or holding objects."""


class OutsideLogdir(Exception):
    """A path that resolves (through symlinks) to a location outside the logdir."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def atomic_write(path: str, data: bytes | Callable[[Any], None], *, by_path: bool = False) -> None:
    """Write ``data`` to ``path`` atomically, flushed to disk, with the mode the umask gives.

    ``data`` is bytes, or a function writing to an open binary file, or (``by_path=True``) a function writing to a
    file path it is given (for savers that insist on a path).
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            elif not by_path:
                data(handle)
        if by_path:
            data(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays as an uncompressed ``.npz`` (fast to write and read)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def read_npz(path: str, *, required: Iterable[str] = (), skip: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Every member of an ``.npz`` (but ``skip``) as plain numeric/string arrays; :class:`UnreadableFile` otherwise.

    ``required`` names members that must be present. Object arrays are refused without unpickling anything.
    """
    skip = set(skip)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not hasattr(npz, "files"):
                raise UnreadableFile(f"{os.path.basename(path)} is a single array, not an .npz archive")
            missing = sorted(set(required) - set(npz.files))
            if missing:
                raise UnreadableFile(f"{os.path.basename(path)} lacks the arrays {missing}")
            out = {k: npz[k] for k in npz.files if k not in skip}
    except UnreadableFile:
        raise
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - zipfile, numpy and OS errors all mean "cannot trust this file"
        raise UnreadableFile(f"cannot read {os.path.basename(path)}: {type(err).__name__}: {err}") from None
    for name, value in out.items():
        if value.dtype.kind not in "biufcUS":
            raise UnreadableFile(f"{os.path.basename(path)}: array {name!r} has dtype {value.dtype}, not numbers")
    return out


def npz_dtypes(path: str) -> dict[str, np.dtype]:
    """The dtype of each member of an ``.npz``, read from the members' headers only (cheap, no data, no pickle)."""
    import zipfile

    out: dict[str, np.dtype] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    out[info.filename[:-4]] = reader(member)[2]
    except Exception as err:  # noqa: BLE001 - zipfile and numpy errors all mean "cannot trust this file"
        raise UnreadableFile(f"cannot read {os.path.basename(path)}: {type(err).__name__}: {err}") from None
    return out


def read_json_file(path: str, limit: int = 16 << 20) -> bytes:
    """The bytes of a small file (JSON records); refuses files larger than ``limit`` (a planted huge file)."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnreadableFile(f"{os.path.basename(path)} is larger than {limit} bytes")
    return data


def inside(root: str, path: str) -> bool:
    """Whether ``path`` resolves (symlinks followed) to ``root`` or below it; ``root`` must be a real path."""
    real = os.path.realpath(path)
    try:
        return os.path.commonpath([root, real]) == root
    except ValueError:
        return False


def confined(root: str, path: str) -> str:
    """``path`` resolved; raises :class:`OutsideLogdir` when it leaves ``root`` (a real path)."""
    if "\x00" in path:
        raise OutsideLogdir("path contains a NUL byte")
    if not inside(root, path):
        raise OutsideLogdir(f"{path} resolves outside the logdir")
    return os.path.realpath(path)


def clean_stale_temp_files(directory: str, older_than: float = STALE_TEMP_SECONDS) -> int:
    """Delete temporary files that killed writers left in ``directory``; returns how many were removed."""
    removed, now = 0, time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    for entry in entries:
        if not (entry.name.startswith(TEMP_PREFIX) or entry.name.startswith("tmp-") and entry.name.endswith(".part")):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed


def remove_quietly(*paths: str) -> None:
    """Delete files, ignoring those already gone (discarding a broken cache entry)."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
