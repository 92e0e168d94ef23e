"""The compiled core of the ``cp`` engine (numba): the same search over fixed-width word sets.

A set of tiles is a row of ``W = ceil(tiles / 64)`` unsigned 64-bit words (an 8×8 chip's domain is
one word, a 16×16 chip's four). :mod:`isosched.match.cp` holds the reference, in pure Python over
``int`` bit sets; this module repeats it step for step, so that the two give the same answer, the
same node counts and the same stop reason for the same node budget (tests/test_match_cpcore.py
checks it with hypothesis). What differs is only how state is kept:

* the Python search copies its state (every domain) at every node; here one state is changed in
  place and a trail records each domain's words before its first change at a node, so undoing a
  node restores exactly what the copy would have kept;
* the search runs in slices of at most a given number of nodes and returns to Python between
  slices (which checks the wall clock and the cancel hook, as the Python loop does per node), and
  to grow its buffers; it resumes where it stopped, so slicing never changes an answer; restarts
  are set up here too (the next run's failure limit, tie-breaks and random stream, drawn as the
  Python driver draws them), so a restart costs no return to Python;
* the random value order after a restart draws from the same Mersenne Twister as Python's
  ``random.Random(seed)``: the generator's state is seeded by Python (``init_by_array``, the same
  key) and numbers are drawn here with ``random()``'s 53-bit recipe;
* a node makes no function call: what runs at every node (:func:`_assign`, :func:`_hall`,
  :func:`_values`, :func:`_select`, :func:`_undo`) is inlined into :func:`search_slice`, which is
  compiled without numba's reference counting (``_nrt=False``) and allocates nothing (its work
  rows come from Python). A call passing some forty arrays cost about a third of a node: each
  array's fields copied, and its reference count raised and lowered (two atomic operations).
  Calls of more than 30 arguments cannot be inlined (Python passes them as ``*args``), so the
  pattern's CSR arrays go to :func:`_assign` as one tuple.

Setup (initial domains, distance layers, balls of the target graph) is compiled too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["build_arrays", "search_slice"]

ONE = np.uint64(1)
ZERO = np.uint64(0)
ALL = np.uint64(0xFFFFFFFFFFFFFFFF)
M32 = np.uint64(0xFFFFFFFF)

_F = TypeVar("_F", bound=Callable[..., Any])


def _nrt_option() -> bool:
    """Whether this numba takes the (private) ``_nrt`` option; else plain ``njit`` is used."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:  # pragma: no cover - another numba layout
        return False
    return hasattr(CPUTargetOptions, "_nrt")


def _njit_uncounted(fn: _F) -> _F:
    """``njit(cache=True)`` without numba's reference counting (``_nrt=False``).

    For functions that allocate nothing and run at every node (see the module's notes); numba's
    type stubs do not list the option. A numba without the option compiles them with reference
    counting: slower, the same answers.
    """
    options: dict[str, Any] = {"cache": True}
    if _nrt_option():
        options["_nrt"] = False
    out: _F = cast(Any, njit)(**options)(fn)
    return out


# Scalar slots of the resumable search (an int64 array).
S_RUN = 0  # restart index i (0: not started)
S_DEPTH = 1
S_FAILS = 2
S_NODES = 3
S_BACKTRACKS = 4
S_MAXDEPTH = 5
S_PROPAGATED = 6
S_PARTIAL_N = 7
S_SOLUTIONS = 8
S_STAMP = 9
S_HAVE_BEST = 10
S_DTR = 11  # domain trail length
S_TTR = 12  # assignment trail length
S_VTOP = 13  # values buffer length
S_ATOP = 14  # saved-active buffer length
S_PLACED = 15
S_ALEN = 16  # current active list length
S_MTI = 17  # Mersenne Twister position
S_LIMIT = 18  # fail limit of the current run (-1: none)
S_ROOTK = 19  # values of the root level of the current run
S_NOGOODS = 20  # root values refuted by earlier runs
S_KEEP_NOGOODS = 21  # 1: keep them
S_NDEM = 22  # root values demoted at restarts (rows of ``dem``)
S_INCORE = 23  # 1: restarts happen here, without returning to Python
S_SEED = 24  # the search's seed (for the restarts made here)
S_FAILBASE = 25  # failures per Luby unit (for the restarts made here)
S_QFULL = 26  # 1: the propagation queue overflowed (grow it and run the node again)
NS = 27

#: Word rows longer than this are counted in the propagation pass without a branch per word
#: (vectorised; the tile of a singleton found afterwards): most of their words are zero at a few
#: hops. Up to four words (a 16×16 chip) a branch per word measured faster.
WIDE = 4

# Return codes.
R_SLICE = 0
R_FOUND = 1
R_EXHAUSTED = 2
R_BUDGET = 3
R_GROW = 4
R_RESTART = 5


def _ctpop_impl(typingctx: Any, src: Any) -> Any:
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return sig, codegen


def _cttz_impl(typingctx: Any, src: Any) -> Any:
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen


#: Population count and trailing zeros of a ``uint64`` (LLVM's ``ctpop`` and ``cttz``).
_ctpop: Any = intrinsic(_ctpop_impl)
_cttz: Any = intrinsic(_cttz_impl)


@njit(cache=True, inline="always")
def _pc_impl(x: Any) -> Any:
    return np.int64(_ctpop(x))


@njit(cache=True, inline="always")
def _tz_impl(x: Any) -> Any:
    return np.int64(_cttz(x))


_pc: Any = _pc_impl
_tz: Any = _tz_impl


@njit(cache=True, inline="always")
def popcount(row: Any) -> int:
    c = 0
    for i in range(row.shape[0]):
        c += _pc(row[i])
    return c


