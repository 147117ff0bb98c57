"""Tables (text and Markdown) and the target check for the projection benchmark's results."""

from __future__ import annotations

from typing import Any

#: (row label, split or None for per-call values, key)
METRICS = [
    ("NN15 train", "train", "nn"), ("NN15 test", "test", "nn"),
    ("boundary15 train", "train", "boundary"), ("boundary15 test", "test", "boundary"),
    ("PPR train", "train", "ppr"), ("PPR test", "test", "ppr"),
    ("landscape agreement train", "train", "landscape_agreement"),
    ("landscape agreement test", "test", "landscape_agreement"), ("speckle", "train", "speckle"),
    ("CCR train", "train", "ccr"),
    ("temporal train", "train", "temporal"), ("temporal test", "test", "temporal"),
    ("trust15 train", "train", "trustworthiness"), ("trust15 test", "test", "trustworthiness"),
    ("wall s", None, "wall_s"), ("peak MiB", None, "peak_mib"),
]


def _series(rows: list[dict[str, Any]], split: str | None, key: str) -> list[float | None]:
    return [r.get(key) if split is None else r[split].get(key) for r in rows]


def _fmt(v: float | None, key: str) -> str:
    if v is None:
        return "n/a"
    return f"{v:.1f}" if key in ("wall_s", "peak_mib") else f"{v:.3f}"


def _mean(vals: list[float | None], after_first: bool = True) -> float | None:
    xs = [v for v in (vals[1:] if after_first and len(vals) > 1 else vals) if v is not None]
    return sum(xs) / len(xs) if xs else None


def table_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: method, metric, one column per epoch, mean over epochs >= 1 (total for wall s)."""
    n = result["epochs"]
    header = ["method", "metric"] + [f"e{e}" for e in range(n)] + ["mean e1+ / total"]
    rows = []
    for method, rs in result["methods"].items():
        if not rs:  # not measured yet (the intermediate write before the AlignedUMAP fit)
            continue
        for label, split, key in METRICS:
            vals = _series(rs, split, key)
            if key == "wall_s":
                agg = sum(vals)
            elif key == "peak_mib":
                agg = max(vals)
            else:
                agg = _mean(vals)
            rows.append([method, label] + [_fmt(v, key) for v in vals] + [_fmt(agg, key)])
    return header, rows


def text_table(result: dict[str, Any]) -> str:
    """Fixed-width table for the terminal, followed by the target check."""
    header, rows = table_rows(result)
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header] + rows]
    return "\n".join(lines + [""] + target_check(result))


def _load(avg: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in avg)


def _secs(ts: list[float]) -> str:
    return ", ".join(f"{t:.2f}" for t in ts)


_TITLES = {
    "cnn": "MNIST 10k, small CNN, 8k train / 2k test, 256-d features",
    "mlp-noisy": "cross-check: MNIST 10k, 784-512-256 MLP, 20 % noisy training labels, other split, 256-d features",
}


def markdown_table(result: dict[str, Any]) -> str:
    """Markdown version with the run's context and the target check."""
    header, rows = table_rows(result)
    title = _TITLES.get(result.get("case", "cnn"), result.get("case", ""))
    out = [
        f"# Projection benchmark ({title})",
        "",
        f"Epochs: {result['epochs']}; test accuracy per epoch: {[round(a, 3) for a in result['test_accuracy']]}; "
        f"umap-learn compile (warm-up, not in its wall time): {_fmt(result['umap_compile_s'], 'wall_s')} s.",
        f"Metrics: {result['metrics_are']}. Last column: mean over epochs 1.. (wall s: total; peak: max).",
        *([f"Load average (1, 5, 15 min) at the start: {_load(result['load_average_start'])}; at the end: "
           f"{_load(result['load_average_end'])}; torch threads: {result.get('torch_threads')}."]
          if "load_average_start" in result and "load_average_end" in result else []),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out + ["", "## Targets (issue 13), epochs after the first", ""] +
                     [f"- {line}" for line in target_check(result)]) + "\n"


def _epochs_meeting(d: list[dict[str, Any]], u: list[dict[str, Any]], split: str, key: str, factor: float) -> str:
    """How many epochs >= 1 meet ``dvi >= factor x peer`` on their own (the goals compare per step)."""
    pairs = list(zip(_series(d, split, key), _series(u, split, key), strict=True))[1:]
    ok = sum(1 for dv, uv in pairs if dv is not None and uv is not None and dv >= factor * uv)
    return f"{ok} of {len(pairs)}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _per_step_lines(d: list[dict[str, Any]], u: list[dict[str, Any]]) -> list[str]:
    """NN (>= 1.0 x umap-learn) and boundary (>= umap-learn) preservation, every epoch after the first."""
    lines = []
    n = len(d) - 1
    for split in ("train", "test"):
        for key, label in (("nn", "NN15"), ("boundary", "boundary15")):
            met = _epochs_meeting(d, u, split, key, 1.0)
            dv, uv = _mean(_series(d, split, key)), _mean(_series(u, split, key))
            lines.append(f"{label} {split} >= umap-learn every epoch: {met} epochs (mean dvi {dv:.3f} vs "
                         f"umap {uv:.3f}) -> {_verdict(met == f'{n} of {n}')}")
    return lines


