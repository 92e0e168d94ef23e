"""Command line interface (typer); ``main`` is the console script."""

from isosched.cli.app import app, main

__all__ = ["app", "main"]
