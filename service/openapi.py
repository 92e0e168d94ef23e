"""OpenAPI pieces the routes share: raw request bodies, and links between operations.

Links say how the id a create operation answers feeds the operations on that resource; they
document the workflows, and schemathesis follows them in stateful tests.
"""

from __future__ import annotations

from typing import Any

__all__ = ["created", "request_body"]


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