def _floor_lines(d: list[dict[str, Any]]) -> list[str]:
    lines = []
    for key, label, goals in (("ppr", "PPR", (0.99, 0.97)),
                              ("landscape_agreement", "landscape agreement", (0.98, 0.95))):
        for split, goal in zip(("train", "test"), goals, strict=True):
            vals = [v for v in _series(d, split, key)[1:] if v is not None]
            if vals:
                lines.append(f"{label} {split} (min over epochs >= 1): {min(vals):.3f} vs {goal} -> "
                             f"{_verdict(min(vals) >= goal)}")
    spk = [v for v in _series(d, "train", "speckle") if v is not None]
    if spk:
        lines.append(f"speckle (max over all epochs): {100 * max(spk):.2f} % vs 0.5 % -> {_verdict(max(spk) <= 0.005)}")
    return lines


def _temporal_lines(d: list[dict[str, Any]], a: list[dict[str, Any]] | None) -> list[str]:
    lines = []
    for split in ("train", "test"):
        dt = _mean(_series(d, split, "temporal"))
        if dt is None:
            continue
        lines.append(f"temporal {split} mean: {dt:.3f} vs 0.3 -> {_verdict(dt >= 0.3)}")
        if a is not None:
            met = _epochs_meeting(d, a, split, "temporal", 1.0)
            n = len(d) - 1
            lines.append(f"temporal {split} >= AlignedUMAP every epoch: {met} epochs (mean AlignedUMAP "
                         f"{_mean(_series(a, split, 'temporal')):.3f}) -> {_verdict(met == f'{n} of {n}')}")
    return lines


def _wall_lines(result: dict[str, Any], d: list[dict[str, Any]], u: list[dict[str, Any]]) -> list[str]:
    compile_s = result.get("umap_compile_s") or 0.0
    dw, uw = sum(_series(d, None, "wall_s")), sum(_series(u, None, "wall_s"))
    lines = [f"total wall with one-time costs: dvi {dw:.1f}s (all epochs) vs umap {uw + compile_s:.1f}s (all epochs "
             f"+ {compile_s:.1f}s compile): ratio {dw / (uw + compile_s):.2f} vs 0.5 -> "
             f"{_verdict(dw <= 0.5 * (uw + compile_s))}"]
    dw1, uw1 = sum(_series(d, None, "wall_s")[1:]), sum(_series(u, None, "wall_s")[1:])
    lines.append(f"total wall without one-time costs (epochs >= 1, no compile): dvi {dw1:.1f}s vs umap {uw1:.1f}s: "
                 f"ratio {dw1 / uw1:.2f} vs 0.5 -> {_verdict(dw1 <= 0.5 * uw1)}")
    snap = result.get("snapshot")
    if snap:
        r = snap["ratio_encoder_to_epoch"]
        lines.append(f"snapshot with encoder= {snap['snapshot_encoder_s']:.2f}s (median of the steps after the first) "
                     f"vs one demo-CNN epoch {snap['epoch_s']:.2f}s: ratio {r:.3f} vs 0.2 -> {_verdict(r <= 0.2)}"
                     + (f" (epochs {_secs(snap['epochs_s'])} s; snapshots {_secs(snap['snapshot_encoder_all_s'])} s)"
                        if "epochs_s" in snap else ""))
        if "snapshot_encoder_first_s" in snap:
            lines.append(f"first snapshot of the run with encoder= (also stores the run's thumbnails, once): "
                         f"{snap['snapshot_encoder_first_s']:.2f}s, ratio {snap['ratio_first_to_epoch']:.2f}")
    return lines


def target_check(result: dict[str, Any]) -> list[str]:
    """One line per goal of issue 13, comparing the default variant ("dvi") with its peers."""
    ms = result["methods"]
    if "dvi" not in ms or "umap-learn" not in ms:
        return ["(target check needs the 'dvi' and 'umap-learn' methods)"]
    d, u = ms["dvi"], ms["umap-learn"]
    return (_per_step_lines(d, u) + _floor_lines(d) + _temporal_lines(d, ms.get("aligned-umap") or None)
            + _wall_lines(result, d, u))
