"""The online placer in node counts: answers within each node budget (deterministic, no timing).

Run: ``python -m bench.match_nodes --plans-dir DIR`` from the repository root (the plans are the
documents ``bench/match_bench.py --online`` keeps in its ``--plans-dir``; missing ones are
planned). ``--seeds`` are the instance seeds of ``match_bench.online_instances`` (default 17 and
18), ``--matcher-seeds`` the placer's seeds (default 0, the simulator's); ``--labels``
(``SEED=FILE`` pairs, comma-separated: the ``--json`` output of ``match_bench --online --seed
SEED``) counts the labelled feasible and infeasible instances instead of every answer;
``--json FILE`` keeps one row per instance and matcher seed.

Each instance is placed as the simulator places it (the plan's library first, then the online
engine, ``--engine``: the placer's ``cp+repair`` by default, or ``cp`` alone, with ``node_budget``
= the largest budget), once; since the search depends only on its inputs and the node budget (the
hybrid's turns are sized independently of the budget, which only cuts the last one short), an
answer within ``b`` nodes of that run is the answer of a run with budget ``b``.
Printed per chip and instance seed: instances placed and proved impossible within each budget,
summed over the matcher seeds. The same numbers on any machine, under any load.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.match_bench import CHIPS_HELP, ONLINE_CHIPS, online_instances, place_online
from isosched.match.placer import ONLINE_ENGINE, library_images

BUDGETS = (500, 1_000, 3_000, 10_000, 30_000)


def _labels(pairs: str) -> dict[str, str]:
    """``seed:name -> label`` from ``SEED=FILE`` pairs (``match_bench --online --json`` files)."""
    out: dict[str, str] = {}
    for pair in pairs.split(","):
        seed, path = pair.split("=", 1)
        with open(path) as fh:
            for r in json.load(fh):
                out[f"{int(seed)}:{r['name']}"] = r["label"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--plans-dir", default="/tmp/isosched-bench-plans")
    ap.add_argument("--chips", default=",".join(ONLINE_CHIPS), help=CHIPS_HELP)
    ap.add_argument("--seeds", default="17,18", help="instance seeds")
    ap.add_argument("--matcher-seeds", default="0")
    ap.add_argument("--per-segment", type=int, default=3)
    ap.add_argument("--labels", default=None, help="SEED=FILE,... (match_bench --json files)")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--engine", default=ONLINE_ENGINE, help="cp+repair (default) or cp")
    args = ap.parse_args()
    top = max(BUDGETS)
    labels = _labels(args.labels) if args.labels else None
    chips = args.chips.split(",")
    rows: list[dict[str, Any]] = []
    for seed in [int(x) for x in args.seeds.split(",")]:
        insts = online_instances(args.plans_dir, chips, args.per_segment, seed)
        for inst in insts:
            lib = library_images(inst.base, inst.width, inst.height)
            for mseed in [int(x) for x in args.matcher_seeds.split(",")]:
                ans = place_online(inst, lib, node_budget=top, seed=mseed, engine=args.engine)
                rows.append(
                    {
                        "seed": seed,
                        "matcher_seed": mseed,
                        "name": inst.name,
                        "hw": inst.hw,
                        "n": len(inst.pattern),
                        "hops": inst.hops,
                        "reason": ans.reason,
                        "source": ans.source,
                        "nodes": ans.nodes,
                    }
                )
    head = " | ".join(f"≤ {b:,}" for b in BUDGETS)
    print(f"| chip, seed | answers | {head} |")
    print("|---|---|" + "---|" * len(BUDGETS))
    for seed in sorted({r["seed"] for r in rows}):
        for hw in chips:
            mine = [r for r in rows if r["seed"] == seed and r["hw"] == hw]
            for what, reason in (("placed", "found"), ("proved", "impossible")):
                pool = mine
                if labels is not None:
                    want = "feasible" if reason == "found" else "infeasible"
                    pool = [r for r in mine if labels.get(f"{seed}:{r['name']}") == want]
                cells = [
                    sum(1 for r in pool if r["reason"] == reason and r["nodes"] <= b)
                    for b in BUDGETS
                ]
                print(
                    f"| {hw}, seed {seed} | {what} (of {len(pool)}) | "
                    + " | ".join(str(c) for c in cells)
                    + " |"
                )
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump(rows, fh)


if __name__ == "__main__":
    main()
