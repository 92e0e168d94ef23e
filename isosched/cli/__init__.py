"""Command line interface (typer); ``main`` is the console script.

The Typer app is :data:`isosched.cli.app.app`. This module imports nothing heavy, so that the
console script's own import cannot be interrupted half-way with a traceback.
"""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Console-script entry point; Ctrl-C at any moment, start-up included, exits 130 quietly."""
    try:
        from isosched.cli.app import main as run

        run()
    except KeyboardInterrupt:
        raise SystemExit(130) from None
