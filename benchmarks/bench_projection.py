"""Quality-and-speed benchmark of dvi_core against umap-learn, AlignedUMAP and PCA.

One command: ``.venv/bin/python benchmarks/bench_projection.py`` (``--quick`` for 3 epochs).
Trains a small seeded CNN on MNIST 10k (8k train / 2k test), then on every epoch's 256-d
penultimate features runs DVIProjector (default ``dvi`` and ``faithful`` variants), umap-learn
(independent per epoch, n_neighbors=15, fit on train + transform test), AlignedUMAP (umap-learn's
temporal variant: one fit over all epochs' train + test samples, identity relations between epochs) and PCA,
all in this process; prints one table and writes ``benchmarks/results/projection.{json,md}``.
``--case mlp-noisy`` runs the same on a cross-check nothing was tuned on (a 784-512-256 MLP with 20 % noisy
training labels, 6 epochs by default; ``proj_data``) and writes ``projection_mlp_noisy.{json,md}``.

Wall seconds are the forward projection of train and test (DVI: fit_step incl. kNN, complex, layout
and training, plus transform of test, continued from the test points' previous positions; umap: fit +
transform; AlignedUMAP: its one fit divided evenly over the epochs; PCA: fit + transform). umap-learn's numba
compilation is done once before timing (a warm-up fit) and reported separately as its one-time cost. The
landscape metrics (DVI only) render 256 px over the box the plugin serves (``map_bounds`` of all samples'
coordinates), as a user sees it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from proj_data import CASES, Epochs, load_epochs  # noqa: E402
from proj_measure import measured  # noqa: E402
from proj_report import METRICS, markdown_table, text_table  # noqa: E402

from dvi_core import DVIProjector, StepProjection  # noqa: E402
from dvi_core import metrics as M  # noqa: E402
from dvi_core.boundary import boundary_samples  # noqa: E402
from dvi_core.neighbors import exact_query  # noqa: E402
from tensorboard_plugin_dvi.cache import map_bounds  # noqa: E402 - the box the plugin serves

RESULTS = os.path.join(os.path.dirname(__file__), "results")


def _dvi_epoch(variant: str, ep: Epochs, e: int, state: dict[str, Any], bnd: tuple) -> dict[str, Any]:
    head, X, T = ep.head(e), ep.train[e], ep.test[e]
    prev: StepProjection | None = state.get(variant)
    prev_yt: np.ndarray | None = state.get(variant + " test")
    proj = DVIProjector(variant=variant, seed=0)

    def run() -> tuple[StepProjection, np.ndarray]:
        st = proj.fit_step(X, head, boundary=bnd[0], prev=prev,
                           prev_features=None if prev is None else ep.train[e - 1])
        if prev is None or prev_yt is None:
            return st, st.transform(T)
        # test points continue from where they were shown at the previous epoch (as the plugin shows them)
        return st, st.transform(T, prev=prev, prev_features=ep.test[e - 1], prev_embedding=prev_yt)

    (st, YT), wall, mem = measured(run)
    res = M.evaluate_step(
        st, head, X, test_features=T, boundary=bnd[0], test_boundary=bnd[1], prev=prev,
        prev_train_features=None if prev is None else ep.train[e - 1],
        prev_test_features=None if prev is None else ep.test[e - 1], prev_test_embedding=prev_yt,
        train_embedding=st.embedding_, test_embedding=YT,
        bounds=map_bounds(np.concatenate([st.embedding_, YT])),
    )
    state[variant], state[variant + " test"] = st, YT
    return {"wall_s": wall, "peak_mib": mem, **res}


def _array_metrics(X: np.ndarray, Y: np.ndarray, B: np.ndarray, YB: np.ndarray,
                   prev: tuple[np.ndarray, np.ndarray] | None) -> dict[str, float | None]:
    return {
        "nn": M.nn_preservation(X, Y), "boundary": M.boundary_preservation(X, B, Y, YB),
        "ppr": None, "ccr": None, "trustworthiness": M.trustworthiness(X, Y),
        "temporal": None if prev is None else M.temporal_correlation(prev[0], X, prev[1], Y),
    }


def _peer_epoch(name: str, ep: Epochs, e: int, state: dict[str, Any], bnd: tuple) -> dict[str, Any]:
    X, T = ep.train[e], ep.test[e]
    if name == "umap-learn":
        import umap

        def run() -> Any:
            m = umap.UMAP(n_neighbors=15)
            Y = m.fit_transform(X)
            return m, Y, m.transform(T)
    else:
        from sklearn.decomposition import PCA

        def run() -> Any:
            m = PCA(2, random_state=0)
            return m, m.fit_transform(X), m.transform(T)

    (model, Y, YT), wall, mem = measured(run)
    prev = state.get(name)
    out = {"wall_s": wall, "peak_mib": mem,
           "train": _array_metrics(X, Y, bnd[0], model.transform(bnd[0]), None if prev is None else prev[0]),
           "test": _array_metrics(T, YT, bnd[1], model.transform(bnd[1]), None if prev is None else prev[1])}
    state[name] = ((ep.train[e], Y), (ep.test[e], YT))
    return out


def _aligned_umap(ep: Epochs, n_epochs: int, bnd: list[tuple]) -> list[dict[str, Any]]:
    """AlignedUMAP over all epochs at once (train + test samples each epoch; identity relations)."""
    import umap

    n_train = ep.train.shape[1]
    slices = [np.concatenate([ep.train[e], ep.test[e]]) for e in range(n_epochs)]
    ident = [{i: i for i in range(len(slices[0]))} for _ in range(n_epochs - 1)]

    def run() -> list[np.ndarray]:
        return umap.AlignedUMAP(n_neighbors=15).fit(slices, relations=ident).embeddings_

    embs, wall, mem = measured(run)
    rows = []
    for e in range(n_epochs):
        Y = np.asarray(embs[e])
        prev = None if e == 0 else np.asarray(embs[e - 1])
        splits = {}
        for name, sl, X, B in (("train", slice(0, n_train), ep.train[e], bnd[e][0]),
                               ("test", slice(n_train, None), ep.test[e], bnd[e][1])):
            Xp = None if prev is None else (ep.train if name == "train" else ep.test)[e - 1]
            # boundary samples are placed where their nearest sample lies (AlignedUMAP has no transform)
            YB = Y[sl][exact_query(X, B, 1)[0][:, 0]]
            splits[name] = _array_metrics(X, Y[sl], B, YB, None if prev is None else (Xp, prev[sl]))
        rows.append({"wall_s": wall / n_epochs, "peak_mib": mem, **splits})
    return rows


def _warm_up_umap() -> float:
    import umap

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    # >= 4096 points so that umap-learn takes its pynndescent path, as on the real data
    m = umap.UMAP(n_neighbors=15).fit(rng.normal(size=(4200, 16)).astype(np.float32))
    m.transform(rng.normal(size=(50, 16)).astype(np.float32))
    return time.perf_counter() - t0


def _write(result: dict[str, Any], directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    stem = "projection" if result["case"] == "cnn" else "projection_" + result["case"].replace("-", "_")
    with open(os.path.join(directory, stem + ".json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(directory, stem + ".md"), "w") as f:
        f.write(markdown_table(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=CASES, default="cnn",
                    help="the network and data (proj_data): the benchmark's CNN, or the noisy-label MLP cross-check")
    ap.add_argument("--epochs", type=int, default=None, help="default 10 (cnn) / 6 (mlp-noisy)")
    ap.add_argument("--quick", action="store_true", help="3 epochs")
    ap.add_argument("--methods", default="dvi,faithful,umap-learn,aligned-umap,pca")
    ap.add_argument("--results-dir", default=RESULTS, help="where projection.json/.md are written")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 avoids OpenMP spin-thrashing on a shared 2-core machine)")
    ap.add_argument("--no-snapshot", action="store_true", help="skip the snapshot(encoder=) cost measurement")
    args = ap.parse_args()
    n_epochs = 3 if args.quick else args.epochs or (10 if args.case == "cnn" else 6)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    load_start = list(os.getloadavg())
    ep = load_epochs(max(n_epochs, 10) if args.case == "cnn" else n_epochs, case=args.case)
    print(f"{args.case} features ready in {time.perf_counter() - t0:.0f}s; "
          f"test accuracy per epoch {np.round(ep.acc, 3)}")
    methods = args.methods.split(",")
    warm = _warm_up_umap() if "umap-learn" in methods else None
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    state: dict[str, Any] = {}
    bnds = [(boundary_samples(ep.head(e), ep.train[e], seed=e),
             boundary_samples(ep.head(e), ep.train[e], seed=10_000 + e)) for e in range(n_epochs)]
    for e in range(n_epochs):
        bnd = bnds[e]
        for m in methods:
            if m == "aligned-umap":
                continue
            fn = _dvi_epoch if m in ("dvi", "faithful") else _peer_epoch
            r = fn(m, ep, e, state, bnd)
            rows[m].append(r)
            print(f"epoch {e} {m:10s} {r['wall_s']:6.1f}s " + " | ".join(
                f"{split} " + " ".join(f"{k[:6]}={v:.3f}" for k, v in r[split].items() if v is not None)
                for split in ("train", "test")), flush=True)
    result = {"case": args.case, "epochs": n_epochs, "n_train": int(ep.train.shape[1]), "n_test": int(ep.test.shape[1]),
              "feature_dim": int(ep.train.shape[2]),
              "test_accuracy": [float(a) for a in ep.acc[:n_epochs]], "umap_compile_s": warm,
              "metrics_are": "fractions in [0,1]; temporal: Spearman correlation in [-1,1]; ccr: mean |confidence "
                             "change| (lower is better); speckle: fraction of coloured landscape pixels; peak_mib: "
                             "extra resident memory during the call",
              "methods": rows, "torch_threads": torch.get_num_threads(), "load_average_start": load_start}
    _write(result, args.results_dir)  # the per-epoch methods, in case the one long AlignedUMAP fit is interrupted
    if "aligned-umap" in methods:
        rows["aligned-umap"] = _aligned_umap(ep, n_epochs, bnds)
        print(f"aligned-umap {sum(r['wall_s'] for r in rows['aligned-umap']):.1f}s", flush=True)
    if not args.no_snapshot and args.case == "cnn":  # the cost is measured on the demo's CNN
        from proj_snapshot_cost import measure as snapshot_cost

        result["snapshot"] = snapshot_cost()
    result["load_average_end"] = list(os.getloadavg())
    _write(result, args.results_dir)
    print(text_table(result))
    print(f"total {time.perf_counter() - t0:.0f}s; rows: {', '.join(m[0] for m in METRICS)}")


if __name__ == "__main__":
    main()
