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
    demo: Annotated[
        bool, typer.Option("--demo", help="Replay ad_urban at start-up unless already stored.")
    ] = False,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, health at /healthz)."""
    import uvicorn

    from service.app import create_app

    sys.stderr.write(
        f"isosched service on http://{host}:{port}/ — API docs at http://{host}:{port}/docs\n"
    )
    uvicorn.run(create_app(demo=demo), host=host, port=port, log_level="info")