@njit(cache=True, inline="always")
def rowpop(rows: Any, u: int) -> int:
    """Population count of row ``u`` of a 2-D word array (no view, no reference count)."""
    c = 0
    for i in range(rows.shape[1]):
        c += _pc(rows[u, i])
    return c


@njit(cache=True)
def tiles_of_row(row: Any, out: Any) -> int:
    """Tile indices of a word row into ``out``, ascending; returns how many."""
    k = 0
    for i in range(row.shape[0]):
        x = row[i]
        while x != ZERO:
            b = np.int64(_cttz(x))
            out[k] = i * 64 + b
            k += 1
            x &= x - ONE
    return k


# ---- the Mersenne Twister of Python's ``random`` (generation only; seeded by Python) ----------


@njit(cache=True)
def _mt_next(mt: Any, s: Any) -> Any:
    n, m = 624, 397
    if s[S_MTI] >= n:
        upper, lower = np.uint64(0x80000000), np.uint64(0x7FFFFFFF)
        mag = np.uint64(0x9908B0DF)
        for kk in range(n):
            y = (mt[kk] & upper) | (mt[(kk + 1) % n] & lower)
            v = mt[(kk + m) % n] ^ (y >> ONE)
            if y & ONE:
                v ^= mag
            mt[kk] = v
        s[S_MTI] = 0
    y = mt[s[S_MTI]]
    s[S_MTI] += 1
    y ^= y >> np.uint64(11)
    y ^= (y << np.uint64(7)) & np.uint64(0x9D2C5680)
    y ^= (y << np.uint64(15)) & np.uint64(0xEFC60000)
    y ^= y >> np.uint64(18)
    return y & M32


@njit(cache=True)
def mt_seed(key: Any) -> Any:
    """Mersenne Twister state after ``init_by_array(key)``.

    It is what ``random.seed(int)`` does with the 32-bit words of the integer (written from the
    published reference algorithm).
    """
    mt = np.empty(624, dtype=np.uint64)
    _init_by_array(mt, key, key.shape[0])
    return mt


@njit(cache=True)
def _init_by_array(mt: Any, key: Any, kl: int) -> None:
    """``mt`` (624 words) seeded in place by the first ``kl`` words of ``key`` (array or tuple)."""
    n = 624
    mt[0] = np.uint64(19650218)
    for i in range(1, n):
        p = mt[i - 1]
        mt[i] = (np.uint64(1812433253) * (p ^ (p >> np.uint64(30))) + np.uint64(i)) & M32
    i, j = 1, 0
    for _ in range(max(n, kl)):
        p = mt[i - 1]
        mt[i] = (
            (mt[i] ^ (((p ^ (p >> np.uint64(30))) * np.uint64(1664525)) & M32))
            + key[j]
            + np.uint64(j)
        ) & M32
        i += 1
        j += 1
        if i >= n:
            mt[0] = mt[n - 1]
            i = 1
        if j >= kl:
            j = 0
    for _ in range(n - 1):
        p = mt[i - 1]
        mt[i] = (
            (mt[i] ^ (((p ^ (p >> np.uint64(30))) * np.uint64(1566083941)) & M32)) - np.uint64(i)
        ) & M32
        i += 1
        if i >= n:
            mt[0] = mt[n - 1]
            i = 1
    mt[0] = np.uint64(0x80000000)


