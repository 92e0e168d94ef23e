"""Placement matcher against networkx VF2, rustworkx VF2 (both orderings) and igraph LAD.

Run: ``pip install -e '.[dev,bench]'`` then ``python bench/match_bench.py`` (``--quick`` for a
smoke run, ``--sizes``/``--kinds``/``--cap-ms`` to change the grid, ``--json FILE`` to keep raw
rows). Instances are planted DNN-like tile graphs (isosched.match.planted_instance) on a mesh
sized so the pattern covers about 60 % of the free tiles; seeds differ from the ones the
matcher's prior was tuned on. Every engine gets the same wall-time cap per instance: ours
honours it itself; each peer runs in a forked child that is killed at the cap (igraph >= 1.0 has
no time limit of its own for LAD). Times exclude building the peer's graph objects and include
all of our setup.

Printed per (size, kind, h, blocked): success rate per engine, median time of each engine on
the instances it solved, the ratio of our median time to each peer's on the instances both
solved (below 1 = we are faster), and the memory of our candidate structure against a dense
pattern × target matrix of one byte per entry. A peer that raised, died or answered "no" on a
planted instance is not a miss: its cell says so and a footnote gives the exception, and the
last line of the output counts such runs.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx

from isosched.match import TileMatcher, mesh_target, placement_errors, planted_instance
from isosched.match.target import ChipTarget
from isosched.tilegraph import TileGraph

Peer = Callable[[], bool]


def _target_edges(t: ChipTarget) -> list[tuple[int, int]]:
    return [(a, b) for a in range(t.size) for b in t.neighbours(a).tolist() if a < b]


def _peers(pattern: TileGraph, target: ChipTarget) -> dict[str, Peer]:
    """Prepared peer calls: each returns whether a monomorphism was found."""
    nodes = [a for a in range(target.size) if target.allowed[a]]
    tedges = _target_edges(target)
    pedges = [(s, d) for s, d, _ in pattern.edges if s != d]
    peers: dict[str, Peer] = {}

    g_t: nx.Graph[int] = nx.Graph()
    g_t.add_nodes_from(nodes)
    g_t.add_edges_from(tedges)
    g_p: nx.Graph[int] = nx.Graph()
    g_p.add_nodes_from(range(len(pattern)))
    g_p.add_edges_from(pedges)

    def networkx_vf2() -> bool:
        return bool(nx.algorithms.isomorphism.GraphMatcher(g_t, g_p).subgraph_is_monomorphic())

    peers["networkx_vf2"] = networkx_vf2
    try:
        import rustworkx as rx

        r_t = rx.PyGraph()
        idx = r_t.add_nodes_from(nodes)
        pos = dict(zip(nodes, idx, strict=True))
        r_t.add_edges_from_no_data([(pos[a], pos[b]) for a, b in tedges])
        r_p = rx.PyGraph()
        r_p.add_nodes_from(range(len(pattern)))
        r_p.add_edges_from_no_data(pedges)

        def rx_vf2(id_order: bool) -> Peer:
            def run() -> bool:
                it = rx.vf2_mapping(r_t, r_p, subgraph=True, induced=False, id_order=id_order)
                return next(iter(it), None) is not None

            return run

        peers["rustworkx_vf2"] = rx_vf2(False)
        peers["rustworkx_vf2_id_order"] = rx_vf2(True)
    except ImportError:
        print("rustworkx not installed (pip install -e '.[bench]'): skipped", file=sys.stderr)
    try:
        import igraph as ig

        i_t = ig.Graph(n=len(nodes), edges=[(nodes.index(a), nodes.index(b)) for a, b in tedges])
        i_p = ig.Graph(n=len(pattern), edges=pedges)

        def igraph_lad() -> bool:
            # igraph 1.0 removed ``time_limit``; the forked child's cap bounds the call.
            return bool(i_t.subisomorphic_lad(i_p, induced=False))

        peers["igraph_lad"] = igraph_lad
    except ImportError:
        print("igraph not installed (pip install -e '.[bench]'): skipped", file=sys.stderr)
    return peers


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


def _child(fn: Peer, conn: Any) -> None:
    t0 = time.perf_counter()
    try:
        ok = fn()
    except Exception as exc:  # a peer's own failure is a result, not a crash of the bench
        conn.send(("error", f"{type(exc).__name__}: {exc}", 0.0))
        return
    conn.send(("ok", ok, (time.perf_counter() - t0) * 1e3))


def run_capped(fn: Peer, cap_s: float) -> Outcome:
    """Run ``fn`` in a forked child killed at the cap."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(fn, child))
    proc.start()
    child.close()
    out = Outcome("capped")
    if parent.poll(cap_s + 0.5):
        try:
            status, value, elapsed = parent.recv()
        except EOFError:  # the child died without a word (a crash in native code, OOM)
            proc.join()
            out = Outcome("error", error=f"child exited with code {proc.exitcode}")
        else:
            if status == "error":
                out = Outcome("error", error=str(value))
            elif elapsed > cap_s * 1e3:
                out = Outcome("capped")
            elif value:
                out = Outcome("solved", elapsed)
            else:
                out = Outcome("no")
    proc.kill()
    proc.join()
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


def side_for(n: int, blocked: float, density: float = 0.6) -> int:
    """Mesh side so that the pattern covers ``density`` of the free tiles."""
    return max(4, math.ceil(math.sqrt(n / (density * (1 - blocked)))))


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
    args = ap.parse_args()
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
                        res = TileMatcher(target, inst.pattern).match(
                            engine="mcts", budget_ms=args.cap_ms, seed=seed
                        )
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
