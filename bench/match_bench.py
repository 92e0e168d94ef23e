"""Placement matcher against networkx VF2, rustworkx VF2 (both orderings) and igraph LAD.

Run: ``pip install -e '.[dev,bench]'`` then ``python bench/match_bench.py`` (``--quick`` for a
smoke run, ``--sizes``/``--kinds``/``--cap-ms`` to change the grid, ``--json FILE`` to keep raw
rows). Instances are planted DNN-like tile graphs (isosched.match.planted_instance) on a mesh
sized so the pattern covers about 60 % of the free tiles; seeds differ from the ones the
matcher's prior was tuned on. Every engine gets the same wall-time cap per instance: ours
honours it itself; each peer runs in a child process (forked from a fork server, never from the
bench's process) that is killed at the cap (igraph >= 1.0 has no time limit of its own for
LAD). Times exclude building the peer's graph objects and include all of our setup.

Printed per (size, kind, h, blocked): success rate per engine, median time of each engine on
the instances it solved, the ratio of our median time to each peer's on the instances both
solved (below 1 = we are faster), and the memory of our candidate structure against a dense
pattern × target matrix of one byte per entry. A peer that raised, died or answered "no" on a
planted instance is not a miss: its cell says so and a footnote gives the exception, and the
last line of the output counts such runs.

``--online`` runs the online regime instead (issue 17): tile graphs cut from real plans
(``isosched plan MODEL --hw HW --json``, segments of resnet50, mobilenetv2, googlenet, yolov3,
bert_base and gpt2 on edge-8x8 and datacenter-16x16; ``--plans-dir`` keeps the plan documents)
placed on chips where random jobs hold rectangles and irregular areas, so that the free tiles
are 1.2-2x the pattern. Each instance is labelled feasible or infeasible by a complete search
with a long budget (the ``cp`` engine, then ``repair`` and ``mcts``, ``--label-ms`` each; a peer
that finds a placement on an instance labelled infeasible is reported as a contradiction). Ours
is the run-time placer (the plan's own placement translated and mirrored first, then the online
match with ``cp+repair``, whose first repair turn starts from the image on the most free tiles),
also with ``cp`` alone (``ours_cp``, the placer's engine before),
with the portfolio (``cp`` on a quarter of the budget, then ``mcts``) and with ``mcts`` alone
(``ours_portfolio``, ``ours_mcts``); the peers answer the same question on the free tiles.
Reported per chip: feasible instances placed and infeasible ones proved impossible, within 10 ms
and within the cap, with p50/p95 times.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import networkx as nx

from isosched.match import TileMatcher, mesh_target, placement_errors, planted_instance
from isosched.match.bitmesh import mask_of
from isosched.match.matcher import MatchResult
from isosched.match.placer import (
    HYBRID,
    ONLINE_ENGINE,
    PORTFOLIO,
    Library,
    PlacerAnswer,
    library_images,
    place,
)
from isosched.match.repair import warm as warm_repair
from isosched.match.target import ChipTarget
from isosched.tilegraph import TileGraph, TileVertex

Peer = Callable[[], bool]


def _target_edges(t: ChipTarget) -> list[tuple[int, int]]:
    return [(a, b) for a in range(t.size) for b in t.neighbours(a).tolist() if a < b]


@dataclass(frozen=True)
class PeerJob:
    """One peer's search on one instance, as plain data: the child that runs it builds the peer's
    graphs from it (it is pickled to a fork server, see :func:`run_capped`).

    ``nodes`` are the target's usable tiles, ``tedges`` the links among them, ``size`` the
    pattern's vertices and ``pedges`` its edges (self-loops dropped).
    """

    name: str
    nodes: tuple[int, ...]
    tedges: tuple[tuple[int, int], ...]
    size: int
    pedges: tuple[tuple[int, int], ...]

    def __call__(self) -> Peer:
        """Build the peer's graphs (untimed) and return its search (timed by the caller)."""
        if self.name == "networkx_vf2":
            g_t: nx.Graph[int] = nx.Graph()
            g_t.add_nodes_from(self.nodes)
            g_t.add_edges_from(self.tedges)
            g_p: nx.Graph[int] = nx.Graph()
            g_p.add_nodes_from(range(self.size))
            g_p.add_edges_from(self.pedges)
            # the matcher object is built within the clock, as it always was
            return lambda: bool(
                nx.algorithms.isomorphism.GraphMatcher(g_t, g_p).subgraph_is_monomorphic()
            )
        if self.name in ("rustworkx_vf2", "rustworkx_vf2_id_order"):
            import rustworkx as rx

            r_t = rx.PyGraph()
            idx = r_t.add_nodes_from(self.nodes)
            pos = dict(zip(self.nodes, idx, strict=True))
            r_t.add_edges_from_no_data([(pos[a], pos[b]) for a, b in self.tedges])
            r_p = rx.PyGraph()
            r_p.add_nodes_from(range(self.size))
            r_p.add_edges_from_no_data(list(self.pedges))
            id_order = self.name == "rustworkx_vf2_id_order"

            def run() -> bool:
                it = rx.vf2_mapping(r_t, r_p, subgraph=True, induced=False, id_order=id_order)
                return next(iter(it), None) is not None

            return run
        if self.name == "igraph_lad":
            import igraph as ig

            at = {a: i for i, a in enumerate(self.nodes)}
            i_t = ig.Graph(n=len(self.nodes), edges=[(at[a], at[b]) for a, b in self.tedges])
            i_p = ig.Graph(n=self.size, edges=list(self.pedges))
            # igraph 1.0 removed ``time_limit``; the child's cap bounds the call.
            return lambda: bool(i_t.subisomorphic_lad(i_p, induced=False))
        raise ValueError(f"unknown peer {self.name!r}")