@njit(cache=True)
def _mt_random(mt: Any, s: Any) -> float:
    a = _mt_next(mt, s) >> np.uint64(5)
    b = _mt_next(mt, s) >> np.uint64(6)
    return (float(a) * 67108864.0 + float(b)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def mt_seed_int(key: int) -> Any:
    """Mersenne Twister state of ``random.Random(key)`` for ``0 <= key < 2**63``."""
    mt = np.empty(624, dtype=np.uint64)
    _seed_int_into(mt, key)
    return mt


@njit(cache=True)
def _seed_int_into(mt: Any, key: int) -> None:
    """:func:`mt_seed_int` into ``mt`` in place (restarts made in the core allocate nothing)."""
    lo = np.uint64(key) & M32
    hi = np.uint64(key) >> np.uint64(32)
    _init_by_array(mt, (lo, hi), 1 if hi == ZERO else 2)


@njit(cache=True)
def luby(i: int) -> int:
    """The ``i``-th term (from 1) of the Luby sequence (:func:`isosched.match.cp.luby`)."""
    k = 1
    while (1 << k) - 1 < i:
        k += 1
    while True:
        if i == (1 << k) - 1:
            return 1 << (k - 1)
        i -= (1 << (k - 1)) - 1
        k = 1
        while (1 << k) - 1 < i:
            k += 1


@njit(cache=True)
def _next_run(s: Any, f: Any, mt: Any, tie: Any, n: int) -> None:
    """Set up the next run of the restart schedule, as the Python driver does between runs.

    Its failure limit, its tie-break draws and its value-order generator.
    """
    run = s[S_RUN] + 1
    s[S_RUN] = run
    s[S_LIMIT] = luby(run) * s[S_FAILBASE]
    key = s[S_SEED] * 1_000_003 + run
    _seed_int_into(mt, abs(2 * key + 1))  # random.Random of cp.tie_breaks
    s[S_MTI] = 624
    for u in range(n):
        tie[u] = f[2] * _mt_random(mt, s)
    _seed_int_into(mt, abs(key))  # random.Random(rng_key(run)) of the value order
    s[S_MTI] = 624


# ---- setup -------------------------------------------------------------------------------------


@njit(cache=True)
def build_arrays(
    n: int,
    pip: Any,
    pix: Any,
    size: int,
    allowed: Any,
    tip: Any,
    tix: Any,
    cap: int,
    maxd: int,
) -> Any:
    """Neighbour rows, balls, distance layers and initial domains, as the Python model has them.

    Returns ``nbr (size, W)``, ``balls (maxd + 1, size, W)``, ``dom0 (n, W)``, layer CSR
    (``lay_ptr``, ``lay_d``, ``lay_uptr``, ``lay_u``) and per vertex ``pdeg``, ``within2``,
    ``psize`` (the keys of the static filter, for the proof message).
    """
    w = (size + 63) // 64
    nbr = np.zeros((size, w), dtype=np.uint64)
    for t in range(size):
        if allowed[t]:
            for k in range(tip[t], tip[t + 1]):
                u = tix[k]
                nbr[t, u >> 6] |= ONE << np.uint64(u & 63)
    balls = np.zeros((maxd + 1, size, w), dtype=np.uint64)
    front = np.empty(size, dtype=np.int64)
    ring = np.empty(w, dtype=np.uint64)
    for t in range(size):
        balls[0, t, t >> 6] = ONE << np.uint64(t & 63)
        if not allowed[t]:
            continue
        nf = 1
        front[0] = t
        for d in range(1, maxd + 1):
            # ball d = ball d-1 and the links of the tiles first reached at d-1 (its ring)
            for i in range(w):
                balls[d, t, i] = balls[d - 1, t, i]
            for j in range(nf):
                u = front[j]
                for i in range(w):
                    balls[d, t, i] |= nbr[u, i]
            if d < maxd:
                for i in range(w):
                    ring[i] = balls[d, t, i] & ~balls[d - 1, t, i]
                nf = tiles_of_row(ring, front)
    # target degree, tiles within two links, size of the free region
    tdeg = np.zeros(size, dtype=np.int64)
    t2 = np.zeros(size, dtype=np.int64)
    region = np.zeros(size, dtype=np.int64)
    for t in range(size):
        if allowed[t]:
            tdeg[t] = popcount(nbr[t])
            t2[t] = popcount(balls[min(2, maxd), t])
    comp = np.full(size, -1, dtype=np.int64)
    queue = np.empty(size, dtype=np.int64)
    for t in range(size):
        if not allowed[t] or comp[t] >= 0:
            continue
        comp[t] = t
        queue[0] = t
        qn, qi = 1, 0
        while qi < qn:
            u = queue[qi]
            qi += 1
            for k in range(tip[u], tip[u + 1]):
                x = tix[k]
                if comp[x] < 0:
                    comp[x] = t
                    queue[qn] = x
                    qn += 1
        for j in range(qn):
            region[queue[j]] = qn
    # pattern: degrees, component sizes, distance layers, counts within two edges
    pdeg = np.empty(n, dtype=np.int64)
    for v in range(n):
        pdeg[v] = pip[v + 1] - pip[v]
    psize = np.zeros(n, dtype=np.int64)
    pq = np.empty(n, dtype=np.int64)
    for v in range(n):
        if psize[v]:
            continue
        psize[v] = -1
        pq[0] = v
        qn, qi = 1, 0
        while qi < qn:
            u = pq[qi]
            qi += 1
            for k in range(pip[u], pip[u + 1]):
                x = pix[k]
                if psize[x] == 0:
                    psize[x] = -1
                    pq[qn] = x
                    qn += 1
        for j in range(qn):
            psize[pq[j]] = qn
    within2 = np.zeros(n, dtype=np.int64)
    pmark = np.zeros(n, dtype=np.int64)
    pfront = np.empty(n, dtype=np.int64)
    pnext = np.empty(n, dtype=np.int64)
    lay_ptr = np.zeros(n + 1, dtype=np.int64)
    cnt_e = 0
    cnt_u = 0
    # two passes: count, then fill
    for fill in range(2):
        if fill == 1:
            lay_d = np.empty(cnt_e, dtype=np.int64)
            lay_uptr = np.zeros(cnt_e + 1, dtype=np.int64)
            lay_u = np.empty(cnt_u, dtype=np.int64)
        e = 0
        eu = 0
        pmark[:] = 0
        for v in range(n):
            if fill == 1:
                lay_ptr[v] = e
            pstamp = v + 1
            pmark[v] = pstamp
            seen = 1
            nf = 0
            for k in range(pip[v], pip[v + 1]):
                x = pix[k]
                if pmark[x] != pstamp:
                    pmark[x] = pstamp
                    pfront[nf] = x
                    nf += 1
                    seen += 1
            for d in range(2, cap + 1):
                nn = 0
                for j in range(nf):
                    u = pfront[j]
                    for k in range(pip[u], pip[u + 1]):
                        x = pix[k]
                        if pmark[x] != pstamp:
                            pmark[x] = pstamp
                            pnext[nn] = x
                            nn += 1
                seen += nn
                if d == 2:
                    within2[v] = seen
                if nn == 0:
                    break
                if fill == 1:
                    lay_d[e] = d
                    lay_uptr[e] = eu
                    srt = np.sort(pnext[:nn])
                    for j in range(nn):
                        lay_u[eu + j] = srt[j]
                e += 1
                eu += nn
                for j in range(nn):
                    pfront[j] = pnext[j]
                nf = nn
            if within2[v] == 0:
                within2[v] = seen
        if fill == 0:
            cnt_e, cnt_u = e, eu
        else:
            lay_ptr[n] = e
            lay_uptr[e] = eu
    dom0 = np.zeros((n, w), dtype=np.uint64)
    for v in range(n):
        a, b, c = pdeg[v], within2[v], psize[v]
        for t in range(size):
            if allowed[t] and tdeg[t] >= a and t2[t] >= b and region[t] >= c:
                dom0[v, t >> 6] |= ONE << np.uint64(t & 63)
    return nbr, balls, dom0, lay_ptr, lay_d, lay_uptr, lay_u, pdeg, within2, psize


# ---- search ------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _hall(
    dom: Any, active: Any, s: Any, free: Any, n: int, wk: Any, union: Any, counted: bool
) -> bool:
    left = n - s[S_PLACED]
    if left > popcount(free):
        return False
    na = s[S_ALEN]
    cnt = wk[0]
    idx = wk[1]
    if not counted:  # else the caller left the active vertices' domain sizes in wk[0]
        for j in range(na):
            cnt[j] = rowpop(dom, active[j])
    if na > 48:
        # stable counting sort by count (sizes are at most the tiles of the chip)
        top = 0
        for j in range(na):
            if cnt[j] > top:
                top = cnt[j]
        pos = wk[2]
        for c in range(top + 2):
            pos[c] = 0
        for j in range(na):
            pos[cnt[j] + 1] += 1
        for c in range(1, top + 2):
            pos[c] += pos[c - 1]
        for j in range(na):
            c = cnt[j]
            idx[pos[c]] = j
            pos[c] += 1
    else:
        # stable insertion sort by count (the Python reference sorts stably)
        for j in range(na):
            c = cnt[j]
            k = j
            while k > 0 and cnt[idx[k - 1]] > c:
                idx[k] = idx[k - 1]
                k -= 1
            idx[k] = j
    w = dom.shape[1]
    for i in range(w):
        union[i] = ZERO
    for k in range(na):
        u = active[idx[k]]
        c = 0
        for i in range(w):
            union[i] |= dom[u, i]
            c += _pc(union[i])
        if c < k + 1:
            return False
        if c >= na:  # the union only grows: no later k can fail
            return True
    return True


