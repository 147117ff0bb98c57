"""Tables (text and Markdown) and the §7 target check for the projection benchmark's results."""

from __future__ import annotations

from typing import Any

#: (row label, split or None for per-call values, key)
METRICS = [
    ("NN15 train", "train", "nn"), ("NN15 test", "test", "nn"),
    ("boundary15 train", "train", "boundary"), ("boundary15 test", "test", "boundary"),
    ("PPR train", "train", "ppr"), ("PPR test", "test", "ppr"), ("CCR train", "train", "ccr"),
    ("temporal train", "train", "temporal"), ("temporal test", "test", "temporal"),
    ("trust15 train", "train", "trustworthiness"), ("trust15 test", "test", "trustworthiness"),
    ("wall s", None, "wall_s"), ("peak MiB", None, "peak_mib"),
]


def _series(rows: list[dict[str, Any]], split: str | None, key: str) -> list[float | None]:
    return [r[key] if split is None else r[split][key] for r in rows]


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


def markdown_table(result: dict[str, Any]) -> str:
    """Markdown version with the run's context and the target check."""
    header, rows = table_rows(result)
    out = [
        "# Projection benchmark (MNIST 10k, small CNN, 8k train / 2k test, 256-d features)",
        "",
        f"Epochs: {result['epochs']}; test accuracy per epoch: {[round(a, 3) for a in result['test_accuracy']]}; "
        f"umap-learn compile (warm-up, not in its wall time): {_fmt(result['umap_compile_s'], 'wall_s')} s.",
        f"Metrics: {result['metrics_are']}. Last column: mean over epochs 1.. (wall s: total; peak: max).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out + ["", "## Targets (DESIGN §7), epochs after the first", ""] +
                     [f"- {line}" for line in target_check(result)]) + "\n"


def _epochs_meeting(d: list[dict[str, Any]], u: list[dict[str, Any]], split: str, key: str, factor: float) -> str:
    """How many epochs >= 1 meet ``dvi >= factor x umap`` on their own (DESIGN §7 compares per step)."""
    pairs = list(zip(_series(d, split, key), _series(u, split, key), strict=True))[1:]
    ok = sum(1 for dv, uv in pairs if dv is not None and uv is not None and dv >= factor * uv)
    return f"per epoch: {ok} of {len(pairs)}"


def target_check(result: dict[str, Any]) -> list[str]:
    """One line per §7 target comparing the default variant ("dvi") with umap-learn."""
    ms = result["methods"]
    if "dvi" not in ms or "umap-learn" not in ms:
        return ["(target check needs the 'dvi' and 'umap-learn' methods)"]
    d, u = ms["dvi"], ms["umap-learn"]
    lines = []
    for split in ("train", "test"):
        dn, un = _mean(_series(d, split, "nn")), _mean(_series(u, split, "nn"))
        lines.append(f"NN15 {split}: dvi {dn:.3f} vs 0.9 x umap {0.9 * un:.3f} -> "
                     f"{'met' if dn >= 0.9 * un else 'MISSED'} (ratio {dn / un:.2f}; "
                     f"{_epochs_meeting(d, u, split, 'nn', 0.9)})")
        db, ub = _mean(_series(d, split, "boundary")), _mean(_series(u, split, "boundary"))
        lines.append(f"boundary15 {split}: dvi {db:.3f} vs umap {ub:.3f} -> {'met' if db >= ub else 'MISSED'} "
                     f"({_epochs_meeting(d, u, split, 'boundary', 1.0)})")
    for split, goal in (("train", 0.98), ("test", 0.95)):
        worst = min(v for v in _series(d, split, "ppr")[1:] or _series(d, split, "ppr"))
        verdict = "met" if worst >= goal else "MISSED"
        lines.append(f"PPR {split} (min over epochs >= 1): {worst:.3f} vs {goal} -> {verdict}")
    for split in ("train", "test"):
        dt, ut = _mean(_series(d, split, "temporal")), _mean(_series(u, split, "temporal"))
        if dt is not None and ut is not None:
            ok = dt > 0 and dt > ut
            lines.append(f"temporal {split}: dvi {dt:.3f} vs umap {ut:.3f} -> {'met' if ok else 'MISSED'}")
    dw, uw = sum(_series(d, None, "wall_s")), sum(_series(u, None, "wall_s"))
    lines.append(f"total wall, all epochs: dvi {dw:.1f}s vs umap {uw:.1f}s -> {'met' if dw <= uw else 'MISSED'}")
    dw, uw = sum(_series(d, None, "wall_s")[1:]), sum(_series(u, None, "wall_s")[1:])
    lines.append(f"total wall, epochs >= 1 (excludes any first-call compilation): dvi {dw:.1f}s vs umap {uw:.1f}s "
                 f"-> {'met' if dw <= uw else 'MISSED'}")
    return lines