def _peers(pattern: TileGraph, target: ChipTarget) -> dict[str, PeerJob]:
    """The installed peers' searches on one instance (each says whether a monomorphism exists)."""
    nodes = tuple(a for a in range(target.size) if target.allowed[a])
    tedges = tuple(_target_edges(target))
    pedges = tuple((s, d) for s, d, _ in pattern.edges if s != d)
    names = ["networkx_vf2"]
    try:
        import rustworkx  # noqa: F401

        names += ["rustworkx_vf2", "rustworkx_vf2_id_order"]
    except ImportError:
        print("rustworkx not installed (pip install -e '.[bench]'): skipped", file=sys.stderr)
    try:
        import igraph  # noqa: F401

        names.append("igraph_lad")
    except ImportError:
        print("igraph not installed (pip install -e '.[bench]'): skipped", file=sys.stderr)
    return {name: PeerJob(name, nodes, tedges, len(pattern), pedges) for name in names}


@dataclass(frozen=True)
class Outcome:
    """What one engine did on one instance.

    ``status`` is ``solved``, ``capped`` (still searching at the cap), ``no`` (answered that no
    monomorphism exists: wrong on a planted instance) or ``error`` (raised or died; ``error``
    says how). ``ms`` is the time to the answer, ``inf`` unless solved.
    """

    status: str
    ms: float = math.inf
    error: str = ""

    @property
    def solved(self) -> bool:
        return self.status == "solved"


def _child(make: Callable[[], Peer], conn: Any) -> None:
    try:
        fn = make()
    except Exception as exc:  # a peer's own failure is a result, not a crash of the bench
        conn.send(("error", f"{type(exc).__name__}: {exc}", 0.0))
        return
    conn.send(("ready", None, 0.0))
    t0 = time.perf_counter()
    try:
        ok = fn()
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}", 0.0))
        return
    conn.send(("ok", ok, (time.perf_counter() - t0) * 1e3))