@njit(cache=True, inline="always")
def _assign(
    v0: int,
    t0: int,
    dom: Any,
    act: Any,
    tile_of: Any,
    free: Any,
    active: Any,
    s: Any,
    f: Any,
    saved: Any,
    tr_u: Any,
    tr_a: Any,
    tr_w: Any,
    tr_t: Any,
    dom0: Any,
    nbr: Any,
    balls: Any,
    g: Any,
    tile_cost: Any,
    cost_aware: bool,
    cw: float,
    width: int,
    n: int,
    wk: Any,
    union: Any,
    qv: Any,
    qt: Any,
) -> bool:
    # the pattern's CSR arrays, passed as one tuple: a call of more than 30 arguments cannot be
    # inlined (Python passes them as *args)
    pip, pix, pw, lay_ptr, lay_d, lay_uptr, lay_u, aip, aix, bip, bix = g
    w = dom.shape[1]
    s[S_STAMP] += 1
    stamp = s[S_STAMP]
    ntr = s[S_DTR]
    alen = s[S_ALEN]
    qv[0] = v0
    qt[0] = t0
    qn = 1
    first = True
    while qn > 0:
        qn -= 1
        v = qv[qn]
        t = qt[qn]
        cur = tile_of[v]
        if cur >= 0:
            if cur == t:
                continue
            s[S_DTR] = ntr
            s[S_ALEN] = alen
            return False
        wi = t >> 6
        bit = ONE << np.uint64(t & 63)
        if (free[wi] & bit) == ZERO:
            s[S_DTR] = ntr
            s[S_ALEN] = alen
            return False
        if act[v] and (dom[v, wi] & bit) == ZERO:
            s[S_DTR] = ntr
            s[S_ALEN] = alen
            return False
        if not first:
            s[S_PROPAGATED] += 1
        first = False
        tile_of[v] = t
        tr_t[s[S_TTR]] = v
        s[S_TTR] += 1
        free[wi] &= ~bit
        s[S_PLACED] += 1
        if saved[v] != stamp:  # the trail: v's words before its first change
            saved[v] = stamp
            tr_u[ntr] = v
            tr_a[ntr] = act[v]
            for i in range(w):
                tr_w[ntr, i] = dom[v, i]
            ntr += 1
        for i in range(w):
            dom[v, i] = ZERO
        dom[v, wi] = bit
        act[v] = 1
        if cost_aware:
            c = tile_cost[t]
            if cw:
                xs, ys = wk[4], wk[5]
                tx, ty = xs[t], ys[t]
                for k in range(pip[v], pip[v + 1]):
                    u = pix[k]
                    q = tile_of[u]
                    b = pw[k]
                    if q >= 0 and b:
                        c += cw * b * (abs(tx - xs[q]) + abs(ty - ys[q]))
            f[0] += c
            if f[0] >= f[1]:
                s[S_DTR] = ntr
                s[S_ALEN] = alen
                return False
        for k in range(pip[v], pip[v + 1]):
            u = pix[k]
            if tile_of[u] < 0:
                if saved[u] != stamp:  # the trail: u's words before its first change
                    saved[u] = stamp
                    tr_u[ntr] = u
                    tr_a[ntr] = act[u]
                    for i in range(w):
                        tr_w[ntr, i] = dom[u, i]
                    ntr += 1
                if not act[u]:
                    for i in range(w):  # explicit domain, in the active list
                        dom[u, i] = dom0[u, i] & free[i]
                    act[u] = 1
                    active[alen] = u
                    alen += 1
                for i in range(w):
                    dom[u, i] &= nbr[t, i]
        for e in range(lay_ptr[v], lay_ptr[v + 1]):
            dist = lay_d[e]
            for k in range(lay_uptr[e], lay_uptr[e + 1]):
                u = lay_u[k]
                if tile_of[u] < 0:
                    if saved[u] != stamp:  # the trail: u's words before its first change
                        saved[u] = stamp
                        tr_u[ntr] = u
                        tr_a[ntr] = act[u]
                        for i in range(w):
                            tr_w[ntr, i] = dom[u, i]
                        ntr += 1
                    if not act[u]:
                        for i in range(w):  # explicit domain, in the active list
                            dom[u, i] = dom0[u, i] & free[i]
                        act[u] = 1
                        active[alen] = u
                        alen += 1
                    for i in range(w):
                        dom[u, i] &= balls[dist, t, i]
        sh = np.uint64(t & 63)
        for k in range(aip[v], aip[v + 1]):
            u = aix[k]
            if tile_of[u] < 0:
                if saved[u] != stamp:  # the trail: u's words before its first change
                    saved[u] = stamp
                    tr_u[ntr] = u
                    tr_a[ntr] = act[u]
                    for i in range(w):
                        tr_w[ntr, i] = dom[u, i]
                    ntr += 1
                if not act[u]:
                    for i in range(w):  # explicit domain, in the active list
                        dom[u, i] = dom0[u, i] & free[i]
                    act[u] = 1
                    active[alen] = u
                    alen += 1
                # tiles above t only
                for i in range(wi):
                    dom[u, i] = ZERO
                dom[u, wi] &= ~(((bit << ONE) - ONE) if sh < np.uint64(63) else ALL)
        for k in range(bip[v], bip[v + 1]):
            u = bix[k]
            if tile_of[u] < 0:
                if saved[u] != stamp:  # the trail: u's words before its first change
                    saved[u] = stamp
                    tr_u[ntr] = u
                    tr_a[ntr] = act[u]
                    for i in range(w):
                        tr_w[ntr, i] = dom[u, i]
                    ntr += 1
                if not act[u]:
                    for i in range(w):  # explicit domain, in the active list
                        dom[u, i] = dom0[u, i] & free[i]
                    act[u] = 1
                    active[alen] = u
                    alen += 1
                # tiles below t only
                dom[u, wi] &= bit - ONE
                for i in range(wi + 1, w):
                    dom[u, i] = ZERO
        keep = 0
        sizes = wk[0]
        notbit = ~bit
        for j in range(alen):
            u = active[j]
            if tile_of[u] >= 0:
                continue
            d = dom[u, wi] & notbit
            if dom[u, wi] != d:
                if saved[u] != stamp:  # the trail: u's words before its first change
                    saved[u] = stamp
                    tr_u[ntr] = u
                    tr_a[ntr] = act[u]
                    for i in range(w):
                        tr_w[ntr, i] = dom[u, i]
                    ntr += 1
                dom[u, wi] = d
            c = 0
            last: Any = -1
            if w > WIDE:
                for i in range(w):  # no branch: vectorised
                    c += _pc(dom[u, i])
            else:
                for i in range(w):
                    x = dom[u, i]
                    if x != ZERO:
                        c += _pc(x)
                        last = i * 64 + _tz(x)
            if c == 0:
                s[S_DTR] = ntr
                s[S_ALEN] = alen
                return False
            if c == 1:
                if w > WIDE:
                    for i in range(w):
                        x = dom[u, i]
                        if x != ZERO:
                            last = i * 64 + _tz(x)
                if qn >= qv.shape[0]:
                    # full: the caller undoes this node and runs it again with a longer queue
                    # (growing it here would cost every node: the loop's arrays could change)
                    s[S_QFULL] = 1
                    s[S_DTR] = ntr
                    s[S_ALEN] = alen
                    return False
                qv[qn] = u
                qt[qn] = last
                qn += 1
            active[keep] = u
            sizes[keep] = c  # the last pass's sizes are the final ones: _hall and _select read them
            keep += 1
        alen = keep
    s[S_DTR] = ntr
    s[S_ALEN] = alen
    return _hall(dom, active, s, free, n, wk, union, True)


