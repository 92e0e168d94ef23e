"""``isosched serve``: run the REST service (the service package, imported only here)."""

from __future__ import annotations

import gc
import os
import sys
from typing import Annotated

import typer

from isosched.cli.app import app
from isosched.errors import IsoschedError


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Queue the ad_urban replay and a short ad_urban sweep at start-up, unless stored.",
        ),
    ] = False,
    api_workers: Annotated[
        int,
        typer.Option(
            "--api-workers", min=1, max=64, help="API processes (each with its own job pool)."
        ),
    ] = 1,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request (costs CPU under load).")
    ] = False,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, health at /healthz)."""
    import uvicorn

    from service.app import create_app

    _check_port(host, port)
    sys.stderr.write(
        f"isosched dashboard on http://{host}:{port}/ — API docs at http://{host}:{port}/docs\n"
    )
    # Fewer, later collections: a request allocates thousands of short-lived objects (a graph
    # upload parses every layer), and the start-up heap never needs scanning again.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    if api_workers == 1:
        uvicorn.run(
            create_app(demo=demo), host=host, port=port, log_level="info", access_log=access_log
        )
        return
    from service.settings import Settings
    from service.store import Store

    Store(Settings.from_env().database_url)  # fail jobs a previous run left pending, once
    os.environ["ISOSCHED_DEMO"] = "1" if demo else "0"
    uvicorn.run(
        "service.app:app_factory",
        factory=True,
        workers=api_workers,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
    )


def _check_port(host: str, port: int) -> None:
    """Refuse, in one line, an address another server already listens on.

    Each address ``host`` resolves to is tried as uvicorn binds it; the port counts as busy
    only when none of them binds and one of them is in use. Anything else (``--host ""``, a
    name this probe cannot resolve) is left to uvicorn.

    Raises
    ------
    IsoschedError
        Naming the address (uvicorn would log it among its start-up lines and exit with 3).
    """
    import errno
    import socket

    if not host:
        return
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return
    busy = None
    for family, kind, proto, _, address in found:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
                probe.bind(address)
            return
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                busy = exc
    if busy is not None:
        raise IsoschedError(
            f"cannot listen on {host}:{port}: {busy.strerror} (another server there? "
            "--port chooses another)"
        )
