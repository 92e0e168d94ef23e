"""The ``isosched`` command line: the root app and the error boundary."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from isosched.errors import IsoschedError

__all__ = ["app", "emit_json", "fail", "main"]

app = typer.Typer(
    name="isosched",
    help="Preemptive multi-DNN scheduling for tile-spatial accelerators (IsoSched).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def emit_json(doc: Any) -> None:
    """Print exactly one JSON document on standard output."""
    sys.stdout.write(json.dumps(doc, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def fail(message: str) -> None:
    """Exit with status 2 and a one-line reason on standard error."""
    sys.stderr.write(f"isosched: error: {message.splitlines()[0] if message else 'failed'}\n")
    raise SystemExit(2)


def main() -> None:
    """Console-script entry point: run the app, turning input errors into exit status 2."""
    # Import the command modules for their registrations on ``app``.
    from isosched.cli import hw, match, models, plan, replay, schema, serve, sweep, trace  # noqa: F401

    try:
        app()
    except IsoschedError as exc:
        fail(str(exc))
    except (OSError, MemoryError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
