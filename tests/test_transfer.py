"""The compact projection form (``format=compact``): encoding, decoding and malformed answers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tensorboard_plugin_dvi import binary, transfer


def _step(n: int = 500, seed: int = 0, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(3, 5, n).astype(np.float32), rng.normal(-2, 0.5, n).astype(np.float32)
    cols = {"ids": np.arange(n) if ids is None else ids, "labels": rng.integers(0, 10, n),
            "split": (rng.random(n) < 0.8).astype(np.uint8), "pred": rng.integers(0, 10, n),
            "conf": rng.random(n), "flags": np.zeros(n, np.uint32)}
    return x, y, cols


def _encode(x, y, cols, base=None, base_step=None, n_classes=10) -> bytes:
    parts = transfer.compact_parts(x, y, cols, base, base_step)
    return transfer.encode_compact({"n": len(x), "step": 1, **parts["header"]}, parts["arrays"], n_classes)


def test_full_answer_round_trips_within_the_quantisation_step():
    x, y, cols = _step()
    header, out = transfer.decode_compact(_encode(x, y, cols))
    x0, y0, x1, y1 = header["box"]
    assert header["base"] is None and header["ids_range"] is True
    assert np.abs(out["x"] - x).max() <= (x1 - x0) / 131070 * 1.01
    assert np.abs(out["y"] - y).max() <= (y1 - y0) / 131070 * 1.01
    assert np.abs(out["conf"] - cols["conf"]).max() <= 1 / 510 + 1e-6
    for k in ("ids", "labels", "split", "pred"):
        assert out[k].tolist() == cols[k].tolist(), k


def test_answer_against_a_base_carries_only_the_changed_predictions():
    x, y, base = _step(seed=1)
    x2, y2, cols = _step(seed=2)
    cols.update(ids=base["ids"], labels=base["labels"], split=base["split"])
    cols["pred"] = base["pred"].copy()
    cols["pred"][[3, 70, 400]] = (cols["pred"][[3, 70, 400]] + 1) % 10
    blob = _encode(x2, y2, cols, base, 7)
    header, arrays = binary.decode(blob)
    assert header["base"] == 7 and arrays["changed"].tolist() == [3, 70, 400]
    assert "labels" not in arrays and "ids" not in arrays and "split" not in arrays
    _, out = transfer.decode_compact(blob, base)
    assert out["pred"].tolist() == cols["pred"].tolist() and out["labels"].tolist() == base["labels"].tolist()
    assert len(blob) < 0.5 * len(_encode(x2, y2, cols)) + 4 * len(x2)
    with pytest.raises(ValueError):
        transfer.decode_compact(blob)  # relative to a base the caller does not give


def test_a_base_with_other_samples_or_labels_gives_a_full_answer():
    x, y, base = _step(seed=1)
    _, _, cols = _step(seed=2, ids=np.arange(500)[::-1].copy())
    header, out = transfer.decode_compact(_encode(x, y, cols, base, 3))
    assert header["base"] is None and header["ids_range"] is False and out["ids"].tolist() == cols["ids"].tolist()
    _, _, relabelled = _step(seed=1)
    relabelled["labels"] = (relabelled["labels"] + 1) % 10
    assert transfer.decode_compact(_encode(x, y, relabelled, base, 3))[0]["base"] is None


def test_sizes_at_100k_points():
    x, y, cols = _step(n=100_000)
    full = _encode(x, y, cols)
    assert len(full) < 801_000  # 2 x 2 bytes of coordinates + 4 x 1 byte and a header; no ids (0..N-1)
    same = dict(cols, pred=cols["pred"].copy())
    same["pred"][:1000] = (same["pred"][:1000] + 1) % 10
    assert len(_encode(x, y, same, cols, 0)) < 520_000


def test_degenerate_and_wide_values():
    x = np.full(3, 2.0, np.float32)
    _, out = transfer.decode_compact(_encode(x, x.copy(), _step(3)[2]))
    assert np.allclose(out["x"], 2.0) and np.allclose(out["y"], 2.0)
    _, out = transfer.decode_compact(_encode(np.zeros(0, np.float32), np.zeros(0, np.float32), _step(0)[2]))
    assert len(out["x"]) == 0
    _, _, cols = _step(4, ids=np.array([5, 2 ** 40, -3, 9]))
    _, out = transfer.decode_compact(_encode(np.arange(4.0), np.arange(4.0), cols, n_classes=1000))
    assert out["ids"].tolist() == [5, 2 ** 40, -3, 9]  # past int32: float64, exact


@pytest.mark.parametrize("cut", [0, 3, 7, 9, 40, -1, -100])
def test_truncated_answers_raise_value_error(cut):
    x, y, cols = _step()
    blob = _encode(x, y, cols)
    with pytest.raises(ValueError):
        transfer.decode_compact(blob[:cut])


def test_wrong_lengths_and_foreign_blobs_raise_value_error():
    x, y, cols = _step()
    header, arrays = binary.decode(_encode(x, y, cols))
    del header["arrays"]
    short = dict(arrays, labels=arrays["labels"][:-1])
    with pytest.raises(ValueError, match="labels"):
        transfer.decode_compact(binary.encode(header, short, {k: v.dtype for k, v in short.items()}))
    with pytest.raises(ValueError):
        transfer.decode_compact(binary.encode({"n": 1}, {"x": np.zeros(1, np.float32)}, {"x": np.float32}))
    with pytest.raises(ValueError):
        transfer.decode_compact(b"DVI1\xff\xff\xff\x7f{}")
    base = {k: np.asarray(v) for k, v in cols.items()}
    parts = transfer.compact_parts(x, y, cols, base, 2)
    parts["arrays"]["changed"] = np.array([0, 10 ** 6], np.int32)
    parts["arrays"]["changed_pred"] = np.array([1, 1])
    blob = transfer.encode_compact({"n": len(x), **parts["header"]}, parts["arrays"], 10)
    with pytest.raises(ValueError, match="changed"):
        transfer.decode_compact(blob, base)


FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "frontend", "tests", "data")


def frontend_fixtures() -> dict[str, bytes]:
    """The compact answers the JavaScript decoder's tests read (``frontend/tests/transfer.test.js``): a full answer
    of step 3 and step 4 against it, and what Python decodes them to."""
    x, y = np.array([0.0, 1.0, 0.25, -2.0, 3.5], np.float32), np.array([5.0, 4.0, 4.5, 6.0, 5.25], np.float32)
    cols = {"ids": np.arange(5), "labels": np.array([0, 1, 2, 1, 0]), "split": np.array([1, 1, 0, 1, 0], np.uint8),
            "pred": np.array([0, 2, 2, 1, 1]), "conf": np.array([0.9, 0.5, 0.75, 1.0, 0.3]),
            "flags": np.zeros(5, np.uint32)}
    parts = transfer.compact_parts(x, y, cols, None, None)
    full = transfer.encode_compact({"run": "r", "step": 3, "n": 5, "bounds": [-3, 2, 4, 9], "flags": {"flipped": [1]},
                                    **parts["header"]}, parts["arrays"], 3)
    cols4 = dict(cols, pred=np.array([0, 1, 2, 1, 0]))
    parts = transfer.compact_parts(x + 1, y - 1, cols4, cols, 3)
    step4 = transfer.encode_compact({"run": "r", "step": 4, "n": 5, "bounds": [-2, 1, 5, 8], **parts["header"]},
                                    parts["arrays"], 3)
    _, a = transfer.decode_compact(full)
    _, b = transfer.decode_compact(step4, a)
    expected = {"full": {k: np.asarray(v).tolist() for k, v in a.items()},
                "step4": {k: np.asarray(v).tolist() for k, v in b.items()}}
    return {"compact_full.bin": full, "compact_step4_base3.bin": step4,
            "compact_expected.json": json.dumps(expected).encode()}


def test_frontend_fixtures_are_what_the_server_writes():
    for name, data in frontend_fixtures().items():
        with open(os.path.join(FIXTURES, name), "rb") as handle:
            assert handle.read() == data, f"frontend/tests/data/{name} is stale: rewrite it from frontend_fixtures()"


if __name__ == "__main__":  # python tests/test_transfer.py rewrites the JavaScript tests' fixtures
    for fixture_name, fixture_data in frontend_fixtures().items():
        with open(os.path.join(FIXTURES, fixture_name), "wb") as out:
            out.write(fixture_data)