@njit(cache=True, inline="always")
def _select(
    dom: Any,
    active: Any,
    s: Any,
    rank: Any,
    order: Any,
    tile_of: Any,
    tie: Any,
    sizes: Any,
    counted: bool,
) -> Any:
    """The next branching vertex; ``counted``: ``sizes[j]`` is ``active[j]``'s domain size."""
    best = -1
    bc, br = 1e300, 0
    for j in range(s[S_ALEN]):
        u = active[j]
        c = (sizes[j] if counted else rowpop(dom, u)) + tie[u]
        if c < bc or (c == bc and rank[u] < br):
            best, bc, br = u, c, rank[u]
    if best >= 0:
        return best
    for v in order:
        if tile_of[v] < 0:
            return v
    return -1


@njit(cache=True, inline="always")
def _values(
    v: int,
    dom: Any,
    act: Any,
    dom0: Any,
    free: Any,
    tile_of: Any,
    nbr: Any,
    pip: Any,
    pix: Any,
    tile_cost: Any,
    cost_aware: bool,
    width: int,
    use_rng: bool,
    noise: float,
    hub_deg: int,
    dem: Any,
    pent: Any,
    demote: float,
    mt: Any,
    s: Any,
    vbuf: Any,
    off: int,
    tmp: Any,
    keys: Any,
    rk: Any,
    wk: Any,
    union: Any,
) -> int:
    """Tiles of ``v``'s domain into ``vbuf[off:]``, best last; returns how many."""
    w = dom.shape[1]
    row = union
    if act[v]:
        for i in range(w):
            row[i] = dom[v, i]
    else:
        for i in range(w):
            row[i] = dom0[v, i] & free[i]
    k = tiles_of_row(row, tmp)
    if k <= 1:
        for j in range(k):
            vbuf[off + j] = tmp[j]
        return k
    if demote > 0.0:  # the root's demoted tiles of v, per tile (cleared below)
        for e in range(s[S_NDEM]):
            if dem[e, 0] == v:
                pent[dem[e, 1]] += demote
    np_ = 0
    placed = wk[0]  # the placed neighbours' coordinates, x and y in turn
    xs, ys = wk[4], wk[5]
    for e in range(pip[v], pip[v + 1]):
        q = tile_of[pix[e]]
        if q >= 0:
            placed[2 * np_] = xs[q]
            placed[2 * np_ + 1] = ys[q]
            np_ += 1
    for j in range(k):
        t = tmp[j]
        c = 0
        for i in range(w):
            c += _pc(nbr[t, i] & free[i])
        kk = float(c) if pip[v + 1] - pip[v] < hub_deg else -float(c)  # a hub: many first
        if np_:
            tx, ty = xs[t], ys[t]
            for a in range(np_):
                kk += abs(tx - placed[2 * a]) + abs(ty - placed[2 * a + 1])
        if cost_aware:
            kk += tile_cost[t]
        if use_rng:
            kk += noise * _mt_random(mt, s)
        if demote > 0.0:
            kk += pent[t]
        keys[j] = kk
    if demote > 0.0:
        for e in range(s[S_NDEM]):
            pent[dem[e, 1]] = 0.0
    # Python sorts (key, tile) descending and pops from the end: the stable ascending order,
    # reversed, is the same list.
    idx = wk[1]
    if k > 64:
        _stable_order(keys, k, idx, wk[2], rk, wk[3])
    else:
        for j in range(k):
            c = keys[j]
            m = j
            while m > 0 and keys[idx[m - 1]] > c:
                idx[m] = idx[m - 1]
                m -= 1
            idx[m] = j
    for j in range(k):
        vbuf[off + j] = tmp[idx[k - 1 - j]]
    return k


