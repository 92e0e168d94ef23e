"""``isosched match``: place a tile graph on a mesh."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from isosched.cli.app import app, emit_json
from isosched.cli.progress import Progress

#: Printed when loading the compiled search kernels takes more than :data:`LOADING_NOTICE_S`.
LOADING_NOTICE = (
    "loading the compiled search kernels (the first run in a new checkout compiles them: "
    "about 30 s)\n"
)
#: Seconds of loading before :data:`LOADING_NOTICE` (a cached load takes 1-2 s).
LOADING_NOTICE_S = 5.0


class SearchWatch:
    """The online search's cancel hook on the command line.

    True once Ctrl-C was pressed (a second one stops at once). On the way it reports, once a
    second after the first, how much of the wall budget is spent; that is progress only, and no
    answer depends on it.

    Parameters
    ----------
    budget_ms : float
        The search's wall budget, ms.
    progress : callable
        Receives the one-line progress messages.
    """

    def __init__(self, budget_ms: float, progress: Callable[[str], None]) -> None:
        self.budget_ms = budget_ms
        self.progress = progress
        self.cancelled = False
        self._t0 = time.monotonic()
        self._next = self._t0 + 1.0

    def __call__(self) -> bool:
        """Whether to stop now (polled by the search)."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + 1.0
            spent = min((now - self._t0) * 1e3, self.budget_ms)
            self.progress(
                f"searching: {spent:.0f}/{self.budget_ms:.0f} ms of the budget "
                "(Ctrl-C stops with the answer so far)"
            )
        return self.cancelled

    def interrupt(self, signum: int, frame: object) -> None:
        """SIGINT handler: the first asks the search to stop, the second stops at once."""
        if self.cancelled:
            raise KeyboardInterrupt
        self.cancelled = True

    @contextmanager
    def on_sigint(self) -> Iterator[None]:
        """Route Ctrl-C to :meth:`interrupt` inside the block (main thread only)."""
        try:
            old = signal.signal(signal.SIGINT, self.interrupt)
        except ValueError:  # not the main thread: no handler, the search runs to its budget
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, old)


@app.command("match")
def match(
    pattern: Annotated[Path, typer.Argument(help="Tile graph file (isosched.tilegraph/v1).")],
    mesh: Annotated[str, typer.Option("--mesh", help="Mesh size WxH, e.g. 8x8.")],
    hops: Annotated[int, typer.Option("--hops", help="Largest hop distance of an edge.")] = 2,
    blocked: Annotated[
        Path | None,
        typer.Option(
            "--blocked",
            help='File {"tiles": [[x, y], ...], "held": [{"job": J, "tiles": [...], "cost": C}]}: '
            "blocked tiles, and (optional) tiles of running jobs that may be taken at the job's "
            "cost.",
        ),
    ] = None,
    placement: Annotated[
        Path | None,
        typer.Option(
            "--placement",
            help="File {\"v0\": [x, y], ...}: the pattern's own placement (a plan segment's), "
            "tried first under every translation and symmetry (the placer's library).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="mcts, ullmann, cp (constraint propagation: proves 'no room'), cp-py (its "
            "pure-Python reference), repair (local search: finds, never proves), cp+repair (the "
            "placer's online engine: cp and repair in turns) or portfolio (cp, then mcts).",
        ),
    ] = "mcts",
    budget_ms: Annotated[float, typer.Option("--budget-ms", help="Time budget, ms.")] = 1000.0,
    max_nodes: Annotated[
        int | None,
        typer.Option("--max-nodes", min=0, help="Node budget: the same answer on every machine."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    cost_aware: Annotated[
        bool, typer.Option("--cost-aware", help="Search the whole budget for the cheapest.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every progress message on stderr.")
    ] = False,
) -> None:
    """Place PATTERN on a WxH mesh: tiles distinct, unblocked, every edge within HOPS hops.

    Held tiles (in the ``--blocked`` file) may be taken at their job's cost; with any, the
    search looks for the cheapest placement within the budget. Exits 0 when a placement was
    found, 1 when not (reason ``impossible``, ``budget`` or ``cancelled``; the JSON document is
    printed all the same), 2 on bad input. A search longer than a second reports how much of its
    budget it has spent; Ctrl-C stops it as ``cancelled``, with its best partial answer.
    """
    from isosched.io.match_json import parse_mesh, read_occupancy, read_placement, read_tilegraph
    from isosched.match import MatchInputError, mesh_target
    from isosched.match.placer import (
        PLACER_ENGINES,
        labelled_target,
        labelled_tiles,
        library_of,
        place,
        warm,
    )
    from isosched.match.target import check_budgets

    if engine not in PLACER_ENGINES:
        choices = ", ".join(PLACER_ENGINES)
        raise MatchInputError(f"unknown engine {engine!r}; choose one of {choices}")
    check_budgets(budget_ms, max_nodes, ("--budget-ms", "--max-nodes"))
    w, h = parse_mesh(mesh)
    tg = read_tilegraph(pattern)
    mesh_target(w, h, hops)  # validates the mesh and the hops
    blocked_tiles, held = read_occupancy(blocked) if blocked else ([], {})
    free, victims = labelled_tiles(w, h, blocked_tiles, held)
    library = library_of(tg, read_placement(placement), hops, w, h) if placement else None
    sys.stderr.write(
        f"matching {len(tg)} vertices, {len(tg.edges)} edges on {w}x{h} at {hops} hops "
        f"({engine}, budget {budget_ms:g} ms"
        + (f", {len(victims)} held job(s) to take at a cost" if victims else "")
        + ")\n"
    )
    # Load the compiled search kernels before the watch's clock starts; say so when it takes a
    # while (a new checkout compiles them once).
    notice = threading.Timer(LOADING_NOTICE_S, sys.stderr.write, args=(LOADING_NOTICE,))
    notice.daemon = True
    notice.start()
    try:
        warm(engine)
    finally:
        notice.cancel()
    # The same placer the simulator uses: the library (when given), then an online match.
    progress = Progress(verbose=verbose)
    watch = SearchWatch(budget_ms, progress)
    with watch.on_sigint():
        answer = place(
            tg,
            hops,
            free,
            w,
            h,
            library=library,
            victims=victims or None,
            node_budget=max_nodes,
            seed=seed,
            engine=engine,
            budget_ms=budget_ms,
            cost_aware=cost_aware or None,  # None: the placer's rule, cost-aware with victims
            cancel=watch,
        )
    progress.close()
    doc = answer.to_doc(tg, labelled_target(w, h, hops, free, victims)[0])
    if as_json:
        emit_json(doc)
    else:
        state = "found" if doc["found"] else "not found"
        print(
            f"{state} by {doc['engine']} in {doc['elapsed_ms']:.1f} ms, {doc['nodes']} nodes: "
            f"{doc['reason']} ({doc['detail']})"
        )
        if answer.victims:
            print(f"  takes the tiles of {', '.join(answer.victims)} (cost {answer.cost:g})")
        for vid, (x, y) in doc["placement"].items():
            print(f"  {vid:<24} ({x}, {y})")
    if not doc["found"]:
        raise typer.Exit(1)
