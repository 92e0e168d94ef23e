"""OpenAPI pieces the routes share: raw request bodies, links between operations, error answers.

Links say how the id a create operation answers feeds the operations on that resource; they
document the workflows, and schemathesis follows them in stateful tests.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["ErrorBody", "created", "errors", "request_body"]


def created(status: int, targets: dict[str, str]) -> dict[int | str, Any]:
    """A FastAPI ``responses`` entry: the answer's ``id`` is parameter ``targets[op]`` of ``op``."""
    links = {
        op[0].upper() + op[1:]: {"operationId": op, "parameters": {param: "$response.body#/id"}}
        for op, param in targets.items()
    }
    return {status: {"description": "Created or accepted.", "links": links}}


def request_body(content: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its body itself: media type → schema."""
    return {
        "requestBody": {
            "required": True,
            "content": {media: {"schema": schema} for media, schema in content.items()},
        }
    }


class ErrorBody(BaseModel):
    """Every error answer (4xx): what went wrong, in a sentence naming the field, id or limit."""

    detail: str


_WHY = {
    404: "No resource with this id or name.",
    405: "Method not allowed here (the `Allow` header lists the allowed ones).",
    413: "The body is over `ISOSCHED_MAX_BODY_BYTES`, or the store is full (the message says).",
    422: "Invalid content, or over a limit: the message names the field, layer, line or limit.",
    429: "Too many pending jobs on this instance; retry after `Retry-After` seconds.",
}


def errors(*codes: int) -> dict[int | str, Any]:
    """A FastAPI ``responses`` entry per error status ``codes``, each with :class:`ErrorBody`."""
    out: dict[int | str, Any] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorBody, "description": _WHY[code]}
        if code == 429:
            entry["headers"] = {
                "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            }
        if code == 405:
            entry["headers"] = {
                "Allow": {"description": "The allowed methods.", "schema": {"type": "string"}}
            }
        out[code] = entry
    return out
