"""Ullmann's candidate matrix in CSR and its refinement as sparse algebra.

``M[i, j] = 1`` when pattern vertex ``i`` may sit on tile ``j``. Initially: the tile is allowed,
its degree in the h-hop target is at least the vertex's degree, and the feasibility hook agrees.
Ullmann's refinement removes ``(i, j)`` when some neighbour ``x`` of ``i`` has no candidate among
the neighbours of ``j``. With ``A_P`` and ``A_T`` the pattern and target adjacency matrices:

    S = (M · A_T) > 0          S[x, j]: x has a candidate next to j
    D = A_P · S                D[i, j]: neighbours x of i that have a candidate next to j
    M ← M ∧ (D = deg_P)        keep (i, j) only if every neighbour of i does

repeated to a fixed point. Every step is a sparse product over CSR; no Python loop visits
(vertex, tile) pairs. The matrix is built only for small instances (``dense_size`` bound): a
homogeneous mesh barely prunes by degree, so for large ones the engines compute candidate rows
on the frontier instead (see :mod:`isosched.match.search`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from scipy.sparse import csr_array

from isosched.match.target import ChipTarget
from isosched.tilegraph import TileGraph

__all__ = ["candidate_matrix", "csr_nbytes", "domains_from_matrix", "refine"]


def csr_nbytes(m: csr_array) -> int:
    """Bytes held by a CSR matrix (data, indices, indptr)."""
    return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)


def candidate_matrix(
    pattern: TileGraph,
    target: ChipTarget,
    feasible: Callable[[int, int], bool] | None = None,
) -> csr_array:
    """Initial candidate matrix (pattern × target, ``int8`` 0/1) with degree and label filtering."""
    indptr, _ = pattern.undirected_csr()
    pdeg = np.diff(indptr)
    tdeg = target.degree
    n = len(pattern)
    # Tiles sorted by degree: the candidates of a vertex of degree d are a suffix of this list.
    ok_tiles = np.nonzero(target.allowed)[0]
    by_deg = ok_tiles[np.argsort(tdeg[ok_tiles], kind="stable")]
    sorted_deg = tdeg[by_deg]
    first = np.searchsorted(sorted_deg, pdeg, side="left")
    counts = len(by_deg) - first
    rows = np.repeat(np.arange(n), counts)
    # Column index of entry k of row r: by_deg[first[r] + (k - row_start[r])].
    row_start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    offs = np.arange(int(counts.sum())) - np.repeat(row_start, counts) + np.repeat(first, counts)
    cols = by_deg[offs]
    m = csr_array((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, target.size))
    m.sort_indices()
    if feasible is not None:
        keep = np.fromiter(
            (feasible(int(r), int(c)) for r, c in zip(rows, m.indices, strict=True)),
            dtype=bool,
            count=len(rows),
        )
        m = _masked(m, keep)
    return m


def _masked(m: csr_array, keep: np.ndarray) -> csr_array:
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    out = csr_array((m.data[keep].astype(np.int8), (rows[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


def refine(
    m: csr_array,
    pattern: TileGraph,
    target: ChipTarget,
    deadline: float | None = None,
    max_rounds: int = 64,
) -> tuple[csr_array, int]:
    """Ullmann refinement to a fixed point.

    Returns
    -------
    (csr_array, int)
        The refined matrix and the number of rounds run. A row of zeros proves that no
        placement exists.
    """
    indptr, indices = pattern.undirected_csr()
    n = len(pattern)
    a_p = csr_array((np.ones(len(indices), dtype=np.int32), indices, indptr), shape=(n, n))
    a_t = csr_array(
        (np.ones(len(target.indices), dtype=np.int32), target.indices, target.indptr),
        shape=(target.size, target.size),
    )
    pdeg = np.diff(indptr)
    rounds = 0
    while rounds < max_rounds:
        if deadline is not None and time.perf_counter() > deadline:
            break
        rounds += 1
        s = (m.astype(np.int32) @ a_t) > 0
        d = a_p @ s.astype(np.int32)
        # D restricted to M's non-zeros; keep entries whose count equals the vertex degree.
        at_m = m.astype(np.int32).multiply(d).tocsr()
        at_m.sort_indices()
        rows_m = np.repeat(np.arange(n), np.diff(m.indptr))
        # at_m drops zeros, so look D up entry by entry through a merge on (row, col).
        key_m = rows_m.astype(np.int64) * target.size + m.indices
        rows_d = np.repeat(np.arange(n), np.diff(at_m.indptr))
        key_d = rows_d.astype(np.int64) * target.size + at_m.indices
        val = np.zeros(len(key_m), dtype=np.int64)
        pos = np.searchsorted(key_m, key_d)
        val[pos] = at_m.data
        keep = (val >= pdeg[rows_m]) | (pdeg[rows_m] == 0)
        if keep.all():
            break
        m = _masked(m, keep)
    return m, rounds


def domains_from_matrix(m: csr_array) -> list[frozenset[int]]:
    """Candidate row of every pattern vertex as a frozenset of tile indices."""
    ip, ix = m.indptr.tolist(), m.indices.tolist()
    return [frozenset(ix[ip[r] : ip[r + 1]]) for r in range(m.shape[0])]
