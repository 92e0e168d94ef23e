"""``/v1/models``: the zoo, available without upload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from isosched.io.graph_json import graph_to_dict
from isosched.zoo import load_zoo_model, zoo_names
from service.openapi import errors

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("")
async def list_models() -> list[dict[str, Any]]:
    """The zoo: name, layers, edges, MACs, parameters."""
    out = []
    for name in zoo_names():
        g = load_zoo_model(name)
        out.append(
            {
                "name": name,
                "layers": len(g),
                "edges": len(g.edges),
                "macs": g.macs,
                "params": g.params,
            }
        )
    return out


@router.get("/{name}", responses=errors(404))
async def get_model(name: str) -> dict[str, Any]:
    """A zoo model's graph file."""
    if name not in zoo_names():
        raise HTTPException(404, f"no zoo model {name!r}")
    return graph_to_dict(load_zoo_model(name))
