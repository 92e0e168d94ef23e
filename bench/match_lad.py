"""The online benchmark's instances in LAD format, for a one-off comparison with another solver.

Run: ``python -m bench.match_lad --plans-dir DIR --out OUT`` from the repository root. For each
instance of ``match_bench.online_instances`` (``--seeds``, ``--chips``, ``--per-segment`` as
there), ``OUT/<seed>_<name>.pattern`` holds the cut and ``OUT/<seed>_<name>.target`` the h-hop
graph of the free tiles. The question is the placer's: a non-induced embedding (monomorphism)
of the pattern into the target. ``OUT/index.json`` lists every instance with its size, its
hops and, with ``--labels SEED=FILE,...`` (``match_bench --online --json`` files), its label.

LAD, as subgraph solvers read it (the Glasgow Subgraph Solver's ``--format lad``): the number of
vertices on the first line, then one line per vertex, its degree followed by its neighbours
(0-based; undirected, each edge at both ends). Target vertex ``i`` is the ``i``-th free tile in
row-major order.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from bench.match_bench import (
    CHIPS_HELP,
    ONLINE_CHIPS,
    OnlineInstance,
    _free_target,
    online_instances,
)
from bench.match_nodes import _labels

__all__ = ["lad_pattern", "lad_target", "main"]


def _lad(adj: list[list[int]]) -> str:
    lines = [str(len(adj))]
    lines += [" ".join(map(str, [len(row), *row])) for row in adj]
    return "\n".join(lines) + "\n"


def lad_pattern(inst: OnlineInstance) -> str:
    """The cut as a LAD graph (self loops and repeated edges dropped)."""
    adj: list[set[int]] = [set() for _ in range(len(inst.pattern))]
    for a, b, _ in inst.pattern.edges:
        if a != b:
            adj[a].add(b)
            adj[b].add(a)
    return _lad([sorted(row) for row in adj])


def lad_target(inst: OnlineInstance) -> tuple[str, list[int]]:
    """The free tiles linked within ``hops``, as a LAD graph, and the tile of each LAD vertex."""
    t = _free_target(inst)
    tiles = [i for i in range(t.size) if t.allowed[i]]
    index = {tile: k for k, tile in enumerate(tiles)}
    adj = [sorted(index[int(u)] for u in t.neighbours(tile).tolist()) for tile in tiles]
    return _lad(adj), tiles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--plans-dir", default="/tmp/isosched-bench-plans")
    ap.add_argument("--out", required=True, help="directory for the LAD files and index.json")
    ap.add_argument("--chips", default=",".join(ONLINE_CHIPS), help=CHIPS_HELP)
    ap.add_argument("--seeds", default="17,18", help="instance seeds")
    ap.add_argument("--per-segment", type=int, default=3)
    ap.add_argument("--labels", default=None, help="SEED=FILE,... (match_bench --json files)")
    args = ap.parse_args()
    labels = _labels(args.labels) if args.labels else {}
    os.makedirs(args.out, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for seed in [int(x) for x in args.seeds.split(",")]:
        for inst in online_instances(args.plans_dir, args.chips.split(","), args.per_segment, seed):
            tag = f"{seed}_{inst.name.replace('/', '_').replace('#', '_')}"
            target, tiles = lad_target(inst)
            with open(os.path.join(args.out, f"{tag}.pattern"), "w") as fh:
                fh.write(lad_pattern(inst))
            with open(os.path.join(args.out, f"{tag}.target"), "w") as fh:
                fh.write(target)
            rows.append(
                {
                    "tag": tag,
                    "seed": seed,
                    "name": inst.name,
                    "hw": inst.hw,
                    "n": len(inst.pattern),
                    "hops": inst.hops,
                    "free": len(tiles),
                    "label": labels.get(f"{seed}:{inst.name}", "unknown"),
                }
            )
    with open(os.path.join(args.out, "index.json"), "w") as fh:
        json.dump(rows, fh, indent=1)
    print(f"{len(rows)} instances in {args.out}")


if __name__ == "__main__":
    main()
