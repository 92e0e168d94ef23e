"""OpenAPI links: how the id a create operation answers feeds the operations on that resource.

They document the API's workflows, and schemathesis follows them in stateful tests.
"""

from __future__ import annotations

from typing import Any

__all__ = ["created"]


def created(status: int, targets: dict[str, str]) -> dict[int | str, Any]:
    """A FastAPI ``responses`` entry: the answer's ``id`` is parameter ``targets[op]`` of ``op``."""
    links = {
        op[0].upper() + op[1:]: {"operationId": op, "parameters": {param: "$response.body#/id"}}
        for op, param in targets.items()
    }
    return {status: {"description": "Created or accepted.", "links": links}}
