"""``isosched serve``: run the REST service (the service package, imported only here)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from isosched.cli.app import app


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, health at /healthz)."""
    import uvicorn

    from service.app import create_app

    sys.stderr.write(f"isosched service on http://{host}:{port}/ (docs at /docs)\n")
    uvicorn.run(create_app(), host=host, port=port, log_level="info")
