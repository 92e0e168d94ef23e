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

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import overload

import numpy as np
from scipy.sparse import csr_array, dia_array, vstack

from isosched.match.target import ChipTarget
from isosched.tilegraph import TileGraph

__all__ = ["CandidateRows", "candidate_matrix", "csr_nbytes", "domains_from_matrix", "refine"]


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


#: Estimated work (multiply-adds) of one block of rows in a refinement round: about 0.3 ms on
#: the benchmark machine, the granularity at which refinement notices its deadline.
BLOCK_WORK = 1 << 17


def _row_blocks(work: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive row ranges of at most ``BLOCK_WORK`` summed ``work`` each (at least a row)."""
    total = np.cumsum(work, dtype=np.float64)
    rows = len(total)
    cuts = [0]
    while cuts[-1] < rows:
        done = total[cuts[-1] - 1] if cuts[-1] else 0.0
        nxt = int(np.searchsorted(total, done + BLOCK_WORK, side="right"))
        cuts.append(min(rows, max(nxt, cuts[-1] + 1)))
    return list(itertools.pairwise(cuts))


def refine(
    m: csr_array,
    pattern: TileGraph,
    target: ChipTarget,
    deadline: float | None = None,
    max_rounds: int = 64,
) -> tuple[csr_array, int]:
    """Ullmann refinement to a fixed point.

    A round runs in blocks of rows of bounded work and checks ``deadline`` after each block; a
    round the deadline interrupts is dropped (the matrix of the previous round is still sound:
    refinement only removes pairs that no placement can use).

    Returns
    -------
    (csr_array, int)
        The refined matrix and the number of rounds completed. A row of zeros proves that no
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
    isolated = pdeg == 0
    tdeg = np.diff(target.indptr)
    clock = time.perf_counter
    stop = math.inf if deadline is None else deadline
    rounds = 0
    while rounds < max_rounds:
        if clock() > stop:
            break
        m32 = m.astype(np.int32)
        # S = (M · A_T) > 0: S[x, j] says x has a candidate next to tile j.
        s_parts = []
        for r0, r1 in _row_blocks(m32 @ tdeg):
            s_parts.append(((m32[r0:r1] @ a_t) > 0).astype(np.int32))
            if clock() > stop:
                return m, rounds
        s = vstack(s_parts, format="csr")
        # Keep (i, j) when D = A_P · S counts every neighbour of i there: M ∧ (D ≥ deg).
        kept = []
        # Work of a row: the product, plus the elementwise passes over its entries (which
        # cost several multiply-adds each).
        for r0, r1 in _row_blocks(a_p @ np.diff(s.indptr) + 8 * np.diff(m.indptr)):
            d = (a_p[r0:r1] @ s).tocsr()
            rows = np.repeat(np.arange(r1 - r0), np.diff(d.indptr))
            full = (d.data >= pdeg[r0:r1][rows]).astype(np.int8)
            block = csr_array(m[r0:r1].multiply(csr_array((full, d.indices, d.indptr), d.shape)))
            if isolated[r0:r1].any():  # nothing to support them: their rows stay whole
                keep_rows = dia_array((isolated[r0:r1].astype(np.int8), 0), (r1 - r0, r1 - r0))
                block = csr_array(block + keep_rows @ m[r0:r1])
            block.eliminate_zeros()
            kept.append(block)
            if clock() > stop:
                return m, rounds
        rounds += 1
        new = csr_array(vstack(kept, format="csr").astype(np.int8))
        if new.nnz == m.nnz:
            break
        new.sort_indices()
        m = new
    return m, rounds


def domains_from_matrix(m: csr_array) -> list[frozenset[int]]:
    """Candidate row of every pattern vertex as a frozenset of tile indices."""
    ip, ix = m.indptr.tolist(), m.indices.tolist()
    return [frozenset(ix[ip[r] : ip[r + 1]]) for r in range(m.shape[0])]


class CandidateRows(Sequence[frozenset[int]]):
    """Candidate rows of a matrix as frozensets of tile indices, each built on first use.

    Same contents as :func:`domains_from_matrix` without paying for every row up front: the
    search reads only the rows of the vertices it reaches.
    """

    def __init__(self, m: csr_array) -> None:
        self._indptr = m.indptr.tolist()
        self._indices = m.indices
        self._rows: list[frozenset[int] | None] = [None] * m.shape[0]

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> frozenset[int]: ...

    @overload
    def __getitem__(self, i: slice) -> list[frozenset[int]]: ...

    def __getitem__(self, i: int | slice) -> frozenset[int] | list[frozenset[int]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        row = self._rows[i]
        if row is None:
            ip = self._indptr
            row = self._rows[i] = frozenset(self._indices[ip[i] : ip[i + 1]].tolist())
        return row
