"""Nearest-neighbour search: exact (chunked torch) for small N, pynndescent for large N, k-d trees in 2-D.

Why several backends: exact search over 8k x 512 takes well under a second with a matrix product, is
deterministic and needs no numba compilation, while pynndescent scales to 50k+ points. Low-dimensional points
(a 2-D map) are searched exactly with a k-d tree at any size: at 60,000 points that takes about a second, where
pynndescent approximates and pays its numba compilation.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from scipy.spatial import cKDTree

#: Above this many reference points ``knn`` switches from exact search to pynndescent (or a k-d tree in low dims).
EXACT_MAX_N = 20000
#: Points with at most this many dimensions are searched with a k-d tree above ``EXACT_MAX_N``.
TREE_MAX_DIM = 3
_CHUNK = 1024
#: ``exact_query``'s tile on one CPU thread: this many queries x ``_KEY_BLOCK`` keys (8 MB of float32, in the cache).
_CPU_CHUNK = 512
_KEY_BLOCK = 4096
#: Square block of ``_self_query_cpu`` (a kNN graph's search on one CPU thread).
_SELF_BLOCK = 1024

def _as_tensor(X: np.ndarray | torch.Tensor, device: str | torch.device) -> torch.Tensor:
    if isinstance(X, torch.Tensor):
        return X.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)


def exact_query(
    ref: np.ndarray | torch.Tensor,
    query: np.ndarray | torch.Tensor,
    k: int,
    *,
    exclude_self: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``ref`` for every row of ``query`` (Euclidean).

    With ``exclude_self`` the query is ``ref`` itself and each point's own index is skipped.
    Returns ``(indices int64 [Q, k], distances float32 [Q, k])`` sorted by distance.
    """
    R = _as_tensor(ref, device)
    Q = R if query is ref else _as_tensor(query, device)
    r2 = (R * R).sum(1)[None, :]
    kk = min(k + 1 if exclude_self else k, R.shape[0])
    if R.device.type == "cpu":
        return _exact_query_cpu(R, Q, r2, kk, exclude_self)
    out_i, out_d = [], []
    # one [chunk, R] buffer for every chunk: a fresh one each time costs its page faults (22 % of a search over
    # 66,000 x 64 keys, 8 % over 60,000 x 512)
    buf = torch.empty((min(_CHUNK, Q.shape[0]), R.shape[0]), dtype=R.dtype, device=R.device)
    for s in range(0, Q.shape[0], _CHUNK):
        q = Q[s : s + _CHUNK]
        # |r|^2 - 2 q.r ranks like the squared distance (|q|^2 is constant per row): one fused pass
        d2 = torch.addmm(r2, q, R.T, alpha=-2.0, out=buf[: q.shape[0]])
        if exclude_self:
            rows = torch.arange(q.shape[0], device=R.device)
            d2[rows, rows + s] = -float("inf")  # self always ranks first, then dropped
        d2, idx = torch.topk(d2, kk, dim=1, largest=False)
        if exclude_self:
            d2, idx = d2[:, 1:], idx[:, 1:]
        out_i.append(idx)
        out_d.append((d2 + (q * q).sum(1, keepdim=True)).clamp_min(0).sqrt())
    return torch.cat(out_i).cpu().numpy(), torch.cat(out_d).cpu().numpy().astype(np.float32)


