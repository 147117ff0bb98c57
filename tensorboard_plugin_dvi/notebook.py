"""Training dynamics in a notebook, straight from a run directory (no TensorBoard needed).

    from tensorboard_plugin_dvi import notebook
    table = notebook.load("runs/resnet_noisy")            # pandas DataFrame when pandas is installed
    top = notebook.suspects("runs/resnet_noisy", k=50)    # the ranked suspects with reasons

The table has one row per sample and the same columns as the plugin's ``dynamics`` route (see ``docs/dynamics.md``).
Only steps whose files match their recorded hashes are read; files are opened without pickle.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tensorboard_plugin_dvi import diagnosis, storage
from tensorboard_plugin_dvi import suspects as suspects_mod
from tensorboard_plugin_dvi.dynamics import Dynamics, StepInput


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def read(run_dir: str) -> tuple[Dynamics, list[str]]:
    """The run's :class:`Dynamics` over every verified step, and its class names.

    Raises ``FileNotFoundError`` when the directory holds no readable DVI step; a step whose arrays are malformed
    is skipped with a warning.
    """
    store = storage.RunStore(run_dir)
    records, _ = store.read_run()
    if not records:
        raise FileNotFoundError(f"No readable DVI steps under {run_dir!r} (expected {storage.asset_dir(run_dir)!r}).")
    latest = records[max(records)]
    dyn = Dynamics(latest.get("n_classes"))
    for step in sorted(records):
        try:
            dyn.add_step(StepInput.from_arrays(step, store.load_arrays(records[step], features=False)))
        except (storage.StepError, ValueError) as err:
            warnings.warn(f"DVI: step {step} of {run_dir} skipped: {err}", stacklevel=2)
    names = latest.get("classes") or []
    classes = [str(n) for n in names] if len(names) == dyn.n_classes else [str(c) for c in range(dyn.n_classes)]
    return dyn, classes


def load(run_dir: str, *, frame: bool | None = None) -> Any:
    """Per-sample dynamics of a run: a pandas DataFrame, or a dict of numpy arrays (one per column).

    ``frame=None`` returns a DataFrame when pandas is importable and the dict otherwise; ``frame=True`` requires
    pandas; ``frame=False`` always returns the dict. Besides the statistics, the columns hold the suspicion
    ``score``, the ``category`` ("" when not a suspect) and the class names ``label_name`` and ``last_pred_name``.
    """
    dyn, classes = read(run_dir)
    table = diagnosis.full_table(dyn)
    names = np.asarray(classes, dtype=object)
    table["label_name"] = names[table["label"]]
    table["last_pred_name"] = names[table["last_pred"]]
    return _maybe_frame({k: table[k] for k in (*diagnosis.COLUMNS, "label_name", "last_pred_name")}, frame)


def suspects(run_dir: str, k: int = 100, *, frame: bool | None = None) -> Any:
    """The top ``k`` suspects (rank order) as a DataFrame or a dict of numpy arrays, like :func:`load`."""
    dyn, classes = read(run_dir)
    rows = suspects_mod.suspects(dyn.table(), classes, k)
    keys = ("id", "label", "pred", "split", "category", "score", "reason")
    columns = {key: np.asarray([r[key] for r in rows], dtype=object if key in ("split", "category", "reason")
                               else None) for key in keys}
    return _maybe_frame(columns, frame)


def _maybe_frame(columns: dict[str, np.ndarray], frame: bool | None) -> Any:
    pandas = _pandas() if frame is not False else None
    if frame and pandas is None:
        raise ImportError("frame=True needs pandas (pip install pandas); use frame=False for numpy arrays.")
    return pandas.DataFrame(columns) if pandas is not None else columns
