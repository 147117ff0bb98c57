"""UMAP fuzzy simplicial set and DVI's boundary complex, computed from kNN arrays.

Written here rather than imported from umap-learn so that dvi_core does not depend on umap-learn
(and its numba compile time); the maths follows McInnes et al. (2018), ``smooth_knn_dist``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Edges:
    """Undirected weighted edges of the complex: ``head[e] -- tail[e]`` with ``weight[e]`` in (0, 1]."""

    head: np.ndarray
    tail: np.ndarray
    weight: np.ndarray


#: The bisection for sigma stops when every row's membership sum is this close to log2(k), umap-learn's tolerance;
#: it takes about 25 of the 64 iterations on a warm step's graphs (a fifth of a percent of a step's time each).
SMOOTH_K_TOLERANCE = 1e-5


def smooth_knn_memberships(dist: np.ndarray, n_iter: int = 64, *, local_connectivity: bool = True) -> np.ndarray:
    """Per-row fuzzy memberships exp(-(d - rho) / sigma) with sum = log2(k) (UMAP's smooth kNN).

    ``dist`` is [N, k] sorted ascending, self excluded. rho is the distance to the nearest neighbour (0 without
    ``local_connectivity``, as umap-learn uses for new points in ``transform``); sigma is found by vectorised
    bisection, stopped once every row's sum is within ``SMOOTH_K_TOLERANCE`` of log2(k). Returns float32 [N, k]
    in (0, 1].
    """
    dist = np.asarray(dist, dtype=np.float64)
    k = dist.shape[1]
    target = np.log2(k)
    pos = np.where(dist > 0, dist, np.inf)
    rho = pos.min(axis=1)
    rho = np.where(np.isfinite(rho) & local_connectivity, rho, 0.0)
    excess = np.maximum(dist - rho[:, None], 0.0)
    lo = np.zeros(len(dist))
    hi = np.full(len(dist), np.inf)
    mid = np.ones(len(dist))
    for _ in range(n_iter):
        psum = np.exp(-excess / mid[:, None]).sum(1)
        if np.abs(psum - target).max() < SMOOTH_K_TOLERANCE:  # every row's sum is on target (umap-learn's test)
            break
        too_big = psum > target
        hi = np.where(too_big, mid, hi)
        lo = np.where(too_big, lo, mid)
        mid = np.where(np.isfinite(hi), (lo + hi) / 2, mid * 2)
    mean_d = dist.mean()
    sigma = np.maximum(mid, 1e-3 * mean_d if mean_d > 0 else 1e-3)
    w = np.exp(-excess / sigma[:, None])
    return np.clip(w, 1e-12, 1.0).astype(np.float32)


def fuzzy_simplicial_set(knn_idx: np.ndarray, knn_dist: np.ndarray) -> sp.csr_matrix:
    """Symmetric fuzzy graph P + P^T - P * P^T (fuzzy union) as a CSR matrix, weights in (0, 1]."""
    n, k = knn_idx.shape
    w = smooth_knn_memberships(knn_dist)
    rows = np.repeat(np.arange(n), k)
    P = sp.coo_matrix((w.ravel(), (rows, knn_idx.ravel())), shape=(n, n)).tocsr()
    P.sum_duplicates()
    Pt = P.T.tocsr()
    G = (P + Pt - P.multiply(Pt)).tocsr()
    G.eliminate_zeros()
    return G


def boundary_complex(knn_idx: np.ndarray, knn_dist: np.ndarray, n_samples: int) -> sp.coo_matrix:
    """Bipartite edges sample i -- boundary j for the k nearest boundary samples of each sample.

    ``knn_idx`` indexes the boundary set; vertex ids of boundary samples are offset by ``n_samples``.
    Memberships use the same smooth-kNN normalisation as the main complex.
    """
    n, k = knn_idx.shape
    w = smooth_knn_memberships(knn_dist)
    rows = np.repeat(np.arange(n), k)
    return sp.coo_matrix((w.ravel(), (rows, knn_idx.ravel() + n_samples)))


def complex_edges(
    sample_graph: sp.spmatrix,
    extra: list[sp.spmatrix],
    n_vertices: int,
    n_epochs: int,
) -> Edges:
    """Concatenate the complexes, keep each undirected edge once, drop weights below max / n_epochs."""
    parts = [sp.coo_matrix(sample_graph)] + [sp.coo_matrix(e) for e in extra]
    heads = np.concatenate([p.row for p in parts])
    tails = np.concatenate([p.col for p in parts])
    ws = np.concatenate([p.data for p in parts]).astype(np.float32)
    G = sp.coo_matrix((ws, (heads, tails)), shape=(n_vertices, n_vertices)).tocsr()
    G = G.maximum(G.T).tocoo()  # symmetrise the bipartite parts too; max keeps weights <= 1
    keep = (G.row < G.col) & (G.data >= G.data.max() / n_epochs)
    order = np.lexsort((G.col[keep], G.row[keep]))
    return Edges(
        head=G.row[keep][order].astype(np.int64),
        tail=G.col[keep][order].astype(np.int64),
        weight=np.minimum(G.data[keep][order], 1.0).astype(np.float32),
    )