def cross_query(
    A: np.ndarray | torch.Tensor, B: np.ndarray | torch.Tensor, k_ab: int, k_ba: int, *,
    device: str | torch.device = "cpu",
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Both directions of an exact search between two sets in one pass over their distances.

    Returns ``((indices, distances) of each row of A among B's k_ab nearest, (indices, distances) of each row of B
    among A's k_ba nearest)``, as ``exact_query(B, A, k_ab)`` and ``exact_query(A, B, k_ba)`` would (up to the order
    of exact ties). Why: a training step needs the samples' nearest boundary points and the boundary points' nearest
    samples; both come from the same |A| x |B| distances, the costly part at 60,000 x 6,000 x 512.
    """
    At, Bt = _as_tensor(A, device), _as_tensor(B, device)
    a2, b2 = (At * At).sum(1, keepdim=True), (Bt * Bt).sum(1)[None, :]
    ka, kb = min(k_ab, Bt.shape[0]), min(k_ba, At.shape[0])
    if At.device.type == "cpu":
        return _cross_query_cpu(At, Bt, a2, b2, ka, kb)
    out_i, out_d = [], []
    best_d = torch.full((kb, Bt.shape[0]), float("inf"), device=At.device)
    best_i = torch.zeros((kb, Bt.shape[0]), dtype=torch.int64, device=At.device)
    buf = torch.empty((min(_CHUNK, At.shape[0]), Bt.shape[0]), dtype=At.dtype, device=At.device)
    for s in range(0, At.shape[0], _CHUNK):
        a = At[s : s + _CHUNK]
        d2 = torch.addmm(b2, a, Bt.T, alpha=-2.0, out=buf[: a.shape[0]]).add_(a2[s : s + _CHUNK]).clamp_min_(0)
        d, i = torch.topk(d2, ka, dim=1, largest=False)
        out_i.append(i)
        out_d.append(d.sqrt())
        cd, ci = torch.topk(d2, min(kb, d2.shape[0]), dim=0, largest=False)  # this chunk's best rows per B
        merged_d, pick = torch.topk(torch.cat([best_d, cd]), kb, dim=0, largest=False)
        best_i = torch.cat([best_i, ci + s]).gather(0, pick)
        best_d = merged_d
    ab = (torch.cat(out_i).cpu().numpy(), torch.cat(out_d).cpu().numpy().astype(np.float32))
    ba = (best_i.T.contiguous().cpu().numpy(), best_d.T.sqrt().cpu().numpy().astype(np.float32))
    return ab, ba


def _smallest_k_cpu(d2: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(d2, k, dim=1, largest=False)`` of a CPU tensor as one compiled pass (``knn_select``), several
    times cheaper than torch's selection, which costs as much as the matrix product at 64 dimensions."""
    from .knn_select import smallest_k_rows

    out_d = np.empty((d2.shape[0], k), np.float32)
    out_i = np.empty((d2.shape[0], k), np.int64)
    smallest_k_rows(d2.numpy(), k, out_d, out_i)
    return torch.from_numpy(out_d), torch.from_numpy(out_i)


def _exact_query_cpu(
    R: torch.Tensor, Q: torch.Tensor, r2: torch.Tensor, kk: int, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``exact_query`` on the CPU, in tiles of queries x keys: each tile's distances are selected (``knn_select``)
    into running per-query lists. Same neighbours whatever the tile (keys are merged left to right, so ties keep
    the smaller index first).

    Why tiles: a [1,024 x R] block (270 MB at R = 66,000) is written by the product and read back from memory by
    the selection; a 512 x 4,096 tile (8 MB) stays in the cache. On one torch thread, 10,000 queries x 66,000 keys
    x 64 dimensions took 1.26-1.30 s instead of 1.67-1.89 s. On two threads (at load 2.5) the small products'
    thread hand-offs cost more than that (2.4-4.4 s against 1.8 s), so there a tile is 1,024 queries x all keys.
    """
    from .knn_select import merge_smallest_k_rows, smallest_k_rows

    n, nq = R.shape[0], Q.shape[0]
    tiled = torch.get_num_threads() == 1
    if tiled and exclude_self and Q.data_ptr() == R.data_ptr() and Q.shape == R.shape and n > _SELF_BLOCK:
        best_d, best_i = _self_query_cpu(R, r2, kk)
        return _finish(Q, best_d[:, 1:], best_i[:, 1:])
    chunk = _CPU_CHUNK if tiled else _CHUNK
    width = max(_KEY_BLOCK, kk) if tiled else n  # the first tile fills every list
    best_d, best_i = np.empty((nq, kk), np.float32), np.empty((nq, kk), np.int64)
    buf = torch.empty(min(chunk, nq) * min(width, n), dtype=R.dtype)  # one buffer for every tile
    for s in range(0, nq, chunk):
        q = Q[s : s + chunk]
        for c in range(0, n, width):
            b = R[c : c + width]
            out = buf[: q.shape[0] * b.shape[0]].view(q.shape[0], b.shape[0])
            # |r|^2 - 2 q.r ranks like the squared distance (|q|^2 is constant per row): one fused pass
            d2 = torch.addmm(r2[:, c : c + width], q, b.T, alpha=-2.0, out=out)
            lo, hi = max(s, c), min(s + q.shape[0], c + b.shape[0])
            if exclude_self and lo < hi:  # the queries are the keys: self always ranks first, then dropped
                rows = torch.arange(lo, hi)
                d2[rows - s, rows - c] = -float("inf")
            if c == 0:
                smallest_k_rows(d2.numpy(), kk, best_d[s : s + chunk], best_i[s : s + chunk])
            else:
                merge_smallest_k_rows(d2.numpy(), c, best_d[s : s + chunk], best_i[s : s + chunk])
    if exclude_self:
        best_d, best_i = best_d[:, 1:], best_i[:, 1:]
    return _finish(Q, best_d, best_i)


def _finish(Q: torch.Tensor, best_d: np.ndarray, best_i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances from the selected ``|r|^2 - 2 q.r`` values (``|q|^2`` added back)."""
    d = (torch.from_numpy(best_d) + (Q * Q).sum(1, keepdim=True)).clamp_min_(0).sqrt_()
    return np.ascontiguousarray(best_i), d.numpy()


def _self_query_cpu(R: torch.Tensor, r2: torch.Tensor, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``kk`` smallest ``|r_j|^2 - 2 r_i.r_j`` of every row i of the points' own distance matrix, self set to
    -inf (so it ranks first), from the blocks on and above the diagonal only: a block of products ``R_a R_b^T``
    serves the queries of ``a`` (its rows) and, transposed, those of ``b`` (its columns).

    Why: a kNN graph of a point set is a symmetric search; the products below the diagonal repeat those above it,
    so this does a little over half the matrix product (the cost of the whole search at 8,000 x 256: 0.50 s ->
    0.33 s on one thread). Each query's keys are still merged left to right (blocks of columns from the rows
    above, then its own row of blocks), and a product's entries do not depend on which side of it is the query,
    so the neighbours and values are those of ``_exact_query_cpu``'s tiles.
    """
    from .knn_select import merge_smallest_k_rows

    n, s = R.shape[0], _SELF_BLOCK
    best_d, best_i = np.full((n, kk), np.inf, np.float32), np.zeros((n, kk), np.int64)
    prod = torch.empty(s * s, dtype=R.dtype)
    rows_d, cols_d = torch.empty(s * s, dtype=R.dtype), torch.empty(s * s, dtype=R.dtype)
    for a in range(0, n, s):
        ra = R[a : a + s]
        for b in range(a, n, s):
            rb = R[b : b + s]
            g = torch.mm(ra, rb.T, out=prod[: len(ra) * len(rb)].view(len(ra), len(rb)))
            d2 = torch.add(r2[:, b : b + s], g, alpha=-2.0, out=rows_d[: g.numel()].view(g.shape))
            if a == b:
                d2.fill_diagonal_(-float("inf"))
            merge_smallest_k_rows(d2.numpy(), b, best_d[a : a + s], best_i[a : a + s])
            if b > a:  # the same products for the queries of block b, keys of block a
                dt = torch.add(r2[0, a : a + s][None, :], g.T, alpha=-2.0,
                               out=cols_d[: g.numel()].view(g.shape[1], g.shape[0]))
                merge_smallest_k_rows(dt.numpy(), a, best_d[b : b + s], best_i[b : b + s])
    return best_d, best_i


def _cross_query_cpu(
    At: torch.Tensor, Bt: torch.Tensor, a2: torch.Tensor, b2: torch.Tensor, ka: int, kb: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``cross_query`` on the CPU: each block's rows and columns are selected by compiled passes (``knn_select``),
    so the one matrix product is nearly all the cost."""
    from .knn_select import merge_smallest_k_cols

    out_i, out_d = [], []
    best_d = np.full((Bt.shape[0], kb), np.inf, np.float32)
    best_i = np.zeros((Bt.shape[0], kb), np.int64)
    buf = torch.empty((min(_CHUNK, At.shape[0]), Bt.shape[0]), dtype=At.dtype)
    for s in range(0, At.shape[0], _CHUNK):
        a = At[s : s + _CHUNK]
        d2 = torch.addmm(b2, a, Bt.T, alpha=-2.0, out=buf[: a.shape[0]]).add_(a2[s : s + _CHUNK]).clamp_min_(0)
        d, i = _smallest_k_cpu(d2, ka)
        out_i.append(i)
        out_d.append(d.sqrt_())
        merge_smallest_k_cols(d2.numpy(), s, best_d, best_i)
    ab = (torch.cat(out_i).numpy(), torch.cat(out_d).numpy())
    return ab, (best_i, np.sqrt(best_d))


def _drop_self(idx: np.ndarray, dist: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """From k + 1 neighbours per query row, the k that are not the row itself (the last one when self is absent,
    which happens when more than k + 1 points share the row's position)."""
    drop = idx == rows[:, None]
    drop[~drop.any(1), -1] = True
    keep = np.argsort(drop, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(idx, keep, 1), np.take_along_axis(dist, keep, 1)


def knn_rows(
    X: np.ndarray, rows: np.ndarray, k: int, *, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours within all of ``X`` of the rows ``rows`` of ``X``, each row itself excluded.

    What an evaluation on a subsample needs: the neighbours of a few points among all of them, without the whole
    graph. A k-d tree for low-dimensional ``X`` (at most ``TREE_MAX_DIM`` columns), a matrix product otherwise.
    Returns ``(indices int64 [len(rows), k], distances float32 [len(rows), k])`` sorted by distance.
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    kk = min(k + 1, len(X))
    if X.shape[1] <= TREE_MAX_DIM:
        dist, idx = cKDTree(X).query(X[rows], k=kk)
        dist, idx = dist.reshape(len(rows), kk), idx.reshape(len(rows), kk)
    else:
        idx, dist = exact_query(X, X[rows], kk, device=device)
    idx, dist = _drop_self(idx.astype(np.int64), dist.astype(np.float32), rows, min(k, len(X) - 1))
    return idx, dist


def knn(
    X: np.ndarray, k: int, *, seed: int = 0, device: str | torch.device = "cpu", method: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours of every row of ``X`` within ``X``, self excluded.

    ``method`` is ``"exact"``, ``"pynndescent"``, ``"tree"`` or ``"auto"`` (exact up to ``EXACT_MAX_N`` points;
    above it a k-d tree for at most ``TREE_MAX_DIM`` dimensions, pynndescent otherwise). (Starting pynndescent
    from the previous training step's graph was measured at 60,000 x 512: 2.6 s instead of 3.0-3.3 s once
    compiled, but its own numba compilation, slightly lower recall (0.995 vs 0.998) and neighbourhoods that change
    by half between epochs make it no gain.)
    """
    if method == "auto" and X.shape[0] <= EXACT_MAX_N:
        method = "exact"
    elif method == "auto":
        method = "tree" if X.shape[1] <= TREE_MAX_DIM else "pynndescent"
    if method == "exact":
        return exact_query(X, X, k, exclude_self=True, device=device)
    if method == "tree":
        return knn_rows(X, np.arange(len(X)), k)
    from pynndescent import NNDescent

    X32 = np.ascontiguousarray(X, dtype=np.float32)
    index = NNDescent(X32, n_neighbors=k + 1, random_state=seed, n_jobs=1)
    idx, dist = index.neighbor_graph
    return _drop_self(idx.astype(np.int64), dist.astype(np.float32), np.arange(len(X32)), k)


def features_digest(X: np.ndarray) -> str:
    """A short digest of a feature array (shape and bytes): tells whether a stored kNN graph still applies."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(X.shape).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float32).data)
    return h.hexdigest()
