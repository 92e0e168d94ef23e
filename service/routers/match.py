"""``/v1/match``: place a tile graph on a partly blocked mesh, answered at once.

The same question as ``isosched match``, through the run-time placer's online match. The answer
is 200 whether or not a placement exists: ``reason`` says which (``found``, ``impossible``,
``budget``, ``cancelled``), with the nodes the search took and, when not found, its deepest
partial placement. The budget is small by design (at most 2 s of wall time, and a node budget for
an answer that is the same on every machine), so the route answers within the request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from isosched.match import mesh_target
from isosched.match.placer import place
from isosched.tilegraph import TileGraph
from service.openapi import errors

router = APIRouter(prefix="/v1/match", tags=["match"])

#: Largest mesh side the route accepts (the placer works on bit sets of W·H tiles).
MAX_SIDE = 64
#: Largest wall-time budget of one request, ms.
MAX_BUDGET_MS = 2000.0

Side = Annotated[int, Field(ge=1, le=MAX_SIDE)]
Coord = Annotated[list[Annotated[int, Field(ge=0, lt=MAX_SIDE)]], Field(min_length=2, max_length=2)]


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
    engine: Literal["cp+repair", "cp", "repair", "portfolio", "mcts", "ullmann"] = Field(
        default="cp+repair",
        description="cp+repair (the placer's online engine: cp, which proves when there is no "
        "room, and local repair in turns), cp, repair, portfolio, mcts, ullmann.",
    )
    budget_ms: float = Field(default=100.0, ge=0, le=MAX_BUDGET_MS, description="Wall budget.")
    max_nodes: int | None = Field(
        default=None, ge=0, le=10_000_000, description="Node budget (deterministic answer)."
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


@router.post("", responses={**errors(413, 422)})
async def match(req: MatchRequest) -> dict[str, Any]:
    """Place the pattern: the ``isosched match --json`` document, with its stop reason."""
    tg = TileGraph.from_doc(req.pattern)  # TileGraphError: 422 naming the problem
    w, h = req.mesh
    blocked = [(int(x), int(y)) for x, y in req.blocked]
    target = mesh_target(w, h, req.hops, blocked)  # MatchInputError on a tile off the mesh
    free = 0
    for t in range(w * h):
        if target.allowed[t]:
            free |= 1 << t

    def run() -> dict[str, Any]:
        ans = place(
            tg,
            req.hops,
            free,
            w,
            h,
            node_budget=req.max_nodes,
            seed=req.seed,
            engine=req.engine,
            budget_ms=req.budget_ms,
            cost_aware=False,
        )
        assert ans.match is not None  # no library: the online match always runs or proves
        doc = ans.match.to_doc()
        doc["nodes"] = ans.nodes  # every engine of a portfolio or of the hybrid's turns
        return doc

    return await run_in_threadpool(run)