@_njit_uncounted
def _stable_order(keys: Any, k: int, idx: Any, buf: Any, rk: Any, cnt: Any) -> None:
    """``idx[:k]``: the stable ascending order of ``keys[:k]`` (floats, no NaN), without allocating.

    The order ``np.argsort(kind="mergesort")`` gives (a stable order is unique; ``-0.0`` and
    ``0.0`` tie): a least-significant-digit radix sort, eight passes of a byte, over the keys' bits
    mapped to unsigned integers in the same order (a comparison sort of a whole chip's tiles
    mispredicted about every other comparison). ``buf`` (int64) and ``rk`` (uint64) hold at least
    ``k`` entries, ``cnt`` 257.
    """
    sign = np.uint64(0x8000000000000000)
    kb = keys.view(np.uint64)
    for j in range(k):
        b = kb[j]
        if b == sign:  # -0.0 is 0.0
            b = ZERO
        rk[j] = ~b if b & sign else b | sign
        idx[j] = j
    src, dst = idx, buf
    flips = 0
    for p in range(8):
        sh = np.uint64(8 * p)
        for d in range(257):
            cnt[d] = 0
        for j in range(k):
            cnt[np.int64((rk[src[j]] >> sh) & np.uint64(255)) + 1] += 1
        if cnt[np.int64((rk[src[0]] >> sh) & np.uint64(255)) + 1] == k:
            continue  # one digit for all: the order stands
        for d in range(1, 257):
            cnt[d] += cnt[d - 1]
        for j in range(k):
            x = src[j]
            dg = np.int64((rk[x] >> sh) & np.uint64(255))
            dst[cnt[dg]] = x
            cnt[dg] += 1
        src, dst = dst, src
        flips += 1
    if flips % 2:  # the sorted run is in buf
        for j in range(k):
            idx[j] = buf[j]


@njit(cache=True, inline="always")
def _undo(
    lvl: int,
    dom: Any,
    act: Any,
    tile_of: Any,
    free: Any,
    active: Any,
    s: Any,
    f: Any,
    tr_u: Any,
    tr_a: Any,
    tr_w: Any,
    tr_t: Any,
    lv_dtr: Any,
    lv_ttr: Any,
    lv_free: Any,
    lv_cost: Any,
    lv_placed: Any,
    lv_aoff: Any,
    lv_alen: Any,
    abuf: Any,
) -> None:
    w = dom.shape[1]
    mark = lv_dtr[lvl]
    for k in range(s[S_DTR] - 1, mark - 1, -1):
        u = tr_u[k]
        act[u] = tr_a[k]
        for i in range(w):
            dom[u, i] = tr_w[k, i]
    s[S_DTR] = mark
    mark = lv_ttr[lvl]
    for k in range(s[S_TTR] - 1, mark - 1, -1):
        tile_of[tr_t[k]] = -1
    s[S_TTR] = mark
    for i in range(w):
        free[i] = lv_free[lvl, i]
    f[0] = lv_cost[lvl]
    s[S_PLACED] = lv_placed[lvl]
    a0, na = lv_aoff[lvl], lv_alen[lvl]
    for j in range(na):
        active[j] = abuf[a0 + j]
    s[S_ALEN] = na


@njit(cache=True)
def root_hall(dom0: Any, free: Any, n: int) -> bool:
    """The counting all-different over every vertex's initial domain (the eager root)."""
    s = np.zeros(NS, dtype=np.int64)
    active = np.arange(n)
    s[S_ALEN] = n
    wk = np.zeros((3, max(n, dom0.shape[1] * 64 + 2)), dtype=np.int64)
    union = np.zeros(dom0.shape[1], dtype=np.uint64)
    return _hall(dom0, active, s, free, n, wk, union, False)


