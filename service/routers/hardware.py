"""``/v1/hardware``: the presets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from isosched.io.hardware_json import load_hardware, preset_names

router = APIRouter(prefix="/v1/hardware", tags=["hardware"])


@router.get("")
def list_hardware() -> list[dict[str, Any]]:
    """Every preset: name, mesh, tiles."""
    out = []
    for name in preset_names():
        hw = load_hardware(name)
        out.append({"name": name, "mesh": list(hw.mesh), "tiles": hw.tiles})
    return out


@router.get("/{name}")
def get_hardware(name: str) -> dict[str, Any]:
    """One preset as an ``isosched.hardware/v1`` document."""
    if name not in preset_names():
        raise HTTPException(404, f"no hardware preset {name!r}")
    doc: dict[str, Any] = load_hardware(name).model_dump(mode="json", by_alias=True)
    return doc
