"""``/v1/hardware``: the presets and uploaded hardware files."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from isosched.errors import HardwareError
from isosched.io.bounded_json import decode_json
from isosched.io.hardware_json import load_hardware, parse_hardware, preset_names
from service.openapi import created, errors, request_body
from service.quota import check_quota
from service.store import Store

router = APIRouter(prefix="/v1/hardware", tags=["hardware"])


def resolve_hardware(store: Store, hw: str) -> str | dict[str, Any]:
    """What a job gets for ``hw``: a preset name, or an uploaded hardware document by id.

    The service never reads a path a client names: anything else is 422.
    """
    if hw in preset_names():
        return hw
    doc = store.get_hardware(hw)
    if doc is None:
        raise HardwareError(
            f"unknown hardware {hw!r}: give a preset ({', '.join(preset_names())}) "
            "or the id of uploaded hardware"
        )
    return doc


def _summary(name: str, doc: dict[str, Any], hid: str | None = None) -> dict[str, Any]:
    w, h = doc["mesh"]
    out: dict[str, Any] = {"name": name, "mesh": [w, h], "tiles": w * h}
    return out if hid is None else {"id": hid, **out}


@router.get("", responses=errors(422))
async def list_hardware(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10**9),
) -> list[dict[str, Any]]:
    """Presets (``name``), then uploads (``id``, ``name``; newest first): mesh and tiles."""
    presets = []
    for name in preset_names():
        hw = load_hardware(name)
        presets.append({"name": name, "mesh": list(hw.mesh), "tiles": hw.tiles, "preset": True})
    out = presets[offset : offset + limit]
    rest = limit - len(out)
    if rest > 0:
        rows = request.app.state.store.list_hardware(rest, max(0, offset - len(presets)))
        out.extend({**_summary(r["name"], r["doc"], r["id"]), "preset": False} for r in rows)
    return out


@router.post(
    "",
    status_code=201,
    responses={
        **created(201, {"getHardware": "name", "deleteHardware": "name"}),
        200: {"description": "The same file is stored already under its name: its ``id``."},
        **errors(413, 422),
    },
    openapi_extra=request_body(
        {
            "application/json": {
                "type": "object",
                "description": "An isosched.hardware/v1 file (`isosched schema hardware`).",
            }
        }
    ),
)
async def upload_hardware(request: Request, response: Response) -> dict[str, Any]:
    """Store an ``isosched.hardware/v1`` file; plans and replays then name it by ``id``."""
    body = await request.body()
    check_quota(request, len(body))
    hw = parse_hardware(decode_json(body, "request body", HardwareError))
    if hw.name != hw.name.strip() or not hw.name:
        raise HardwareError(f"hardware name {hw.name!r}: no leading or trailing spaces, please")
    if hw.name.casefold() in {p.casefold() for p in preset_names()}:
        # its results would read as the preset's
        raise HardwareError(f"hardware name {hw.name!r} is a preset's; give the upload another")
    doc: dict[str, Any] = hw.model_dump(mode="json", by_alias=True)
    store = request.app.state.store
    for row in store.list_hardware(limit=1, name=hw.name):  # one name, one chip
        if row["doc"] != doc:
            raise HardwareError(
                f"hardware name {hw.name!r} is taken by other stored hardware ({row['id']}); "
                "give this one another name, or delete that one first"
            )
        response.status_code = 200  # the same file again: the same id
        return _summary(hw.name, doc, row["id"])
    hid = store.add_hardware(hw.name, doc)
    return _summary(hw.name, doc, hid)


@router.get("/{name}", operation_id="getHardware", responses=errors(404))
async def get_hardware(name: str, request: Request) -> dict[str, Any]:
    """A preset (by name) or uploaded hardware (by id) as an ``isosched.hardware/v1`` document."""
    if name in preset_names():
        doc: dict[str, Any] = load_hardware(name).model_dump(mode="json", by_alias=True)
        return doc
    stored: dict[str, Any] | None = request.app.state.store.get_hardware(name)
    if stored is None:
        raise HTTPException(404, f"no hardware preset or upload {name!r}")
    return stored


@router.delete(
    "/{name}", status_code=204, operation_id="deleteHardware", responses=errors(404, 405)
)
async def delete_hardware(name: str, request: Request) -> Response:
    """Remove uploaded hardware (presets cannot be removed: 405)."""
    if name in preset_names():
        raise HTTPException(
            405, f"{name!r} is a preset and cannot be deleted", headers={"Allow": "GET"}
        )
    if not request.app.state.store.delete_hardware(name):
        raise HTTPException(404, f"no uploaded hardware {name!r}")
    return Response(status_code=204)