@_njit_uncounted
def _open_run(
    dom: Any,
    act: Any,
    dom0: Any,
    free: Any,
    tile_of: Any,
    active: Any,
    s: Any,
    mt: Any,
    nbr: Any,
    pip: Any,
    pix: Any,
    rank: Any,
    order: Any,
    tie: Any,
    tile_cost: Any,
    cost_aware: bool,
    width: int,
    use_rng: bool,
    noise: float,
    hub_deg: int,
    dem: Any,
    pent: Any,
    demote: float,
    vbuf: Any,
    tmp: Any,
    keys: Any,
    rk: Any,
    wk: Any,
    union: Any,
    lv_var: Any,
    lv_voff: Any,
    lv_vlen: Any,
    lv_aoff: Any,
    lv_alen: Any,
) -> None:
    """The root level of a run: its branching vertex and that vertex's values."""
    v = _select(dom, active, s, rank, order, tile_of, tie, wk[0], False)
    k = _values(
        v, dom, act, dom0, free, tile_of, nbr, pip, pix, tile_cost, cost_aware, width,
        use_rng, noise, hub_deg, dem, pent, demote, mt, s, vbuf, 0, tmp, keys, rk, wk, union,
    )  # fmt: skip
    lv_var[0] = v
    lv_voff[0] = 0
    lv_vlen[0] = k
    lv_aoff[0] = 0
    lv_alen[0] = 0
    s[S_VTOP] = k
    s[S_ROOTK] = k
    s[S_DEPTH] = 1
    s[S_FAILS] = 0