#: Modules the fork server imports once, so that each peer's child starts without importing them.
PEER_PRELOAD = ("numpy", "networkx", "rustworkx", "igraph", "isosched.match")
#: Seconds a peer's child may take to start and build its graphs before its clock starts.
PEER_READY_S = 120.0


@functools.cache
def _peer_context() -> Any:
    """Processes forked from a fork server, not from this process (started at the first use).

    A fork of this process would leave every page of its heap shared copy-on-write with the
    child: the next timed search of ours, here, would pay a page fault at the first write to
    each page it touches (600-950 faults, 1-2 ms a placement on this machine,
    docs/performance.md). The peers' children come from a small server process instead, and
    this process is never forked.
    """
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(list(PEER_PRELOAD))
    return ctx


def run_capped(make: Callable[[], Peer], cap_s: float) -> Outcome:
    """Run a peer in a child process killed at the cap.

    ``make`` (picklable: a :class:`PeerJob`) builds the peer's search in the child, untimed; the
    search is timed there and killed ``cap_s`` (plus half a second of slack) after it starts.
    """
    ctx = _peer_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(make, child))
    out = Outcome("capped")
    try:
        proc.start()
        child.close()
        for phase, wait in enumerate((PEER_READY_S, cap_s + 0.5)):
            if not parent.poll(wait):
                if phase == 0:
                    out = Outcome("error", error=f"child not ready within {PEER_READY_S:.0f} s")
                break
            status, value, elapsed = parent.recv()
            if status == "ready":
                continue
            if status == "error":
                out = Outcome("error", error=str(value))
            elif elapsed > cap_s * 1e3:
                out = Outcome("capped")
            elif value:
                out = Outcome("solved", elapsed)
            else:
                out = Outcome("no", elapsed)
            break
    except EOFError:  # the child died without a word (a crash in native code, OOM)
        proc.join()
        out = Outcome("error", error=f"child exited with code {proc.exitcode}")
    finally:  # whatever happened here (Ctrl-C, a job that does not pickle), no child outlives it
        if proc.pid is not None:
            proc.kill()
            proc.join()
        parent.close()
        child.close()
    return out


def _cell(got: list[Outcome], notes: dict[str, int]) -> str:
    """``solved/instances, median ms`` plus the errors and wrong answers, with footnotes."""
    ok = [o.ms for o in got if o.solved]
    cell = f"{len(ok)}/{len(got)}, " + (f"{statistics.median(ok):.1f} ms" if ok else "—")
    for status, label in (("error", "error"), ("no", "answered no")):
        bad = [o for o in got if o.status == status]
        if bad:
            texts = dict.fromkeys(
                o.error or "answered that no placement exists on a planted instance" for o in bad
            )
            marks = ",".join(str(notes.setdefault(t, len(notes) + 1)) for t in texts)
            cell += f"; {label} ×{len(bad)} [{marks}]"
    return cell


def _match_planted(
    target: ChipTarget, pattern: TileGraph, engine: str, cap_ms: float, seed: int
) -> MatchResult:
    """Our engine on a planted instance: an engine of the matcher, or the placer's portfolio or
    hybrid."""
    if engine not in (PORTFOLIO, HYBRID):
        return TileMatcher(target, pattern).match(engine=engine, budget_ms=cap_ms, seed=seed)
    t0 = time.perf_counter()
    free = mask_of(target.allowed)
    ans = place(
        pattern,
        target.hops,
        free,
        target.width,
        target.height,
        node_budget=None,
        budget_ms=cap_ms,
        seed=seed,
        engine=engine,
        cost_aware=False,
    )
    assert ans.match is not None
    res = ans.match
    return replace(res, elapsed_ms=(time.perf_counter() - t0) * 1e3)


def _warm_up() -> None:
    """Load the compiled matcher cores (numba's cache, or a first compile) before any clock."""
    target = mesh_target(4, 4, 2)
    pattern = TileGraph.from_edges(["a", "b", "c"], [("a", "b"), ("b", "c")])
    for seed in (0, 1):
        TileMatcher(target, pattern).match(engine="cp", budget_ms=60_000, seed=seed)
    warm_repair()


