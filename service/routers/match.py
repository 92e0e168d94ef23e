"""``/v1/match``: place a tile graph on a partly occupied mesh, answered at once.

The same question as ``isosched match``, through the run-time placer's online match: some tiles
free, some held by running jobs that may be taken at a cost (``held``), the rest blocked. The
answer is 200 whether or not a placement exists: ``reason`` says which (``found``,
``impossible``, ``budget``, ``cancelled``), with the nodes the search took and, when not found,
its deepest partial placement; with held tiles, the cheapest placement found within the budget,
the jobs it takes (``victims``) and their cost (``preemption_cost``). The budget is small by
design (at most 2 s of wall time, and a node budget for an answer that is the same on every
machine), so the route answers within the request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from isosched.match import MatchInputError, mesh_target
from isosched.match.placer import labelled_target, labelled_tiles, library_of, place
from isosched.tilegraph import TileGraph
from service.openapi import errors

router = APIRouter(prefix="/v1/match", tags=["match"])

#: Largest mesh side the route accepts (the placer works on bit sets of W·H tiles).
MAX_SIDE = 64
#: Largest wall-time budget of one request, ms.
MAX_BUDGET_MS = 2000.0
#: Most held jobs in one request, and most tiles per held job: any request within these limits
#: (or just beyond them) stays far below the service's body limit (1 MiB by default), so a
#: request over a limit is answered 422 naming it, not 413.
MAX_HELD_JOBS = 64
MAX_HELD_TILES = 1024

Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]
Coord = Annotated[list[Annotated[int, Field(ge=0, lt=MAX_SIDE)]], Field(min_length=2, max_length=2)]


class HeldJob(BaseModel):
    """Tiles of a running job that the placement may take, at the job's cost."""

    model_config = ConfigDict(extra="forbid", strict=True)

    job: str = Field(min_length=1, max_length=200, description="The job's name.")
    tiles: list[Coord] = Field(min_length=1, max_length=MAX_HELD_TILES)
    cost: float = Field(
        ge=0,
        allow_inf_nan=False,
        description="Cost of stopping it (any unit): the search adds it for every tile of the "
        "job it takes; preemption_cost counts it once per job taken.",
    )


class MatchRequest(BaseModel):
    """Place ``pattern`` (an ``isosched.tilegraph/v1`` document) on a W×H mesh."""

    model_config = ConfigDict(extra="forbid", strict=True)

    pattern: dict[str, Any] = Field(description="An isosched.tilegraph/v1 document.")
    mesh: Annotated[list[Side], Field(min_length=2, max_length=2)] = Field(
        description="[W, H] in tiles."
    )
    hops: int = Field(default=2, ge=1, le=16, description="Largest hop distance of an edge.")
    blocked: list[Coord] = Field(
        default_factory=list, max_length=MAX_SIDE * MAX_SIDE, description="Tiles [x, y] not usable."
    )
    held: list[HeldJob] = Field(
        default_factory=list,
        max_length=MAX_HELD_JOBS,
        description="Running jobs whose tiles may be taken at their cost (each job once).",
    )
    placement: dict[str, Coord] | None = Field(
        default=None,
        description="The pattern's own placement (a plan segment's): tried first under every "
        "translation and symmetry (the placer's library).",
    )
    engine: Literal["cp+repair", "cp", "repair", "portfolio", "mcts", "ullmann"] = Field(
        default="cp+repair",
        description="cp+repair (the placer's online engine: cp, which proves when there is no "
        "room, and local repair in turns), cp, repair, portfolio, mcts, ullmann.",
    )
    budget_ms: float = Field(
        default=100.0, ge=0, le=MAX_BUDGET_MS, allow_inf_nan=False, description="Wall budget."
    )
    max_nodes: int | None = Field(
        default=None, ge=0, le=10_000_000, description="Node budget (deterministic answer)."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


@router.post("", responses={**errors(413, 422)})
async def match(req: MatchRequest) -> dict[str, Any]:
    """Place the pattern: the ``isosched match --json`` document, with its stop reason."""
    tg = TileGraph.from_doc(req.pattern)  # TileGraphError: 422 naming the problem
    w, h = req.mesh
    mesh_target(w, h, req.hops)  # MatchInputError: 422
    held: dict[str, tuple[list[list[int]], float]] = {}
    for job in req.held:
        if job.job in held:
            raise MatchInputError(f"held job {job.job!r} is named twice")
        held[job.job] = (job.tiles, job.cost)
    # MatchInputError on a tile off the mesh, or blocked and held, or held twice
    free, victims = labelled_tiles(w, h, req.blocked, held)
    library = None
    if req.placement is not None:
        library = library_of(tg, req.placement, req.hops, w, h)  # MatchInputError: 422

    def run() -> dict[str, Any]:
        ans = place(
            tg,
            req.hops,
            free,
            w,
            h,
            library=library,
            victims=victims or None,
            node_budget=req.max_nodes,
            seed=req.seed,
            engine=req.engine,
            budget_ms=req.budget_ms,  # cost-aware with victims: the placer's rule
        )
        # a library hit, or the online match (which always runs or proves)
        return ans.to_doc(tg, labelled_target(w, h, req.hops, free, victims)[0])

    return await run_in_threadpool(run)