@_njit_uncounted
def search_slice(
    start: bool,
    max_nodes: int,
    slice_nodes: int,
    s: Any,
    f: Any,
    mt: Any,
    dom: Any,
    act: Any,
    tile_of: Any,
    free: Any,
    active: Any,
    saved: Any,
    tr_u: Any,
    tr_a: Any,
    tr_w: Any,
    tr_t: Any,
    lv_var: Any,
    lv_voff: Any,
    lv_vlen: Any,
    lv_dtr: Any,
    lv_ttr: Any,
    lv_free: Any,
    lv_cost: Any,
    lv_placed: Any,
    lv_aoff: Any,
    lv_alen: Any,
    vbuf: Any,
    abuf: Any,
    best: Any,
    partial: Any,
    tmp: Any,
    keys: Any,
    rk: Any,
    dom0: Any,
    nbr: Any,
    balls: Any,
    pip: Any,
    pix: Any,
    pw: Any,
    lay_ptr: Any,
    lay_d: Any,
    lay_uptr: Any,
    lay_u: Any,
    aip: Any,
    aix: Any,
    bip: Any,
    bix: Any,
    rank: Any,
    order: Any,
    tile_cost: Any,
    cost_aware: bool,
    cw: float,
    width: int,
    noise: float,
    tie: Any,
    hub_deg: int,
    dem: Any,
    pent: Any,
    demote: float,
    qv: Any,
    qt: Any,
    wk: Any,
    union: Any,
) -> int:
    """Run the search from where it stopped until it ends, or for ``slice_nodes`` more nodes.

    Returns ``R_SLICE`` (call again), ``R_GROW`` (grow the buffers, the propagation queue
    ``qv``/``qt`` when ``s[S_QFULL]`` is set, and call again), ``R_FOUND``,
    ``R_EXHAUSTED``, ``R_BUDGET`` (``max_nodes`` reached) or ``R_RESTART`` (the run failed more
    often than its limit; the state is back at the root). With ``s[S_INCORE]`` set, a restart
    sets up the next run here instead (:func:`_next_run`, what the Python driver would do) and
    goes on: ``R_RESTART`` is never returned.

    Nothing is allocated here; the work rows come from Python: ``wk`` (``6 × max(tiles + 2,
    2n + 2, 258)`` int64: the active vertices' domain sizes (left by :func:`_assign` for the
    Hall check and :func:`_select`), order and positions of the Hall check; placed neighbours'
    coordinates, order and digit counts of the value order; rows 4 and 5, which the caller
    fills, each tile's x and y), ``union`` (one word row) and ``rk`` (one uint64 per
    tile: the value order's sort keys).
    """
    n = dom.shape[0]
    size = nbr.shape[0]
    w = dom.shape[1]
    use_rng = s[S_RUN] > 1
    g = (pip, pix, pw, lay_ptr, lay_d, lay_uptr, lay_u, aip, aix, bip, bix)
    if start:
        _open_run(
            dom, act, dom0, free, tile_of, active, s, mt, nbr, pip, pix, rank, order, tie,
            tile_cost, cost_aware, width, use_rng, noise, hub_deg, dem, pent, demote, vbuf,
            tmp, keys, rk, wk, union, lv_var, lv_voff, lv_vlen, lv_aoff, lv_alen,
        )  # fmt: skip
    stop_at = s[S_NODES] + slice_nodes
    while s[S_DEPTH] > 0:
        if max_nodes >= 0 and s[S_NODES] >= max_nodes:
            return R_BUDGET
        if s[S_NODES] >= stop_at:
            return R_SLICE
        top = s[S_DEPTH] - 1
        if lv_vlen[top] == 0:
            if top > 0:
                _undo(
                    top, dom, act, tile_of, free, active, s, f, tr_u, tr_a, tr_w, tr_t,
                    lv_dtr, lv_ttr, lv_free, lv_cost, lv_placed, lv_aoff, lv_alen, abuf,
                )  # fmt: skip
            s[S_VTOP] = lv_voff[top]
            s[S_DEPTH] = top
            continue
        child = top + 1
        abase = lv_aoff[top] + lv_alen[top]
        if (
            s[S_DTR] + n + 1 > tr_u.shape[0]
            or abase + n > abuf.shape[0]
            or s[S_NDEM] >= dem.shape[0]
            or s[S_VTOP] + size > vbuf.shape[0]
        ):
            return R_GROW
        lv_vlen[top] -= 1
        t = vbuf[lv_voff[top] + lv_vlen[top]]
        v = lv_var[top]
        # what undoing the child restores
        lv_dtr[child] = s[S_DTR]
        lv_ttr[child] = s[S_TTR]
        for i in range(w):
            lv_free[child, i] = free[i]
        lv_cost[child] = f[0]
        lv_placed[child] = s[S_PLACED]
        lv_aoff[child] = abase
        na = s[S_ALEN]
        lv_alen[child] = na
        for j in range(na):
            abuf[abase + j] = active[j]
        s[S_NODES] += 1
        prop0 = s[S_PROPAGATED]
        ok = _assign(
            v, t, dom, act, tile_of, free, active, s, f, saved, tr_u, tr_a, tr_w, tr_t, dom0,
            nbr, balls, g, tile_cost, cost_aware, cw, width, n, wk, union, qv, qt,
        )  # fmt: skip
        if s[S_QFULL]:
            # as if the node had not run: the caller grows the queue and calls again
            _undo(
                child, dom, act, tile_of, free, active, s, f, tr_u, tr_a, tr_w, tr_t,
                lv_dtr, lv_ttr, lv_free, lv_cost, lv_placed, lv_aoff, lv_alen, abuf,
            )  # fmt: skip
            s[S_NODES] -= 1
            s[S_PROPAGATED] = prop0
            lv_vlen[top] += 1
            return R_GROW
        placed = s[S_PLACED]
        if placed > s[S_PARTIAL_N]:
            s[S_PARTIAL_N] = placed
            for u in range(n):
                partial[u] = tile_of[u]
        if placed > s[S_MAXDEPTH]:
            s[S_MAXDEPTH] = placed
        if not ok:
            _undo(
                child, dom, act, tile_of, free, active, s, f, tr_u, tr_a, tr_w, tr_t,
                lv_dtr, lv_ttr, lv_free, lv_cost, lv_placed, lv_aoff, lv_alen, abuf,
            )  # fmt: skip
            s[S_FAILS] += 1
            s[S_BACKTRACKS] += 1
            if s[S_LIMIT] >= 0 and s[S_FAILS] > s[S_LIMIT]:
                # root values tried before the one in progress (all, when a root value
                # failed) are refuted: later runs never take them again
                first = lv_vlen[0] + (1 if top > 0 else 0)
                if not s[S_KEEP_NOGOODS]:
                    first = s[S_ROOTK]
                v0 = lv_var[0]
                if top > 0 and demote > 0.0:
                    # the root value in progress goes after the untried ones next time
                    dem[s[S_NDEM], 0] = v0
                    dem[s[S_NDEM], 1] = vbuf[lv_vlen[0]]
                    s[S_NDEM] += 1
                for j in range(first, s[S_ROOTK]):
                    t0 = vbuf[j]
                    s[S_NOGOODS] += 1
                    dom0[v0, t0 >> 6] &= ~(ONE << np.uint64(t0 & 63))
                _unwind(
                    dom, act, tile_of, free, active, s, f, tr_u, tr_a, tr_w, tr_t,
                    lv_dtr, lv_ttr, lv_free, lv_cost, lv_placed, lv_aoff, lv_alen, abuf,
                )  # fmt: skip
                if act[v0]:
                    for i in range(w):
                        dom[v0, i] &= dom0[v0, i]
                if not s[S_INCORE]:
                    return R_RESTART
                _next_run(s, f, mt, tie, n)
                use_rng = True
                _open_run(
                    dom, act, dom0, free, tile_of, active, s, mt, nbr, pip, pix, rank, order,
                    tie, tile_cost, cost_aware, width, use_rng, noise, hub_deg, dem, pent,
                    demote, vbuf, tmp, keys, rk, wk, union, lv_var, lv_voff, lv_vlen, lv_aoff,
                    lv_alen,
                )  # fmt: skip
                continue
            continue
        if placed == n:
            if f[0] < f[1] or s[S_HAVE_BEST] == 0:
                for u in range(n):
                    best[u] = tile_of[u]
                f[1] = f[0]
                s[S_HAVE_BEST] = 1
            s[S_SOLUTIONS] += 1
            if not cost_aware:
                return R_FOUND
            _undo(
                child, dom, act, tile_of, free, active, s, f, tr_u, tr_a, tr_w, tr_t,
                lv_dtr, lv_ttr, lv_free, lv_cost, lv_placed, lv_aoff, lv_alen, abuf,
            )  # fmt: skip
            continue
        u = _select(dom, active, s, rank, order, tile_of, tie, wk[0], True)
        off = s[S_VTOP]
        k = _values(
            u, dom, act, dom0, free, tile_of, nbr, pip, pix, tile_cost, cost_aware, width,
            use_rng, noise, hub_deg, dem, pent, 0.0, mt, s, vbuf, off, tmp, keys, rk, wk, union,
        )  # fmt: skip
        lv_var[child] = u
        lv_voff[child] = off
        lv_vlen[child] = k
        s[S_VTOP] = off + k
        s[S_DEPTH] = child + 1
    return R_EXHAUSTED


@_njit_uncounted
def _unwind(
    dom: Any,
    act: Any,
    tile_of: Any,
    free: Any,
    active: Any,
    s: Any,
    f: Any,
    tr_u: Any,
    tr_a: Any,
    tr_w: Any,
    tr_t: Any,
    lv_dtr: Any,
    lv_ttr: Any,
    lv_free: Any,
    lv_cost: Any,
    lv_placed: Any,
    lv_aoff: Any,
    lv_alen: Any,
    abuf: Any,
) -> None:
    """Back to the root state (the end of a run)."""
    if s[S_DEPTH] > 1:
        _undo(
            1, dom, act, tile_of, free, active, s, f, tr_u, tr_a, tr_w, tr_t,
            lv_dtr, lv_ttr, lv_free, lv_cost, lv_placed, lv_aoff, lv_alen, abuf,
        )  # fmt: skip
    s[S_DEPTH] = 0
    s[S_VTOP] = 0