def side_for(n: int, blocked: float, density: float = 0.6) -> int:
    """Mesh side so that the pattern covers ``density`` of the free tiles."""
    return max(4, math.ceil(math.sqrt(n / (density * (1 - blocked)))))


# ---- online regime (issue 17) ---------------------------------------------------------------

ONLINE_MODELS = ("resnet50", "mobilenetv2", "googlenet", "yolov3", "bert_base", "gpt2")
ONLINE_CHIPS = {"edge-8x8": (8, 8), "datacenter-16x16": (16, 16)}
#: The online instances of every chip come from one random stream, in the order of the chip list:
#: a list of one chip draws other instances than that chip's share of the benchmark's draws.
CHIPS_HELP = (
    "online chips, comma-separated; the instances depend on the whole list (one random stream): "
    "a single chip gives other instances than the default list's"
)


@dataclass(frozen=True)
class OnlineInstance:
    """A pattern cut from a plan segment, and a partly occupied chip to place it on."""

    name: str
    hw: str
    pattern: TileGraph
    base: list[tuple[int, int]]  # the plan's own placement of the cut, vertex order
    hops: int
    width: int
    height: int
    free: int  # bit set of free tiles; every other tile is held by another job


def _plan_doc(model: str, hw: str, plans_dir: str) -> dict[str, Any]:
    """The plan document of ``isosched plan MODEL --hw HW --json`` (made once, then read)."""
    import os
    import subprocess

    os.makedirs(plans_dir, exist_ok=True)
    path = os.path.join(plans_dir, f"{model}.{hw}.json")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        print(f"planning {model} on {hw} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "isosched", "plan", model, "--hw", hw, "--json"]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        with open(path, "w") as fh:
            fh.write(out)
    with open(path) as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def _cut(seg: dict[str, Any], k: int, rng: Any) -> tuple[TileGraph, list[tuple[int, int]]] | None:
    """A connected piece of ``k`` vertices of a segment's tile graph, grown from a random vertex."""
    tg = seg["tile_graph"]
    ids = [v["id"] for v in tg["vertices"]]
    adj: dict[str, set[str]] = {v: set() for v in ids}
    for e in tg["edges"]:
        adj[e["src"]].add(e["dst"])
        adj[e["dst"]].add(e["src"])
    start = rng.choice(ids)
    inside = {start}
    front = [start]
    while front and len(inside) < k:
        v = front.pop(0)
        for u in sorted(adj[v]):
            if u not in inside and len(inside) < k:
                inside.add(u)
                front.append(u)
    if len(inside) < k:
        return None
    keep = [v for v in ids if v in inside]  # plan order (topological)
    index = {v: i for i, v in enumerate(keep)}
    edges = tuple(
        (index[e["src"]], index[e["dst"]], int(e.get("bytes", 0)))
        for e in tg["edges"]
        if e["src"] in index and e["dst"] in index and e["src"] != e["dst"]
    )
    pattern = TileGraph(tuple(TileVertex(v) for v in keep), edges)
    base = [(int(seg["placement"][v][0]), int(seg["placement"][v][1])) for v in keep]
    return pattern, base


def _occupy(width: int, height: int, free_target: int, rng: Any) -> int:
    """Free tiles left after random jobs take rectangles and irregular areas."""
    free = set(range(width * height))
    while len(free) > free_target:
        if rng.random() < 0.5:
            w, h = rng.randint(1, max(1, width // 2)), rng.randint(1, max(1, height // 2))
            x0, y0 = rng.randint(0, width - w), rng.randint(0, height - h)
            shape = [(y * width + x) for y in range(y0, y0 + h) for x in range(x0, x0 + w)]
        else:  # an irregular area: a random walk over free tiles
            t = rng.choice(sorted(free))
            shape = [t]
            for _ in range(rng.randint(2, width)):
                x, y = t % width, t // width
                steps = [
                    (x + dx) + (y + dy) * width
                    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
                    if 0 <= x + dx < width and 0 <= y + dy < height
                ]
                t = rng.choice(steps)
                shape.append(t)
        for t in shape:
            if len(free) <= free_target:
                break
            free.discard(t)
    m = 0
    for t in free:
        m |= 1 << t
    return m


def online_instances(
    plans_dir: str, chips: list[str], per_segment: int, seed: int
) -> list[OnlineInstance]:
    """Cuts of every plan segment of the six models on each chip, on partly occupied chips."""
    import random

    rng = random.Random(seed)
    out = []
    for hw in chips:
        width, height = ONLINE_CHIPS[hw]
        tiles = width * height
        for model in ONLINE_MODELS:
            doc = _plan_doc(model, hw, plans_dir)
            for seg in doc["segments"]:
                n = len(seg["tile_graph"]["vertices"])
                hops = min(6, max(2, int(seg.get("hops", doc["hops"]))))
                if not seg["tile_graph"]["edges"]:
                    continue
                for j in range(per_segment):
                    ratio = rng.uniform(1.2, 2.0)
                    top = min(n, int(tiles / ratio), 256)
                    if top < 16:
                        continue
                    k = rng.randint(16, top)
                    cut = _cut(seg, k, rng)
                    if cut is None:
                        continue
                    pattern, base = cut
                    free = _occupy(width, height, round(ratio * k), rng)
                    name = f"{model}/{hw}/s{seg['index']}#{j}"
                    out.append(OnlineInstance(name, hw, pattern, base, hops, width, height, free))
    return out


def _free_target(inst: OnlineInstance) -> ChipTarget:
    blocked = [
        (t % inst.width, t // inst.width)
        for t in range(inst.width * inst.height)
        if not inst.free >> t & 1
    ]
    return mesh_target(inst.width, inst.height, inst.hops, blocked)


def place_online(inst: OnlineInstance, lib: Library, **budget: Any) -> PlacerAnswer:
    """The run-time placer on ``inst`` with the plan's library ``lib`` (``budget``: the placer's
    ``node_budget``/``budget_ms``/``engine``/``seed`` keywords)."""
    return place(
        inst.pattern,
        inst.hops,
        inst.free,
        inst.width,
        inst.height,
        library=lib,
        cost_aware=False,
        **budget,
    )


def _ours(inst: OnlineInstance, cap_ms: float, engine: str = ONLINE_ENGINE) -> Outcome:
    """The run-time placer: library images of the plan's placement, then an online match."""
    # The simulator's plan book keeps each plan's library: built before the clock starts.
    lib = library_images(inst.base, inst.width, inst.height)
    t0 = time.perf_counter()
    ans = place_online(inst, lib, node_budget=None, budget_ms=cap_ms, engine=engine)
    ms = (time.perf_counter() - t0) * 1e3
    if ans.found:
        w = inst.width
        coords = {v: (t % w, t // w) for v, t in zip(inst.pattern.ids, ans.tiles, strict=True)}
        errs = placement_errors(inst.pattern, _free_target(inst), coords)
        assert not errs, errs
        return Outcome("solved", ms)
    if ans.reason == "impossible":
        return Outcome("no", ms)
    return Outcome("capped")


def _rate(got: list[Outcome], status: str, within_ms: float) -> tuple[int, list[float]]:
    ms = [o.ms for o in got if o.status == status and o.ms <= within_ms]
    return len(ms), ms


def _pct(xs: list[float], q: float) -> str:
    if not xs:
        return "—"
    ys = sorted(xs)
    return f"{ys[max(0, math.ceil(q * len(ys)) - 1)]:.1f}"


def run_online(args: argparse.Namespace) -> None:
    """The online regime: success and proof rates within 10 ms and within the cap."""
    insts = online_instances(args.plans_dir, args.chips.split(","), args.per_segment, args.seed)
    cap_s = args.cap_ms / 1e3
    engines = [
        "ours",
        "ours_10ms",
        "ours_cp",
        "ours_portfolio",
        "ours_mcts",
        "ours_cp_py",
        "rustworkx_vf2",
        "rustworkx_vf2_id_order",
        "networkx_vf2",
    ]
    rows = []
    contradictions = []
    for inst in insts:
        target = _free_target(inst)
        # The previous instance's labels and peers ran meanwhile (the peers in other processes,
        # see run_capped): a tiny unrelated search brings the matcher back into the caches.
        _warm_up()
        got: dict[str, Outcome] = {
            "ours": _ours(inst, args.cap_ms),
            "ours_10ms": _ours(inst, 10.0),
            # the placer with cp alone (its online engine before the hybrid)
            "ours_cp": _ours(inst, args.cap_ms, engine="cp"),
            "ours_portfolio": _ours(inst, args.cap_ms, engine=PORTFOLIO),
            "ours_mcts": _ours(inst, args.cap_ms, engine="mcts"),
            # the pure-Python reference of cp (the same answers, slower: the compiled core's gain)
            "ours_cp_py": _ours(inst, args.cap_ms, engine="cp-py"),
        }
        # Labels: a complete search with a long budget proves infeasibility; any engine's
        # verified placement (ours are checked, a peer's mapping is an embedding) shows
        # feasibility, and the MCTS engine gets the long budget too before "unknown".
        label = "unknown"
        for engine in ("cp", "repair", "mcts"):
            r = TileMatcher(target, inst.pattern).match(
                engine=engine, budget_ms=args.label_ms, seed=0
            )
            if r.found or r.reason == "impossible":
                label = "feasible" if r.found else "infeasible"
                break
        peers = _peers(inst.pattern, target)
        for name in engines:
            if name in peers:
                got[name] = run_capped(peers[name], cap_s)
        if label == "unknown" and any(o.status == "solved" for o in got.values()):
            label = "feasible"
        for name, o in got.items():
            if label == "infeasible" and o.status == "solved":
                contradictions.append(f"{inst.name}: {name} placed an instance labelled infeasible")
            if label == "feasible" and o.status == "no":
                contradictions.append(f"{inst.name}: {name} answered no on a feasible instance")
        rows.append((inst, label, got))
        print(
            f"{inst.name} n={len(inst.pattern)} h={inst.hops} free={inst.free.bit_count()} "
            f"{label}: "
            + " ".join(
                f"{k}={f'{o.ms:.1f}ms' if o.status in ('solved', 'no') else o.status}"
                + ("(no)" if o.status == "no" else "")
                for k, o in got.items()
            ),
            file=sys.stderr,
            flush=True,
        )
    print(
        f"\nonline regime: cap {args.cap_ms:.0f} ms per engine and instance, label budget "
        f"{args.label_ms:.0f} ms, {args.per_segment} cut(s) per plan segment, seed {args.seed}"
    )
    for hw in args.chips.split(","):
        mine = [r for r in rows if r[0].hw == hw]
        feas = [r for r in mine if r[1] == "feasible"]
        infe = [r for r in mine if r[1] == "infeasible"]
        unk = len(mine) - len(feas) - len(infe)
        sizes = [len(r[0].pattern) for r in mine]
        print(
            f"\n{hw}: {len(mine)} instances ({min(sizes)}-{max(sizes)} vertices): "
            f"{len(feas)} feasible, {len(infe)} infeasible, {unk} unlabelled"
        )
        print(
            "| engine | feasible placed ≤ 10 ms | placed ≤ cap | p50 / p95 ms (placed) "
            "| infeasible proved ≤ 10 ms | proved ≤ cap | p50 / p95 ms (proved) |"
        )
        print("|---|---|---|---|---|---|---|")
        for e in engines:
            f_got = [r[2][e] for r in feas if e in r[2]]
            i_got = [r[2][e] for r in infe if e in r[2]]
            if not f_got and not i_got:
                continue
            f10, _ = _rate(f_got, "solved", 10.0)
            fcap, fms = _rate(f_got, "solved", math.inf)
            i10, _ = _rate(i_got, "no", 10.0)
            icap, ims = _rate(i_got, "no", math.inf)
            print(
                f"| {e} | {f10}/{len(f_got)} | {fcap}/{len(f_got)} | {_pct(fms, 0.5)} / "
                f"{_pct(fms, 0.95)} | {i10}/{len(i_got)} | {icap}/{len(i_got)} | "
                f"{_pct(ims, 0.5)} / {_pct(ims, 0.95)} |"
            )
        # Ratios of our median time against each peer's on the instances both answered.
        parts = []
        for e in engines[1:]:
            both = [
                (r[2]["ours"].ms, r[2][e].ms)
                for r in mine
                if e in r[2]
                and r[2]["ours"].status in ("solved", "no")
                and r[2][e].status in ("solved", "no")
            ]
            if both:
                ours_ms = statistics.median(a for a, _ in both)
                peer_ms = statistics.median(b for _, b in both)
                parts.append(f"{ours_ms / peer_ms:.2f}× vs {e} ({len(both)} both answered)")
        print("\nours / peer, median time on instances both answered: " + "; ".join(parts))
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
    print(f"\nversions: {versions}")
    if contradictions:
        print("CONTRADICTIONS:\n" + "\n".join(contradictions))
    else:
        print("no contradictions with the labels")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(
                [
                    {
                        "name": i.name,
                        "n": len(i.pattern),
                        "hops": i.hops,
                        "free": i.free.bit_count(),
                        "label": lab,
                        "engines": {k: asdict(o) for k, o in g.items()},
                    }
                    for i, lab, g in rows
                ],
                fh,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="50,200,500,1000")
    ap.add_argument("--kinds", default="chain,multibranch,transformer")
    ap.add_argument("--hops", default="2")
    ap.add_argument("--blocked", default="0.1")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--cap-ms", type=float, default=1000.0)
    ap.add_argument("--peer-max-size", type=int, default=1000, help="skip peers above this size")
    ap.add_argument("--quick", action="store_true", help="tiny grid, for CI smoke runs")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--online", action="store_true", help="the online regime (issue 17)")
    ap.add_argument(
        "--engine",
        default=ONLINE_ENGINE,
        help="ours on planted instances: cp+repair (default: the placer's online engine), cp, "
        "portfolio, mcts",
    )
    ap.add_argument("--chips", default="edge-8x8,datacenter-16x16", help=CHIPS_HELP)
    ap.add_argument("--plans-dir", default="/tmp/isosched-bench-plans")
    ap.add_argument("--per-segment", type=int, default=3, help="cuts per plan segment")
    ap.add_argument("--label-ms", type=float, default=5000.0)
    ap.add_argument("--seed", type=int, default=17)
    args = ap.parse_args()
    _warm_up()
    if args.online:
        if args.quick:
            args.chips, args.per_segment, args.cap_ms = "edge-8x8", 1, 100.0
        run_online(args)
        return
    if args.quick:
        args.sizes, args.kinds, args.seeds, args.cap_ms = "50", "chain", 1, 300.0
    cap_s = args.cap_ms / 1e3
    rows: list[dict[str, Any]] = []
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for n in [int(x) for x in args.sizes.split(",")]:
        for kind in args.kinds.split(","):
            for hops in [int(x) for x in args.hops.split(",")]:
                for blocked in [float(x) for x in args.blocked.split(",")]:
                    side = side_for(n, blocked)
                    for seed in range(1000, 1000 + args.seeds):
                        inst = planted_instance(side, side, n, hops, blocked, kind, seed)
                        target = mesh_target(side, side, hops, inst.blocked)
                        res = _match_planted(target, inst.pattern, args.engine, args.cap_ms, seed)
                        if res.found:
                            assert not placement_errors(inst.pattern, target, res.placement)
                        ours = Outcome("solved", res.elapsed_ms) if res.found else Outcome("capped")
                        row: dict[str, Any] = {
                            "n": n,
                            "kind": kind,
                            "hops": hops,
                            "blocked": blocked,
                            "side": side,
                            "seed": seed,
                            "edges": len(inst.pattern.edges),
                            "dense_bytes": n * target.size,
                            "ours_bytes": res.stats.get(
                                "csr_matrix_bytes",
                                int(target.indptr.nbytes + target.indices.nbytes),
                            ),
                            "engines": {"ours": ours},
                        }
                        if n <= args.peer_max_size:
                            for name, fn in _peers(inst.pattern, target).items():
                                row["engines"][name] = run_capped(fn, cap_s)
                        rows.append(row)
                        groups[(n, kind, hops, blocked, side)].append(row)
                        print(
                            f"n={n} {kind} h={hops} b={blocked} seed={seed}: "
                            + " ".join(
                                f"{k}={f'{o.ms:.0f}ms' if o.solved else o.status}"
                                for k, o in row["engines"].items()
                            ),
                            file=sys.stderr,
                            flush=True,
                        )
    engines = ["ours", "networkx_vf2", "rustworkx_vf2", "rustworkx_vf2_id_order", "igraph_lad"]
    print(f"\ncap {args.cap_ms:.0f} ms per engine and instance; seeds {args.seeds}")
    print(
        "| n | kind | h | blocked | mesh | "
        + " | ".join(engines)
        + " | ours/best peer (both solved) | ours vs dense memory |"
    )
    print("|" + "---|" * (len(engines) + 7))
    notes: dict[str, int] = {}
    for (n, kind, hops, blocked, side), rs in groups.items():
        cells = []
        for e in engines:
            got = [r["engines"][e] for r in rs if e in r["engines"]]
            cells.append(_cell(got, notes) if got else "—")
        ratios = []
        for e in engines[1:]:
            both = [
                r["engines"]
                for r in rs
                if e in r["engines"] and r["engines"]["ours"].solved and r["engines"][e].solved
            ]
            if both:
                ours_ms = statistics.median(g["ours"].ms for g in both)
                peer_ms = statistics.median(g[e].ms for g in both)
                ratios.append((peer_ms, ours_ms / peer_ms if peer_ms > 0 else math.inf, e))
        best = min(ratios) if ratios else None
        ratio = f"{best[1]:.2f}× vs {best[2]}" if best else "no common solve"
        mem = statistics.median(r["ours_bytes"] / r["dense_bytes"] for r in rs)
        print(
            f"| {n} | {kind} | {hops} | {blocked:.0%} | {side}×{side} | "
            + " | ".join(cells)
            + f" | {ratio} | {mem:.2f}× |"
        )
    if notes:
        print()
        for text, mark in notes.items():
            print(f"[{mark}] {text}")
    versions = ", ".join(f"{k} {v}" for k, v in _versions().items())
    print(f"\nversions: {versions}")
    failed = sorted(
        {name for r in rows for name, o in r["engines"].items() if o.status in ("error", "no")}
    )
    n_failed = sum(o.status in ("error", "no") for r in rows for o in r["engines"].values())
    if args.json_out:
        for r in rows:
            r["engines"] = {k: asdict(o) for k, o in r["engines"].items()}
        with open(args.json_out, "w") as fh:
            json.dump(rows, fh)
    if failed:
        print(
            f"PEER ERRORS: {n_failed} runs of {', '.join(failed)} raised, died or answered "
            "wrongly (counted apart from misses, see the footnotes)"
        )
    else:
        print("no peer errors")


def _versions() -> dict[str, str]:
    """Versions of the peers that were measured."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("networkx", "rustworkx", "igraph"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


if __name__ == "__main__":
    main()
